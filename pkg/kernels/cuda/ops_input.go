//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"vireo/pkg/kernels"
)

// NormalizeU8 implements kernels.InputOps: the host frames are staged to
// the device and one kernel writes y[n,c,h,w] = src[n,h,w,k_c]*a_c + b_c
// (k_c = C-1-c with SwapRB), a_c = 1/(255*std[c]), b_c = -mean[c]/std[c]
// folded in float64 like the CPU backend.
func (b *Backend) NormalizeU8(y *kernels.Tensor, src []byte, p kernels.NormalizeParams) error {
	N, H, W, C := p.N, p.H, p.W, p.C
	if N <= 0 || H <= 0 || W <= 0 || C <= 0 || C > 4 {
		return fmt.Errorf("%w: normalize: N,H,W,C = %d,%d,%d,%d (want positive, C <= 4)", kernels.ErrParam, N, H, W, C)
	}
	if len(p.Mean) != C || len(p.Std) != C {
		return fmt.Errorf("%w: normalize: %d means and %d stds (want %d each, one per channel)", kernels.ErrParam, len(p.Mean), len(p.Std), C)
	}
	var a, c [4]float32
	for i := range C {
		s, m := float64(p.Std[i]), float64(p.Mean[i])
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: normalize: std[%d] = %v (want finite and > 0)", kernels.ErrParam, i, p.Std[i])
		}
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("%w: normalize: mean[%d] = %v (want finite)", kernels.ErrParam, i, p.Mean[i])
		}
		a[i] = float32(1 / (255 * s))
		c[i] = float32(-m / s)
	}
	if y == nil {
		return fmt.Errorf("%w: normalize: y is nil (want shape (%d,%d,%d,%d))", kernels.ErrShape, N, C, H, W)
	}
	if want := (kernels.Shape{N, C, H, W}); !y.Shape.Equal(want) {
		return fmt.Errorf("%w: normalize: y is %v (want %v)", kernels.ErrShape, y.Shape, want)
	}
	if len(src) != N*H*W*C {
		return fmt.Errorf("%w: normalize: %d bytes of frames (want N*H*W*C = %d*%d*%d*%d = %d)", kernels.ErrShape, len(src), N, H, W, C, N*H*W*C)
	}
	swap := int64(0)
	if p.SwapRB {
		swap = 1
	}
	return b.do(func() error {
		py, err := b.addr("normalize: y", y)
		if err != nil {
			return err
		}
		ps, err := b.stage(unsafe.Pointer(&src[0]), int64(len(src)))
		if err != nil {
			return err
		}
		return b.launch("normalize_u8", int64(y.Numel()), py, ps, N, H, W, C, swap,
			a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3])
	})
}
