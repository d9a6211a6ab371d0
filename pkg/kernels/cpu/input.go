package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// NormalizeU8 implements kernels.InputOps. It equals
//
//	for n, h, w, c: y[n,c',h,w] = (src[((n*H+h)*W+w)*C+c]/255 - mean[c']) / std[c']
//
// with c' = C-1-c when SwapRB (BGR in, RGB out) and c' = c otherwise,
// computed as one multiply-add per byte with a = 1/(255*std[c']) and b =
// -mean[c']/std[c']: one pass over the bytes, parallel over rows of all
// frames. C is 1 to 4 (gray, BGR, BGRA); with SwapRB all C channels are
// reversed, as the contract says (BGRA becomes ARGB).
func (c *CPU) NormalizeU8(y *kernels.Tensor, src []byte, p kernels.NormalizeParams) error {
	N, H, W, C := p.N, p.H, p.W, p.C
	if N <= 0 || H <= 0 || W <= 0 || C <= 0 || C > 4 {
		return fmt.Errorf("%w: normalize: N,H,W,C = %d,%d,%d,%d (want positive, C <= 4)", kernels.ErrParam, N, H, W, C)
	}
	if len(p.Mean) != C || len(p.Std) != C {
		return fmt.Errorf("%w: normalize: %d means and %d stds (want %d each, one per channel)", kernels.ErrParam, len(p.Mean), len(p.Std), C)
	}
	for i := range C {
		if s := float64(p.Std[i]); !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: normalize: std[%d] = %v (want finite and > 0)", kernels.ErrParam, i, p.Std[i])
		}
		if m := float64(p.Mean[i]); math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("%w: normalize: mean[%d] = %v (want finite)", kernels.ErrParam, i, p.Mean[i])
		}
	}
	if y == nil {
		return fmt.Errorf("%w: normalize: y is nil (want shape (%d,%d,%d,%d))", kernels.ErrShape, N, C, H, W)
	}
	if s := y.Shape; len(s) != 4 || s[0] != N || s[1] != C || s[2] != H || s[3] != W {
		return fmt.Errorf("%w: normalize: y is %v (want %v)", kernels.ErrShape, y.Shape, kernels.Shape{N, C, H, W})
	}
	yd, err := host("normalize: y", y)
	if err != nil {
		return err
	}
	// N*H*W*C cannot overflow: y has that many elements.
	if len(src) != N*H*W*C {
		return fmt.Errorf("%w: normalize: %d bytes of frames (want N*H*W*C = %d*%d*%d*%d = %d)", kernels.ErrShape, len(src), N, H, W, C, N*H*W*C)
	}
	// a[k], b[k] are the coefficients of the byte channel k (already
	// mapped to its output channel).
	var a, b [4]float32
	var out [4]int // output channel of byte channel k
	for k := range C {
		ko := k
		if p.SwapRB {
			ko = C - 1 - k
		}
		out[k] = ko
		a[k] = float32(1 / (255 * float64(p.Std[ko])))
		b[k] = float32(-float64(p.Mean[ko]) / float64(p.Std[ko]))
	}
	parallelFor(c, N*H, max(1, 16384/(W*C)), normRows{src: src, y: yd, a: a, b: b, out: out, H: H, W: W, C: C})
	return nil
}

// normRows is NormalizeU8's loop over rows [lo,hi) of all frames.
type normRows struct {
	src     []byte
	y       []float32
	a, b    [4]float32
	out     [4]int
	H, W, C int
}

func (q *normRows) run(lo, hi int) {
	src, yd, a, b, out, H, W, C := q.src, q.y, q.a, q.b, q.out, q.H, q.W, q.C
	plane := H * W
	for r := lo; r < hi; r++ {
		n, h := r/H, r%H
		row := src[r*W*C : (r+1)*W*C]
		base := n*C*plane + h*W
		if C == 3 {
			o0 := yd[base+out[0]*plane : base+out[0]*plane+W]
			o1 := yd[base+out[1]*plane : base+out[1]*plane+W]
			o2 := yd[base+out[2]*plane : base+out[2]*plane+W]
			row = row[:3*len(o0)]
			o1, o2 = o1[:len(o0)], o2[:len(o0)]
			for w := range o0 {
				px := row[3*w : 3*w+3 : 3*w+3]
				o0[w] = float32(px[0])*a[0] + b[0]
				o1[w] = float32(px[1])*a[1] + b[1]
				o2[w] = float32(px[2])*a[2] + b[2]
			}
			continue
		}
		for k := range C {
			o := yd[base+out[k]*plane : base+out[k]*plane+W]
			ak, bk := a[k], b[k]
			for w := range o {
				o[w] = float32(row[w*C+k])*ak + bk
			}
		}
	}
}
