package kernels

import "fmt"

// Shape functions of the element-wise family (Binary with NumPy
// broadcasting) and ONNX axis normalisation shared by every family.

// BroadcastShape is the NumPy broadcast of a and b: shapes are aligned at
// their last axes (the shorter one padded with leading 1s), and along each
// axis the extents must be equal or one of them 1 (so 1 broadcasts to 0,
// but 0 and 3 do not broadcast). Negative extents are an ErrShape.
func BroadcastShape(a, b Shape) (Shape, error) {
	if err := layoutNonNegative("broadcast", "a", a); err != nil {
		return nil, err
	}
	if err := layoutNonNegative("broadcast", "b", b); err != nil {
		return nil, err
	}
	r := max(len(a), len(b))
	out := make(Shape, r)
	for i := range r {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("%w: broadcast: %v and %v differ on axis %d of the result (got %d and %d, want equal or one of them 1)", ErrShape, a, b, i, da, db)
		}
	}
	return out, nil
}

// NormalizeAxis maps an ONNX axis in [-rank, rank) to [0, rank); any other
// axis is an ErrParam.
func NormalizeAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("%w: axis %d for rank %d (want in [%d, %d))", ErrParam, axis, rank, -rank, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}
