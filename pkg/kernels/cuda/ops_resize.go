//go:build cuda

package cuda

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// Resize's tables are computed on the host exactly as the CPU backend
// computes them (resizeCoord and resizeNearestIndex are its functions,
// in float32 as ONNX Runtime): the nearest forward is a table gather
// (layout.cu), the backwards and the bilinear forward are resize.cu's.

// resizeCoord maps output position o of an axis of extent in resized by
// scale to a position in the input (see the CPU backend's resizeCoord:
// length_resized = in*scale):
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

// resizeNearestIndex rounds an input coordinate by nearest_mode and
// clamps it into [0, in).
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

// resizeCheck validates p against x and y (the CPU backend's checks, in
// its order).
func resizeCheck(op string, x, y *kernels.Tensor, p kernels.ResizeParams, xName, yName string) error {
	if p.Mode != kernels.ResizeNearest && p.Mode != kernels.ResizeLinear {
		return fmt.Errorf("%w: %s: mode %d (want nearest or linear)", kernels.ErrParam, op, p.Mode)
	}
	if p.Coord < kernels.CoordHalfPixel || p.Coord > kernels.CoordTFHalfPixelForNN {
		return fmt.Errorf("%w: %s: coordinate mode %d", kernels.ErrParam, op, p.Coord)
	}
	if p.Nearest < kernels.NearestRoundPreferFloor || p.Nearest > kernels.NearestCeil {
		return fmt.Errorf("%w: %s: nearest mode %d", kernels.ErrParam, op, p.Nearest)
	}
	if x == nil {
		return fmt.Errorf("%w: %s: %s is nil", kernels.ErrShape, op, xName)
	}
	ys, err := kernels.ResizeOutShape(x.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+yName, y, ys); err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		r := len(x.Shape)
		if r < 2 {
			return fmt.Errorf("%w: %s: linear mode on x %v (want rank >= 2; it interpolates the last two axes)", kernels.ErrUnsupported, op, x.Shape)
		}
		for i := range r - 2 {
			if p.Scales[i] != 1 {
				return fmt.Errorf("%w: %s: linear mode with scales %v (want 1 on all but the last two axes)", kernels.ErrUnsupported, op, p.Scales)
			}
		}
	}
	return nil
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
// weight of the upper one (the CPU backend's newLinearAxis), and per input
// position the range of outputs that read it.
type linearAxis struct {
	lo, hi     []int
	w          []float32
	start, end []int
}

func newLinearAxis(m kernels.CoordMode, scale float32, in, out int) linearAxis {
	a := linearAxis{lo: make([]int, out), hi: make([]int, out), w: make([]float32, out),
		start: make([]int, in), end: make([]int, in)}
	for o := range out {
		x := resizeCoord(m, o, scale, in)
		x = max(0, min(x, float32(in-1)))
		l := min(int(x), in-1)
		a.lo[o], a.hi[o], a.w[o] = l, min(l+1, in-1), x-float32(l)
	}
	for j := range in {
		a.start[j], a.end[j] = 0, 0
	}
	seen := make([]bool, in)
	for o := range out {
		for _, j := range []int{a.lo[o], a.hi[o]} {
			if !seen[j] {
				seen[j], a.start[j] = true, o
			}
			a.end[j] = o + 1
		}
	}
	return a
}

// linearMeta flattens the bilinear tables as resize.cu's lin_tabs reads
// them.
func linearMeta(ah, aw linearAxis) []int64 {
	var m []int64
	ints := func(v []int) {
		for _, x := range v {
			m = append(m, int64(x))
		}
	}
	floats := func(v []float32) {
		for _, x := range v {
			m = append(m, int64(math.Float32bits(x)))
		}
	}
	ints(ah.lo)
	ints(ah.hi)
	floats(ah.w)
	ints(aw.lo)
	ints(aw.hi)
	floats(aw.w)
	ints(ah.start)
	ints(ah.end)
	ints(aw.start)
	ints(aw.end)
	return m
}

// Resize implements kernels.LayoutOps (ONNX Resize with scales): nearest
// on any rank as a table gather, y[I] = x[J] with J[i] = nearest(coord(I[i]))
// clamped; linear as bilinear over the last two axes (the others must have
// scale 1), with the CPU backend's float32 arithmetic.
func (b *Backend) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	if err := resizeCheck("resize", x, y, p, "x", "y"); err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		return b.resizeLinear("resize", y, x, x.Shape, y.Shape, p, false)
	}
	return b.gather("resize", y, x, indexMap{ext: y.Shape, stride: x.Shape.Strides(), tabs: nearestTables(x.Shape, y.Shape, p)}, 0)
}

// ResizeBackward implements kernels.LayoutOps: the adjoint of Resize, each
// dx element the sum of the dy elements (times their weights) that read
// it, gathered in the CPU backend's order (resize.cu).
func (b *Backend) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	if dx == nil {
		return nil
	}
	const op = "resize backward"
	if err := resizeCheck(op, dx, dy, p, "dx", "dy"); err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		return b.resizeLinear(op, dy, dx, dx.Shape, dy.Shape, p, true)
	}
	r := len(dx.Shape)
	tabs := nearestTables(dx.Shape, dy.Shape, p)
	// meta: dx extents, dy strides, table offsets, then per axis
	// start[in] and count[in] of the dy coordinates reading each dx one.
	meta := make([]int64, 3*r)
	ds := dy.Shape.Strides()
	for k := range r {
		meta[k], meta[r+k] = int64(dx.Shape[k]), int64(ds[k])
	}
	for k, t := range tabs {
		in := dx.Shape[k]
		meta[2*r+k] = int64(len(meta))
		start, count := make([]int64, in), make([]int64, in)
		for o, j := range t {
			if count[j] == 0 {
				start[j] = int64(o)
			}
			count[j]++
		}
		meta = append(append(meta, start...), count...)
	}
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dx", "dy"}, dx, dy)
		if err != nil {
			return err
		}
		n := int64(dx.Numel())
		if n == 0 {
			return nil
		}
		pm := any(uint64(0))
		if len(meta) > 0 {
			m, err := b.stageInts(meta)
			if err != nil {
				return err
			}
			pm = m
		}
		return b.launch("resize_nearest_bwd", n, ps[0], ps[1], n, pm, int64(r))
	})
}

// resizeLinear queues the bilinear forward (y from x) or, with back, its
// adjoint (x from y), plane by plane.
func (b *Backend) resizeLinear(op string, y, x *kernels.Tensor, xs, ys kernels.Shape, p kernels.ResizeParams, back bool) error {
	r := len(xs)
	H, W, oH, oW := xs[r-2], xs[r-1], ys[r-2], ys[r-1]
	ah := newLinearAxis(p.Coord, p.Scales[r-2], H, oH)
	aw := newLinearAxis(p.Coord, p.Scales[r-1], W, oW)
	planes := xs[:r-2].Numel()
	meta := linearMeta(ah, aw)
	names := []string{"y", "x"}
	if back {
		names = []string{"dy", "dx"}
	}
	return b.do(func() error {
		ps, err := b.addrs(op, names, y, x)
		if err != nil {
			return err
		}
		n := int64(planes * oH * oW)
		kernel := "resize_linear_fwd"
		dst, src := ps[0], ps[1]
		if back {
			n, kernel, dst, src = int64(planes*H*W), "resize_linear_bwd", ps[1], ps[0]
		}
		if n == 0 {
			return nil
		}
		pm, err := b.stageInts(meta)
		if err != nil {
			return err
		}
		return b.launch(kernel, n, dst, src, int64(planes), int64(H), int64(W), int64(oH), int64(oW), pm)
	})
}
