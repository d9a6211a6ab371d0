package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// resizeCoord maps output position o of an axis of extent in resized by
// scale to a position in the input, in float32 as ONNX Runtime computes it,
// with length_resized = in*scale (not the integer output extent), as the
// ONNX reference and its test cases have it (they differ from ONNX Runtime
// only for align_corners with a scale that does not give an integer size):
//
//	half_pixel:                (o+0.5)/scale - 0.5
//	pytorch_half_pixel:        (o+0.5)/scale - 0.5, or 0 if length_resized <= 1
//	align_corners:             o*(in-1)/(length_resized-1), or 0 if that is 1
//	asymmetric:                o/scale
//	tf_half_pixel_for_nearest: (o+0.5)/scale
func resizeCoord(m kernels.CoordMode, o int, scale float32, in int) float32 {
	x := float32(o)
	lr := float32(in) * scale
	switch m {
	case kernels.CoordHalfPixel:
		return (x+0.5)/scale - 0.5
	case kernels.CoordPytorchHalfPixel:
		if lr <= 1 {
			return 0
		}
		return (x+0.5)/scale - 0.5
	case kernels.CoordAlignCorners:
		if lr == 1 {
			return 0
		}
		return x * float32(in-1) / (lr - 1)
	case kernels.CoordAsymmetric:
		return x / scale
	default: // CoordTFHalfPixelForNN
		return (x + 0.5) / scale
	}
}

// resizeNearestIndex rounds an input coordinate by nearest_mode and clamps
// it into [0, in).
func resizeNearestIndex(m kernels.NearestMode, x float32, in int) int {
	var v float64
	xf := float64(x)
	switch m {
	case kernels.NearestRoundPreferFloor:
		if x == float32(math.Trunc(xf))+0.5 {
			v = math.Floor(xf)
		} else {
			v = math.Round(xf)
		}
	case kernels.NearestRoundPreferCeil:
		if x == float32(math.Trunc(xf))+0.5 {
			v = math.Ceil(xf)
		} else {
			v = math.Round(xf)
		}
	case kernels.NearestFloor:
		v = math.Floor(xf)
	default: // NearestCeil
		v = math.Ceil(xf)
	}
	return int(max(0, min(v, float64(in-1))))
}

// resizeCheck validates p against x and y and returns y's expected shape.
func resizeCheck(op string, x, y *kernels.Tensor, p kernels.ResizeParams, xName, yName string) ([]float32, []float32, error) {
	if p.Mode != kernels.ResizeNearest && p.Mode != kernels.ResizeLinear {
		return nil, nil, fmt.Errorf("%w: %s: mode %d (want nearest or linear)", kernels.ErrParam, op, p.Mode)
	}
	if p.Coord < kernels.CoordHalfPixel || p.Coord > kernels.CoordTFHalfPixelForNN {
		return nil, nil, fmt.Errorf("%w: %s: coordinate mode %d", kernels.ErrParam, op, p.Coord)
	}
	if p.Nearest < kernels.NearestRoundPreferFloor || p.Nearest > kernels.NearestCeil {
		return nil, nil, fmt.Errorf("%w: %s: nearest mode %d", kernels.ErrParam, op, p.Nearest)
	}
	xd, err := hostOp(op, xName, x)
	if err != nil {
		return nil, nil, err
	}
	ys, err := kernels.ResizeOutShape(x.Shape, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+yName, y, ys); err != nil {
		return nil, nil, err
	}
	yd, err := hostOp(op, yName, y)
	if err != nil {
		return nil, nil, err
	}
	if p.Mode == kernels.ResizeLinear {
		r := len(x.Shape)
		if r < 2 {
			return nil, nil, fmt.Errorf("%w: %s: linear mode on x %v (want rank >= 2; it interpolates the last two axes)", kernels.ErrUnsupported, op, x.Shape)
		}
		for i := range r - 2 {
			if p.Scales[i] != 1 {
				return nil, nil, fmt.Errorf("%w: %s: linear mode with scales %v (want 1 on all but the last two axes)", kernels.ErrUnsupported, op, p.Scales)
			}
		}
	}
	return xd, yd, nil
}

// nearestTables maps each output position of each axis to its input.
func nearestTables(x, y kernels.Shape, p kernels.ResizeParams) [][]int {
	tabs := make([][]int, len(x))
	for i := range x {
		t := make([]int, y[i])
		for o := range t {
			t[o] = resizeNearestIndex(p.Nearest, resizeCoord(p.Coord, o, p.Scales[i], x[i]), x[i])
		}
		tabs[i] = t
	}
	return tabs
}

// linearAxis holds, per output position, the two input neighbours and the
// weight of the upper one: out = (1-w)*in[lo] + w*in[hi].
type linearAxis struct {
	lo, hi []int
	w      []float32
}

func newLinearAxis(m kernels.CoordMode, scale float32, in, out int) linearAxis {
	a := linearAxis{lo: make([]int, out), hi: make([]int, out), w: make([]float32, out)}
	for o := range out {
		x := resizeCoord(m, o, scale, in)
		x = max(0, min(x, float32(in-1)))
		l := min(int(x), in-1)
		a.lo[o], a.hi[o], a.w[o] = l, min(l+1, in-1), x-float32(l)
	}
	return a
}

// Resize implements kernels.LayoutOps (ONNX Resize with scales).
//
// Nearest, any rank: y[I] = x[J], J[i] = nearest(coord(I[i])) clamped
// (resizeCoord, resizeNearestIndex). Rows mapping to the same input row are
// copied from the previous output row, and a 2x last axis writes pairs.
//
// Linear: bilinear over the last two axes (the others must have scale 1),
// the input coordinate clamped to [0, in-1] as ONNX Runtime does:
//
//	y[.., oh, ow] = sum over (a, b) in {lo,hi}^2 of wH(a)*wW(b)*x[.., a, b]
func (c *CPU) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	xd, yd, err := resizeCheck("resize", x, y, p, "x", "y")
	if err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		c.resizeLinear(yd, xd, x.Shape, y.Shape, p, false)
		return nil
	}
	tabs := nearestTables(x.Shape, y.Shape, p)
	if len(x.Shape) == 0 {
		yd[0] = xd[0]
		return nil
	}
	r := len(x.Shape)
	xs := x.Shape.Strides()
	outer, n := splitLast(y.Shape)
	lt := tabs[r-1]
	double := n == 2*x.Shape[r-1]
	for o := 0; double && o < n; o++ {
		double = lt[o] == o/2
	}
	rows := kernels.Shape(outer).Numel()
	c.parallel(rows, rowGrain(n), func(lo, hi int) {
		prev := -1
		iterRows(outer, lo, hi, func(row int, idx []int) {
			out := yd[row*n : (row+1)*n]
			base := 0
			for i, v := range idx {
				base += tabs[i][v] * xs[i]
			}
			if base == prev {
				copy(out, yd[(row-1)*n:row*n])
				return
			}
			prev = base
			in := xd[base : base+x.Shape[r-1]]
			if double {
				out = out[:2*len(in)]
				for i, v := range in {
					out[2*i] = v
					out[2*i+1] = v
				}
				return
			}
			for o, j := range lt {
				out[o] = in[j]
			}
		})
	})
	return nil
}

// ResizeBackward implements kernels.LayoutOps: the adjoint of Resize with
// the same weights, dx = 0 then dx[J] += w*dy[I] for each term of y[I].
func (c *CPU) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	if dx == nil {
		return nil
	}
	dxd, dyd, err := resizeCheck("resize backward", dx, dy, p, "dx", "dy")
	if err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		c.resizeLinear(dyd, dxd, dx.Shape, dy.Shape, p, true)
		return nil
	}
	clear(dxd)
	tabs := nearestTables(dx.Shape, dy.Shape, p)
	if len(dx.Shape) == 0 {
		dxd[0] = dyd[0]
		return nil
	}
	r := len(dx.Shape)
	xs := dx.Shape.Strides()
	outer, n := splitLast(dy.Shape)
	k := 0 // leading axes whose tables are one-to-one
	for k < len(outer) && dx.Shape[k] == dy.Shape[k] && isIdentity(tabs[k]) {
		k++
	}
	lt := tabs[r-1]
	c.forSlabs(outer, k, n, func(row int, idx []int) {
		base := 0
		for i, v := range idx {
			base += tabs[i][v] * xs[i]
		}
		in := dxd[base : base+dx.Shape[r-1]]
		for o, g := range dyd[row*n : (row+1)*n] {
			in[lt[o]] += g
		}
	})
	return nil
}

// resizeLinear runs bilinear resize (back=false: yd from xd) or its
// adjoint (back=true: xd = 0, then xd += weights*yd), plane by plane.
func (c *CPU) resizeLinear(yd, xd []float32, xs, ys kernels.Shape, p kernels.ResizeParams, back bool) {
	r := len(xs)
	H, W, oH, oW := xs[r-2], xs[r-1], ys[r-2], ys[r-1]
	ah := newLinearAxis(p.Coord, p.Scales[r-2], H, oH)
	aw := newLinearAxis(p.Coord, p.Scales[r-1], W, oW)
	planes := xs[:r-2].Numel()
	c.parallel(planes, planeGrain(H*W+oH*oW), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp := xd[pl*H*W : (pl+1)*H*W]
			yp := yd[pl*oH*oW : (pl+1)*oH*oW]
			if back {
				clear(xp)
			}
			for oh := range oH {
				r0 := xp[ah.lo[oh]*W : (ah.lo[oh]+1)*W]
				r1 := xp[ah.hi[oh]*W : (ah.hi[oh]+1)*W]
				wh := ah.w[oh]
				out := yp[oh*oW : (oh+1)*oW]
				for ow := range out {
					l, h, ww := aw.lo[ow], aw.hi[ow], aw.w[ow]
					if back {
						g := out[ow]
						g0, g1 := g*(1-wh), g*wh
						r0[l] += g0 * (1 - ww)
						r0[h] += g0 * ww
						r1[l] += g1 * (1 - ww)
						r1[h] += g1 * ww
						continue
					}
					v0 := r0[l]*(1-ww) + r0[h]*ww
					v1 := r1[l]*(1-ww) + r1[h]*ww
					out[ow] = v0*(1-wh) + v1*wh
				}
			}
		}
	})
}
