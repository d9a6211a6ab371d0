package kernels

import (
	"fmt"
	"math"
)

// Resize's index arithmetic and checks, shared by every backend so that
// they all pick the same input pixels (the CUDA backend computes its
// tables on the host with these).

// ResizeCoord maps output position o of an axis of extent in resized by
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
func ResizeCoord(m CoordMode, o int, scale float32, in int) float32 {
	x := float32(o)
	lr := float32(in) * scale
	switch m {
	case CoordHalfPixel:
		return (x+0.5)/scale - 0.5
	case CoordPytorchHalfPixel:
		if lr <= 1 {
			return 0
		}
		return (x+0.5)/scale - 0.5
	case CoordAlignCorners:
		if lr == 1 {
			return 0
		}
		return x * float32(in-1) / (lr - 1)
	case CoordAsymmetric:
		return x / scale
	default: // CoordTFHalfPixelForNN
		return (x + 0.5) / scale
	}
}

// ResizeNearestIndex rounds an input coordinate by nearest_mode and clamps
// it into [0, in).
func ResizeNearestIndex(m NearestMode, x float32, in int) int {
	var v float64
	xf := float64(x)
	switch m {
	case NearestRoundPreferFloor:
		if x == float32(math.Trunc(xf))+0.5 {
			v = math.Floor(xf)
		} else {
			v = math.Round(xf)
		}
	case NearestRoundPreferCeil:
		if x == float32(math.Trunc(xf))+0.5 {
			v = math.Ceil(xf)
		} else {
			v = math.Round(xf)
		}
	case NearestFloor:
		v = math.Floor(xf)
	default: // NearestCeil
		v = math.Ceil(xf)
	}
	return int(max(0, min(v, float64(in-1))))
}

// CheckResize validates p against x and y (named xName and yName in
// errors, with op): the modes, y's shape, and what linear mode supports.
func CheckResize(op string, x, y *Tensor, p ResizeParams, xName, yName string) error {
	if p.Mode != ResizeNearest && p.Mode != ResizeLinear {
		return fmt.Errorf("%w: %s: mode %d (want nearest or linear)", ErrParam, op, p.Mode)
	}
	if p.Coord < CoordHalfPixel || p.Coord > CoordTFHalfPixelForNN {
		return fmt.Errorf("%w: %s: coordinate mode %d", ErrParam, op, p.Coord)
	}
	if p.Nearest < NearestRoundPreferFloor || p.Nearest > NearestCeil {
		return fmt.Errorf("%w: %s: nearest mode %d", ErrParam, op, p.Nearest)
	}
	if x == nil {
		return fmt.Errorf("%w: %s: %s is nil", ErrShape, op, xName)
	}
	ys, err := ResizeOutShape(x.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := CheckShape(op+": "+yName, y, ys); err != nil {
		return err
	}
	if p.Mode == ResizeLinear {
		r := len(x.Shape)
		if r < 2 {
			return fmt.Errorf("%w: %s: linear mode on x %v (want rank >= 2; it interpolates the last two axes)", ErrUnsupported, op, x.Shape)
		}
		for i := range r - 2 {
			if p.Scales[i] != 1 {
				return fmt.Errorf("%w: %s: linear mode with scales %v (want 1 on all but the last two axes)", ErrUnsupported, op, p.Scales)
			}
		}
	}
	return nil
}

// ResizeNearestTables maps each output position of each axis of y to its
// input position in x.
func ResizeNearestTables(x, y Shape, p ResizeParams) [][]int {
	tabs := make([][]int, len(x))
	for i := range x {
		t := make([]int, y[i])
		for o := range t {
			t[o] = ResizeNearestIndex(p.Nearest, ResizeCoord(p.Coord, o, p.Scales[i], x[i]), x[i])
		}
		tabs[i] = t
	}
	return tabs
}

// ResizeLinearAxis holds, for linear mode along one axis, per output
// position the two input neighbours and the weight of the upper one:
// out = (1-W)*in[Lo] + W*in[Hi], the input coordinate clamped to [0, in-1]
// as ONNX Runtime does.
type ResizeLinearAxis struct {
	Lo, Hi []int
	W      []float32
}

// NewResizeLinearAxis computes the axis's neighbours and weights.
func NewResizeLinearAxis(m CoordMode, scale float32, in, out int) ResizeLinearAxis {
	a := ResizeLinearAxis{Lo: make([]int, out), Hi: make([]int, out), W: make([]float32, out)}
	for o := range out {
		x := ResizeCoord(m, o, scale, in)
		x = max(0, min(x, float32(in-1)))
		l := min(int(x), in-1)
		a.Lo[o], a.Hi[o], a.W[o] = l, min(l+1, in-1), x-float32(l)
	}
	return a
}
