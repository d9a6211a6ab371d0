//go:build cuda

package cuda

import (
	"math"

	"vireo/pkg/kernels"
)

// Resize's tables are computed on the host exactly as the CPU backend
// computes them (kernels.ResizeCoord and ResizeNearestIndex, shared,
// in float32 as ONNX Runtime): the nearest forward is a table gather
// (layout.cu), the backwards and the bilinear forward are resize.cu's.

// linearAxis is kernels.ResizeLinearAxis plus, per input position, the
// range of outputs that read it (for the backward's gather).
type linearAxis struct {
	kernels.ResizeLinearAxis
	start, end []int
}

func newLinearAxis(m kernels.CoordMode, scale float32, in, out int) linearAxis {
	a := linearAxis{ResizeLinearAxis: kernels.NewResizeLinearAxis(m, scale, in, out),
		start: make([]int, in), end: make([]int, in)}
	seen := make([]bool, in)
	for o := range out {
		for _, j := range []int{a.Lo[o], a.Hi[o]} {
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
	ints(ah.Lo)
	ints(ah.Hi)
	floats(ah.W)
	ints(aw.Lo)
	ints(aw.Hi)
	floats(aw.W)
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
	if err := kernels.CheckResize("resize", x, y, p, "x", "y"); err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		return b.resizeLinear("resize", y, x, x.Shape, y.Shape, p, false)
	}
	return b.gather("resize", y, x, indexMap{ext: y.Shape, stride: x.Shape.Strides(), tabs: kernels.ResizeNearestTables(x.Shape, y.Shape, p)}, 0)
}

// ResizeBackward implements kernels.LayoutOps: the adjoint of Resize, each
// dx element the sum of the dy elements (times their weights) that read
// it, gathered in the CPU backend's order (resize.cu).
func (b *Backend) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	if dx == nil {
		return nil
	}
	const op = "resize backward"
	if err := kernels.CheckResize(op, dx, dy, p, "dx", "dy"); err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		return b.resizeLinear(op, dy, dx, dx.Shape, dy.Shape, p, true)
	}
	r := len(dx.Shape)
	tabs := kernels.ResizeNearestTables(dx.Shape, dy.Shape, p)
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
