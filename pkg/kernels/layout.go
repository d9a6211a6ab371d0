package kernels

import (
	"fmt"
	"math"
)

// Shape functions of the layout ops (Concat, Split, Slice, Pad, Resize,
// DepthToSpace, Transpose), for the graph's shape inference and the ONNX
// importer. Layout ops accept zero extents (an empty Slice is legal ONNX);
// negative extents are an ErrShape.

// layoutAxis is NormalizeAxis with the op's name in the error.
func layoutAxis(op string, axis, rank int) (int, error) {
	a, err := NormalizeAxis(axis, rank)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return a, nil
}

func layoutNonNegative(op, name string, s Shape) error {
	for i, d := range s {
		if d < 0 {
			return fmt.Errorf("%w: %s: %s dimension %d of %v is %d (want >= 0)", ErrShape, op, name, i, s, d)
		}
	}
	return nil
}

// ConcatOutShape is the shape of Concat of xs along axis (negative counts
// from the end): xs agree on every other axis, and the extents along axis
// add up.
func ConcatOutShape(xs []Shape, axis int) (Shape, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("%w: concat: no inputs (want >= 1)", ErrShape)
	}
	a, err := layoutAxis("concat", axis, len(xs[0]))
	if err != nil {
		return nil, err
	}
	out := xs[0].Clone()
	if err := layoutNonNegative("concat", "xs[0]", out); err != nil {
		return nil, err
	}
	for i, s := range xs[1:] {
		if err := layoutNonNegative("concat", fmt.Sprintf("xs[%d]", i+1), s); err != nil {
			return nil, err
		}
		if len(s) != len(out) {
			return nil, fmt.Errorf("%w: concat: xs[%d] has shape %v (want rank %d like xs[0] %v)", ErrShape, i+1, s, len(out), xs[0])
		}
		for d := range s {
			if d != a && s[d] != xs[0][d] {
				return nil, fmt.Errorf("%w: concat: xs[%d] has shape %v (want %v except on axis %d)", ErrShape, i+1, s, xs[0], a)
			}
		}
		out[a] += s[a]
	}
	return out, nil
}

// SliceExtent is the number of elements start, start+step, ... strictly
// before end (step > 0) or strictly after end (step < 0).
func SliceExtent(start, end, step int) int {
	switch {
	case step > 0 && end > start:
		return (end - start + step - 1) / step
	case step < 0 && start > end:
		return (start - end - step - 1) / -step
	}
	return 0
}

// CheckSlice checks that p is a normalised slice of x: one entry per axis,
// non-zero steps, and for step > 0 starts and ends in [0, dim], for
// step < 0 starts in [0, dim-1] and ends in [-1, dim-1] (NormalizeSlice
// makes such params from ONNX's inputs).
func CheckSlice(x Shape, p SliceParams) error {
	r := len(x)
	if len(p.Starts) != r || len(p.Ends) != r || len(p.Steps) != r {
		return fmt.Errorf("%w: slice: %d starts, %d ends, %d steps for x %v (want %d each)", ErrParam, len(p.Starts), len(p.Ends), len(p.Steps), x, r)
	}
	for i, d := range x {
		st, en, sp := p.Starts[i], p.Ends[i], p.Steps[i]
		switch {
		case sp == 0:
			return fmt.Errorf("%w: slice: step of axis %d is 0 (want != 0)", ErrParam, i)
		case sp > 0 && (st < 0 || st > d || en < 0 || en > d):
			return fmt.Errorf("%w: slice: axis %d (extent %d): start %d, end %d with step %d (want both in [0, %d])", ErrParam, i, d, st, en, sp, d)
		case sp < 0 && SliceExtent(st, en, sp) > 0 && (st < 0 || st > d-1 || en < -1 || en > d-1):
			return fmt.Errorf("%w: slice: axis %d (extent %d): start %d, end %d with step %d (want start in [0, %d], end in [-1, %d])", ErrParam, i, d, st, en, sp, d-1, d-1)
		}
	}
	return nil
}

// SliceOutShape is the shape of Slice(x, p) for normalised p (see
// CheckSlice): SliceExtent on each axis, possibly 0.
func SliceOutShape(x Shape, p SliceParams) (Shape, error) {
	if err := layoutNonNegative("slice", "x", x); err != nil {
		return nil, err
	}
	if err := CheckSlice(x, p); err != nil {
		return nil, err
	}
	out := make(Shape, len(x))
	for i := range x {
		out[i] = SliceExtent(p.Starts[i], p.Ends[i], p.Steps[i])
	}
	return out, nil
}

// NormalizeSlice turns ONNX Slice's inputs (opset 13) into SliceParams for
// x: axes defaults to 0..len(starts)-1 and may be negative; steps defaults
// to 1 and must not be 0; a negative start or end counts from the end of
// its axis; then, for step > 0, start and end are clamped to [0, dim], and
// for step < 0 start to [0, dim-1] and end to [-1, dim-1] (so ends of
// INT64_MAX or INT64_MIN mean "to the end" and "to the front"). Axes not
// listed take the whole extent.
func NormalizeSlice(x Shape, starts, ends, axes, steps []int64) (SliceParams, error) {
	r := len(x)
	if len(ends) != len(starts) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return SliceParams{}, fmt.Errorf("%w: slice: %d starts, %d ends, %d axes, %d steps (want equal lengths)", ErrParam, len(starts), len(ends), len(axes), len(steps))
	}
	if len(starts) > r {
		return SliceParams{}, fmt.Errorf("%w: slice: %d starts for x %v (want <= %d)", ErrParam, len(starts), x, r)
	}
	p := SliceParams{Starts: make([]int, r), Ends: make([]int, r), Steps: make([]int, r)}
	for i, d := range x {
		p.Starts[i], p.Ends[i], p.Steps[i] = 0, d, 1
	}
	seen := make([]bool, r)
	for k := range starts {
		axis := k
		if axes != nil {
			if axes[k] < int64(-r) || axes[k] >= int64(r) {
				return SliceParams{}, fmt.Errorf("%w: slice: axis %d for x %v (want in [%d, %d))", ErrParam, axes[k], x, -r, r)
			}
			axis = int(axes[k])
			if axis < 0 {
				axis += r
			}
		}
		if seen[axis] {
			return SliceParams{}, fmt.Errorf("%w: slice: axis %d given twice", ErrParam, axis)
		}
		seen[axis] = true
		step := int64(1)
		if steps != nil {
			step = steps[k]
		}
		if step == 0 {
			return SliceParams{}, fmt.Errorf("%w: slice: step of axis %d is 0 (want != 0)", ErrParam, axis)
		}
		d := int64(x[axis])
		st, en := starts[k], ends[k]
		if st < 0 {
			st += d
		}
		if en < 0 {
			en += d
		}
		if step > 0 {
			st, en = clamp64(st, 0, d), clamp64(en, 0, d)
		} else {
			st, en = clamp64(st, 0, d-1), clamp64(en, -1, d-1)
		}
		// Steps beyond the extent select one element at most; clamp them so
		// the int conversion cannot overflow.
		step = clamp64(step, -d-1, d+1)
		p.Starts[axis], p.Ends[axis], p.Steps[axis] = int(st), int(en), int(step)
	}
	return p, nil
}

func clamp64(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

// PadOutShape is the shape of Pad(x, p): out[i] = x[i] + Pads[i] +
// Pads[rank+i]; negative pads crop, and no extent may go below 0. Reflect
// needs extent >= 2 on any axis it pads, and reflect and edge need a
// non-empty axis to pad from.
func PadOutShape(x Shape, p PadParams) (Shape, error) {
	r := len(x)
	if p.Mode != PadConstant && p.Mode != PadReflect && p.Mode != PadEdge {
		return nil, fmt.Errorf("%w: pad: mode %d (want constant, reflect or edge)", ErrParam, p.Mode)
	}
	if len(p.Pads) != 2*r {
		return nil, fmt.Errorf("%w: pad: %d pads for x %v (want %d)", ErrParam, len(p.Pads), x, 2*r)
	}
	if err := layoutNonNegative("pad", "x", x); err != nil {
		return nil, err
	}
	out := make(Shape, r)
	for i, d := range x {
		b, e := p.Pads[i], p.Pads[r+i]
		out[i] = d + b + e
		if out[i] < 0 || d+min(b, 0)+min(e, 0) < 0 {
			return nil, fmt.Errorf("%w: pad: axis %d extent %d with pads %d, %d crops below 0", ErrShape, i, d, b, e)
		}
		kept := d + min(b, 0) + min(e, 0)
		if (b > 0 || e > 0) && p.Mode != PadConstant && kept == 0 {
			return nil, fmt.Errorf("%w: pad: axis %d has no elements left to pad from in mode %d", ErrShape, i, p.Mode)
		}
	}
	return out, nil
}

// ResizeOutShape is the shape of Resize(x, p): out[i] = floor(x[i] *
// Scales[i]), the product taken in float32 as ONNX Runtime does (so that
// scales computed as sizes/in give back sizes). Scales must be positive and
// every output extent at least 1.
func ResizeOutShape(x Shape, p ResizeParams) (Shape, error) {
	if len(p.Scales) != len(x) {
		return nil, fmt.Errorf("%w: resize: %d scales for x %v (want %d)", ErrParam, len(p.Scales), x, len(x))
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("resize: x: %w", err)
	}
	out := make(Shape, len(x))
	for i, d := range x {
		s := p.Scales[i]
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("%w: resize: scale %v on axis %d (want > 0)", ErrParam, s, i)
		}
		prod := float32(d) * s
		out[i] = int(math.Floor(float64(prod)))
		if out[i] < 1 {
			return nil, fmt.Errorf("%w: resize: axis %d extent %d times scale %v is %d (want >= 1)", ErrShape, i, d, s, out[i])
		}
	}
	return out, nil
}

// DepthToSpaceOutShape is the shape of DepthToSpace on x (N,C,H,W) with
// blocksize b: (N, C/(b*b), H*b, W*b); C must be a multiple of b*b.
func DepthToSpaceOutShape(x Shape, p DepthToSpaceParams) (Shape, error) {
	b := p.Blocksize
	if b <= 0 {
		return nil, fmt.Errorf("%w: depthtospace: blocksize %d (want > 0)", ErrParam, b)
	}
	if len(x) != 4 {
		return nil, fmt.Errorf("%w: depthtospace: x has shape %v (want rank 4, NCHW)", ErrShape, x)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("depthtospace: x: %w", err)
	}
	if x[1]%(b*b) != 0 {
		return nil, fmt.Errorf("%w: depthtospace: x %v has %d channels (want a multiple of blocksize^2 = %d)", ErrShape, x, x[1], b*b)
	}
	return Shape{x[0], x[1] / (b * b), x[2] * b, x[3] * b}, nil
}

// CheckPerm checks that perm is a permutation of 0..rank-1.
func CheckPerm(perm []int, rank int) error {
	if len(perm) != rank {
		return fmt.Errorf("%w: transpose: perm %v for rank %d (want %d entries)", ErrParam, perm, rank, rank)
	}
	seen := make([]bool, rank)
	for _, p := range perm {
		if p < 0 || p >= rank || seen[p] {
			return fmt.Errorf("%w: transpose: perm %v is not a permutation of 0..%d", ErrParam, perm, rank-1)
		}
		seen[p] = true
	}
	return nil
}

// TransposeOutShape is the shape of Transpose(x, perm): out[i] =
// x[perm[i]]. An empty perm reverses the axes (ONNX's default).
func TransposeOutShape(x Shape, perm []int) (Shape, error) {
	if len(perm) == 0 {
		perm = ReversePerm(len(x))
	}
	if err := CheckPerm(perm, len(x)); err != nil {
		return nil, err
	}
	out := make(Shape, len(x))
	for i, p := range perm {
		out[i] = x[p]
	}
	return out, nil
}

// ReversePerm is rank-1, ..., 1, 0: Transpose's default perm.
func ReversePerm(rank int) []int {
	p := make([]int, rank)
	for i := range p {
		p[i] = rank - 1 - i
	}
	return p
}

// InversePerm returns q with q[perm[i]] = i: Transpose(Transpose(x, perm), q)
// is x. perm must be a permutation.
func InversePerm(perm []int) []int {
	q := make([]int, len(perm))
	for i, p := range perm {
		q[p] = i
	}
	return q
}
