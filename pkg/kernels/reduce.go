package kernels

import (
	"fmt"
	"slices"
)

// Shape functions of the reduce family (Softmax, LogSoftmax, ReduceSum,
// ReduceMean, ArgMax). Axes follow ONNX: negative axes count from the end.
// Zero extents are legal except along an ArgMax axis (no element to pick).

// NormalizeAxes maps ONNX reduce axes to sorted, distinct axes in
// [0, rank): negative axes count from the end, a repeated axis is an
// ErrParam, and no axes (nil or empty) means every axis (ONNX's default
// with noop_with_empty_axes=0).
func NormalizeAxes(axes []int, rank int) ([]int, error) {
	if len(axes) == 0 {
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, len(axes))
	for i, a := range axes {
		n, err := layoutAxis("reduce", a, rank)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	slices.Sort(out)
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, fmt.Errorf("%w: reduce: axes %v name axis %d twice (want distinct axes)", ErrParam, axes, out[i])
		}
	}
	return out, nil
}

// ReduceOutShape is the shape of ReduceSum/ReduceMean of x over axes (see
// NormalizeAxes): the reduced extents become 1 with keepdims, or are
// removed without.
func ReduceOutShape(x Shape, axes []int, keepdims bool) (Shape, error) {
	if err := layoutNonNegative("reduce", "x", x); err != nil {
		return nil, err
	}
	ax, err := NormalizeAxes(axes, len(x))
	if err != nil {
		return nil, err
	}
	out := Shape{}
	k := 0
	for i, d := range x {
		if k < len(ax) && ax[k] == i {
			k++
			if keepdims {
				out = append(out, 1)
			}
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// ReduceAxes marks the axes of x that a reduction over axes (already
// checked, e.g. by ReduceOutShape) removes, and gives the factor of its
// sum: 1, or for a mean 1/count (+Inf for an empty reduction, so that
// 0*Inf makes the mean NaN).
func ReduceAxes(x Shape, axes []int, mean bool) (red []bool, scale float64) {
	ax, _ := NormalizeAxes(axes, len(x))
	red = make([]bool, len(x))
	count := 1
	for _, a := range ax {
		red[a] = true
		count *= x[a]
	}
	scale = 1.0
	if mean {
		scale = 1 / float64(count)
	}
	return red, scale
}

// SplitAxis views x as (outer, n, inner) around axis (negative counts from
// the end): outer is the product of the extents before axis, n its
// extent, inner the product of those after. Softmax and ArgMax work on
// this view.
func SplitAxis(x Shape, axis int) (outer, n, inner int, err error) {
	a, err := layoutAxis("axis", axis, len(x))
	if err != nil {
		return 0, 0, 0, err
	}
	if err := layoutNonNegative("axis", "x", x); err != nil {
		return 0, 0, 0, err
	}
	return x[:a].Numel(), x[a], x[a+1:].Numel(), nil
}

// ArgMaxOutShape is the shape of ArgMax of x along axis: that extent
// becomes 1 with keepdims, or is removed without. The axis must not be
// empty.
func ArgMaxOutShape(x Shape, axis int, keepdims bool) (Shape, error) {
	_, n, _, err := SplitAxis(x, axis)
	if err != nil {
		return nil, fmt.Errorf("argmax: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: argmax: axis %d of x %v is empty (want extent > 0)", ErrShape, axis, x)
	}
	a := axis
	if a < 0 {
		a += len(x)
	}
	out := x.Clone()
	if keepdims {
		out[a] = 1
		return out, nil
	}
	return append(out[:a], out[a+1:]...), nil
}
