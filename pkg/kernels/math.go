package kernels

import "fmt"

// Math modes of a MathModer backend: the operand precision of its
// GEMM-shaped ops. Accumulation and everything else stay FP32.
const (
	// MathFP32 is plain FP32 (every backend's only mode unless it is a
	// MathModer).
	MathFP32 = "fp32"
	// MathFP16 rounds the GEMM operands to IEEE half (11-bit significand,
	// range ±65504) and multiplies them on tensor cores into FP32 sums.
	MathFP16 = "fp16"
	// MathBF16 rounds them to bfloat16 (8-bit significand, FP32's
	// exponent range: no overflow where FP32 has none, so training needs
	// no loss scaling).
	MathBF16 = "bf16"
)

// MathModer is implemented by a backend that can run its GEMM-shaped ops
// (Gemm, MatMul and MatMulBackward, and the implicit-GEMM convolutions;
// which ones exactly is the backend's doc) with reduced-precision operands
// and FP32 accumulation. Tensors stay FP32 in memory, so weights are FP32
// masters and every other op is unchanged. The mode applies to ops issued
// after SetMath returns; it is backend-wide, so callers that share a
// backend share its mode.
type MathModer interface {
	// SetMath sets the mode: MathFP32, MathFP16 or MathBF16 (ErrParam for
	// anything else, ErrUnsupported for a mode the device lacks).
	SetMath(mode string) error
	// Math reports the current mode.
	Math() string
}

// CheckMath reports whether mode names a math mode ("" means MathFP32);
// ErrParam otherwise. Whether a backend has the mode is SetMath's answer.
func CheckMath(mode string) error {
	switch mode {
	case "", MathFP32, MathFP16, MathBF16:
		return nil
	}
	return fmt.Errorf("%w: math %q (want %s, %s or %s)", ErrParam, mode, MathFP32, MathFP16, MathBF16)
}
