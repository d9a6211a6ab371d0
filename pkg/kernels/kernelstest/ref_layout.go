package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain reference loops for the layout family: one output element at a
// time, by multi-index.

// unravel returns the multi-index of flat index i in s.
func plUnravel(i int, s kernels.Shape) []int {
	idx := make([]int, len(s))
	for a := len(s) - 1; a >= 0; a-- {
		idx[a] = i % s[a]
		i /= s[a]
	}
	return idx
}

// ravel returns the flat index of idx in s.
func plRavel(idx []int, s kernels.Shape) int {
	f := 0
	for a := range s {
		f = f*s[a] + idx[a]
	}
	return f
}

// refConcat joins xs along axis (non-negative).
func refConcat(xs [][]float32, shapes []kernels.Shape, axis int) ([]float32, kernels.Shape) {
	ys := shapes[0].Clone()
	for _, s := range shapes[1:] {
		ys[axis] += s[axis]
	}
	y := make([]float32, ys.Numel())
	for i := range y {
		idx := plUnravel(i, ys)
		k := 0
		for idx[axis] >= shapes[k][axis] {
			idx[axis] -= shapes[k][axis]
			k++
		}
		y[i] = xs[k][plRavel(idx, shapes[k])]
	}
	return y, ys
}

// refSlice is y[I] = x[start + I*step] for normalised p.
func refSlice(x []float32, xs kernels.Shape, p kernels.SliceParams) ([]float32, kernels.Shape) {
	ys := make(kernels.Shape, len(xs))
	for a := range xs {
		for i := p.Starts[a]; (p.Steps[a] > 0 && i < p.Ends[a]) || (p.Steps[a] < 0 && i > p.Ends[a]); i += p.Steps[a] {
			ys[a]++
		}
	}
	y := make([]float32, ys.Numel())
	for i := range y {
		idx := plUnravel(i, ys)
		for a := range idx {
			idx[a] = p.Starts[a] + idx[a]*p.Steps[a]
		}
		y[i] = x[plRavel(idx, xs)]
	}
	return y, ys
}

// refPadIndex maps output position o of an axis to the input, or -1:
// crop by the negative pads, then pad the kept range [c0, c1) by mode,
// reflecting back and forth one step at a time.
func refPadIndex(o, dim, b, e int, mode kernels.PadMode) int {
	c0, c1 := max(0, -b), dim-max(0, -e)
	j := o - b
	if j >= c0 && j < c1 {
		return j
	}
	switch mode {
	case kernels.PadConstant:
		return -1
	case kernels.PadEdge:
		if j < c0 {
			return c0
		}
		return c1 - 1
	}
	if c1-c0 == 1 {
		return c0
	}
	for j < c0 || j >= c1 {
		if j < c0 {
			j = 2*c0 - j
		}
		if j >= c1 {
			j = 2*(c1-1) - j
		}
	}
	return j
}

// refPad is ONNX Pad (negative pads crop).
func refPad(x []float32, xs kernels.Shape, p kernels.PadParams) ([]float32, kernels.Shape) {
	r := len(xs)
	ys := make(kernels.Shape, r)
	for a := range xs {
		ys[a] = xs[a] + p.Pads[a] + p.Pads[r+a]
	}
	y := make([]float32, ys.Numel())
	for i := range y {
		idx := plUnravel(i, ys)
		y[i] = p.Value
		ok := true
		for a := range idx {
			idx[a] = refPadIndex(idx[a], xs[a], p.Pads[a], p.Pads[r+a], p.Mode)
			ok = ok && idx[a] >= 0
		}
		if ok {
			y[i] = x[plRavel(idx, xs)]
		}
	}
	return y, ys
}

// refCoord is ONNX Resize's coordinate transform in float32, with
// length_resized = in*scale as the ONNX reference has it.
func refCoord(m kernels.CoordMode, o int, scale float32, in int) float32 {
	x := float32(o)
	lr := float32(in) * scale
	switch m {
	case kernels.CoordHalfPixel:
		return (x+0.5)/scale - 0.5
	case kernels.CoordPytorchHalfPixel:
		if lr > 1 {
			return (x+0.5)/scale - 0.5
		}
		return 0
	case kernels.CoordAlignCorners:
		if lr == 1 {
			return 0
		}
		return x * float32(in-1) / (lr - 1)
	case kernels.CoordAsymmetric:
		return x / scale
	}
	return (x + 0.5) / scale
}

// refNearest rounds by nearest_mode and clamps into [0, in).
func refNearest(m kernels.NearestMode, x float32, in int) int {
	f := float32(math.Floor(float64(x)))
	var v float32
	switch m {
	case kernels.NearestRoundPreferFloor, kernels.NearestRoundPreferCeil:
		switch d := x - f; {
		case d < 0.5:
			v = f
		case d > 0.5:
			v = f + 1
		case m == kernels.NearestRoundPreferFloor:
			v = f
		default:
			v = f + 1
		}
	case kernels.NearestFloor:
		v = f
	default:
		v = float32(math.Ceil(float64(x)))
	}
	return int(max(0, min(v, float32(in-1))))
}

// refResize is ONNX Resize: nearest on every axis, or linear on every axis
// with the neighbours floor(x) and floor(x)+1 clamped into the input (edge
// padding, as the ONNX reference).
func refResize(x []float32, xs kernels.Shape, p kernels.ResizeParams) ([]float32, kernels.Shape) {
	ys, _ := kernels.ResizeOutShape(xs, p)
	y := make([]float32, ys.Numel())
	r := len(xs)
	for i := range y {
		idx := plUnravel(i, ys)
		if p.Mode == kernels.ResizeNearest {
			for a := range idx {
				idx[a] = refNearest(p.Nearest, refCoord(p.Coord, idx[a], p.Scales[a], xs[a]), xs[a])
			}
			y[i] = x[plRavel(idx, xs)]
			continue
		}
		// Linear: sum over the 2^r corners.
		var s float64
		for corner := 0; corner < 1<<r; corner++ {
			w := 1.0
			at := make([]int, r)
			for a := range idx {
				c := refCoord(p.Coord, idx[a], p.Scales[a], xs[a])
				f := float32(math.Floor(float64(c)))
				t := float64(c - f)
				j := int(f)
				if corner>>a&1 == 1 {
					j++
					w *= t
				} else {
					w *= 1 - t
				}
				at[a] = max(0, min(j, xs[a]-1))
			}
			s += w * float64(x[plRavel(at, xs)])
		}
		y[i] = float32(s)
	}
	return y, ys
}

// refTranspose is y[I] = x[J] with J[perm[k]] = I[k].
func refTransposeND(x []float32, xs kernels.Shape, perm []int) ([]float32, kernels.Shape) {
	ys := make(kernels.Shape, len(xs))
	for k, a := range perm {
		ys[k] = xs[a]
	}
	y := make([]float32, ys.Numel())
	j := make([]int, len(xs))
	for i := range y {
		idx := plUnravel(i, ys)
		for k, a := range perm {
			j[a] = idx[k]
		}
		y[i] = x[plRavel(j, xs)]
	}
	return y, ys
}

// refDepthToSpace is ONNX's definition as a reshape and a transpose:
// DCR reshapes x to (N,b,b,C/b^2,H,W) and transposes by (0,3,4,1,5,2),
// CRD reshapes to (N,C/b^2,b,b,H,W) and transposes by (0,1,4,2,5,3).
func refDepthToSpace(x []float32, xs kernels.Shape, p kernels.DepthToSpaceParams) ([]float32, kernels.Shape) {
	b := p.Blocksize
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	c := C / (b * b)
	var y []float32
	if p.CRD {
		y, _ = refTransposeND(x, kernels.Shape{N, c, b, b, H, W}, []int{0, 1, 4, 2, 5, 3})
	} else {
		y, _ = refTransposeND(x, kernels.Shape{N, b, b, c, H, W}, []int{0, 3, 4, 1, 5, 2})
	}
	return y, kernels.Shape{N, c, H * b, W * b}
}

// refBroadcast is y[I] = x[J], x aligned to y's trailing axes, J[k] = 0
// where x's extent is 1.
func refBroadcastTo(x []float32, xs, ys kernels.Shape) []float32 {
	y := make([]float32, ys.Numel())
	off := len(ys) - len(xs)
	for i := range y {
		idx := plUnravel(i, ys)[off:]
		for a := range idx {
			if xs[a] == 1 {
				idx[a] = 0
			}
		}
		y[i] = x[plRavel(idx, xs)]
	}
	return y
}
