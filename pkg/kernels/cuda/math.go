//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

// Math modes, as stored in Backend.math.
const (
	mathFP32 int32 = iota
	mathFP16
	mathBF16
)

// parseMath maps a kernels.Math* name ("" is FP32) to its mode.
func parseMath(s string) (int32, error) {
	switch s {
	case "", kernels.MathFP32:
		return mathFP32, nil
	case kernels.MathFP16:
		return mathFP16, nil
	case kernels.MathBF16:
		return mathBF16, nil
	}
	return 0, fmt.Errorf("%w: cuda: math mode %q (want %s, %s or %s)", kernels.ErrParam, s,
		kernels.MathFP32, kernels.MathFP16, kernels.MathBF16)
}

var _ kernels.MathModer = (*Backend)(nil)

// SetMath implements kernels.MathModer: in fp16 and bf16 modes Gemm,
// MatMul, MatMulBackward and the implicit-GEMM Conv2D/Conv2DFused run
// tensorcore.cu's kernels (operands rounded in shared memory, FP32
// accumulation and epilogue). Ops already queued keep the mode they were
// issued with.
func (b *Backend) SetMath(mode string) error {
	m, err := parseMath(mode)
	if err != nil {
		return err
	}
	b.math.Store(m)
	return nil
}

// Math implements kernels.MathModer.
func (b *Backend) Math() string {
	switch b.math.Load() {
	case mathFP16:
		return kernels.MathFP16
	case mathBF16:
		return kernels.MathBF16
	}
	return kernels.MathFP32
}

// tcTileN is TBN of tensorcore.cu; tcTileM picks its BM: 64 when M fits
// in one such tile (most of a 128-row tile would idle), else 128.
const tcTileN = 128

func tcTileM(m int) int {
	if m <= 64 {
		return 64
	}
	return 128
}

// tcKernel names tensorcore.cu's kernel kind ("gemm" or "conv") for the
// mode and tile rows.
func tcKernel(kind string, mode int32, bm int) string {
	t := "f16"
	if mode == mathBF16 {
		t = "bf16"
	}
	return fmt.Sprintf("tc_%s_%s_%d", kind, t, bm)
}
