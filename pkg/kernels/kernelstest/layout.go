package kernelstest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testLayout(t *testing.T, b kernels.Backend) {
	t.Run("shapes", func(t *testing.T) { testLayoutShapes(t) })
	t.Run("concat_split", func(t *testing.T) { testConcatSplit(t, b) })
	t.Run("slice", func(t *testing.T) { testSlice(t, b) })
	t.Run("pad", func(t *testing.T) { testPad(t, b) })
	t.Run("resize", func(t *testing.T) { testResize(t, b) })
	t.Run("depthtospace", func(t *testing.T) { testDepthToSpace(t, b) })
	t.Run("transpose", func(t *testing.T) { testTranspose(t, b) })
	t.Run("broadcastto", func(t *testing.T) { testBroadcastTo(t, b) })
	t.Run("errors", func(t *testing.T) { testLayoutErrors(t, b) })
}

// plFwd runs op on x into a guarded output of shape ys and compares it
// with want.
func plFwd(t *testing.T, b kernels.Backend, name string, x []float32, xs, ys kernels.Shape, op func(y, x *kernels.Tensor) error, want []float32, tol Tol) {
	t.Helper()
	xt := Upload(t, b, x, xs...)
	y := NewGuarded(t, b, ys, 321)
	if err := op(y.T, xt); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	AssertClose(t, name, y.Check(t, name), want, tol)
}

// plLinearGrad checks a linear op's backward against central differences
// of Dot(op(x), w) on random x of shape xs.
func plLinearGrad(t *testing.T, b kernels.Backend, name string, xs, ys kernels.Shape, fwd func(y, x *kernels.Tensor) error, bwd func(dx, dy *kernels.Tensor) error) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(xs.Numel()), uint64(ys.Numel())))
	x := Upload(t, b, Rand(r, xs.Numel(), -1, 1), xs...)
	plGradCheck(t, b, name, x, ys, 1e-2, func(y *kernels.Tensor) error { return fwd(y, x) }, bwd)
}

func testLayoutShapes(t *testing.T) {
	x := kernels.Shape{20, 10, 5}
	const maxI, minI = math.MaxInt64, math.MinInt64
	for _, c := range []struct {
		name                       string
		starts, ends, axes, steps  []int64
		wantStart, wantEnd, wantSt []int
		wantShape                  kernels.Shape
	}{
		// ONNX test_slice: x[0:3, 0:10].
		{"slice", []int64{0, 0}, []int64{3, 10}, []int64{0, 1}, []int64{1, 1}, []int{0, 0, 0}, []int{3, 10, 5}, []int{1, 1, 1}, kernels.Shape{3, 10, 5}},
		// test_slice_neg_steps: x[20:0:-1, 10:0:-3, 4:1:-2]: starts clamp
		// to 19 and 9; extents 19, 3 (9,6,3), 2 (4,2).
		{"neg_steps", []int64{20, 10, 4}, []int64{0, 0, 1}, []int64{0, 1, 2}, []int64{-1, -3, -2}, []int{19, 9, 4}, []int{0, 0, 1}, []int{-1, -3, -2}, kernels.Shape{19, 3, 2}},
		// test_slice_end_out_of_bounds: ends 1000 clamps to 10.
		{"end_oob", []int64{1}, []int64{1000}, []int64{1}, []int64{1}, []int{0, 1, 0}, []int{20, 10, 5}, []int{1, 1, 1}, kernels.Shape{20, 9, 5}},
		// test_slice_start_out_of_bounds: empty.
		{"start_oob", []int64{1000}, []int64{1000}, []int64{1}, []int64{1}, []int{0, 10, 0}, []int{20, 10, 5}, []int{1, 1, 1}, kernels.Shape{20, 0, 5}},
		// test_slice_negative_axes and default steps: axes -1, -2; -2+10 = 8.
		{"neg_axes", []int64{0, -2}, []int64{3, maxI}, []int64{-1, -2}, nil, []int{0, 8, 0}, []int{20, 10, 3}, []int{1, 1, 1}, kernels.Shape{20, 2, 3}},
		// Default axes; INT64_MIN end with step -1 reverses the whole axis.
		{"reverse", []int64{-1}, []int64{minI}, nil, []int64{-1}, []int{19, 0, 0}, []int{-1, 10, 5}, []int{-1, 1, 1}, kernels.Shape{20, 10, 5}},
		// A step past the extent selects one element.
		{"huge_step", []int64{2}, []int64{maxI}, []int64{2}, []int64{maxI}, []int{0, 0, 2}, []int{20, 10, 5}, []int{1, 1, 6}, kernels.Shape{20, 10, 1}},
	} {
		p, err := kernels.NormalizeSlice(x, c.starts, c.ends, c.axes, c.steps)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if fmt.Sprint(p.Starts, p.Ends, p.Steps) != fmt.Sprint(c.wantStart, c.wantEnd, c.wantSt) {
			t.Errorf("%s: got %v %v %v (want %v %v %v)", c.name, p.Starts, p.Ends, p.Steps, c.wantStart, c.wantEnd, c.wantSt)
		}
		if s, err := kernels.SliceOutShape(x, p); err != nil || !s.Equal(c.wantShape) {
			t.Errorf("%s: SliceOutShape = %v, %v (want %v)", c.name, s, err, c.wantShape)
		}
	}
	if _, err := kernels.NormalizeSlice(x, []int64{0}, []int64{1}, []int64{0}, []int64{0}); err == nil {
		t.Error("slice step 0: want error")
	}
	if _, err := kernels.NormalizeSlice(x, []int64{0, 0}, []int64{1, 1}, []int64{1, -2}, nil); err == nil {
		t.Error("slice repeated axis: want error")
	}
	// Resize: floor(in*scale); 10*0.7 is 7 in float32 (0.7f*10 rounds up).
	if s, err := kernels.ResizeOutShape(kernels.Shape{1, 1, 2, 10}, kernels.ResizeParams{Scales: []float32{1, 1, 0.6, 0.7}}); err != nil || !s.Equal(kernels.Shape{1, 1, 1, 7}) {
		t.Errorf("ResizeOutShape = %v, %v (want (1,1,1,7))", s, err)
	}
	if s, err := kernels.TransposeOutShape(kernels.Shape{2, 3, 4}, nil); err != nil || !s.Equal(kernels.Shape{4, 3, 2}) {
		t.Errorf("TransposeOutShape default = %v, %v (want (4,3,2))", s, err)
	}
	if q := kernels.InversePerm([]int{2, 0, 3, 1}); fmt.Sprint(q) != "[1 3 0 2]" {
		t.Errorf("InversePerm([2 0 3 1]) = %v (want [1 3 0 2])", q)
	}
	if s, err := kernels.ConcatOutShape([]kernels.Shape{{2, 1, 3}, {2, 4, 3}}, -2); err != nil || !s.Equal(kernels.Shape{2, 5, 3}) {
		t.Errorf("ConcatOutShape = %v, %v (want (2,5,3))", s, err)
	}
	if s, err := kernels.PadOutShape(kernels.Shape{3, 4}, kernels.PadParams{Pads: []int{1, -2, 0, 3}}); err != nil || !s.Equal(kernels.Shape{4, 5}) {
		t.Errorf("PadOutShape = %v, %v (want (4,5))", s, err)
	}
}

func testConcatSplit(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		shapes []kernels.Shape
		axis   int
	}{
		{[]kernels.Shape{{2, 1, 3}, {2, 4, 3}, {2, 2, 3}}, 1},
		{[]kernels.Shape{{2, 3, 1}, {2, 3, 5}}, -1},
		{[]kernels.Shape{{1, 3, 4}, {3, 3, 4}}, 0},
		{[]kernels.Shape{{7}, {0}, {2}}, 0},
		{[]kernels.Shape{{3, 40, 50}, {3, 10, 50}}, -2},
	} {
		name := fmt.Sprintf("concat %v axis %d", c.shapes, c.axis)
		vals := make([][]float32, len(c.shapes))
		ts := make([]*kernels.Tensor, len(c.shapes))
		for i, s := range c.shapes {
			vals[i] = Rand(r, s.Numel(), -3, 3)
			ts[i] = Upload(t, b, vals[i], s...)
		}
		axis := c.axis
		if axis < 0 {
			axis += len(c.shapes[0])
		}
		want, ys := refConcat(vals, c.shapes, axis)
		y := NewGuarded(t, b, ys, 5)
		if err := b.Concat(y.T, ts, c.axis); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name, y.Check(t, name), want, TolExact)
		parts := make([]*Guarded, len(c.shapes))
		pts := make([]*kernels.Tensor, len(c.shapes))
		for i, s := range c.shapes {
			parts[i] = NewGuarded(t, b, s, 6)
			pts[i] = parts[i].T
		}
		if err := b.Split(pts, y.T, c.axis); err != nil {
			t.Fatalf("split: %s: %v", name, err)
		}
		for i := range parts {
			AssertClose(t, "split "+name, parts[i].Check(t, name), vals[i], TolExact)
		}
	}
}

// plSliceCases are normalised slices of (4,5,6), negative steps included.
func plSliceCases() []kernels.SliceParams {
	return []kernels.SliceParams{
		{Starts: []int{0, 0, 0}, Ends: []int{4, 5, 6}, Steps: []int{1, 1, 1}},
		{Starts: []int{1, 0, 2}, Ends: []int{3, 5, 6}, Steps: []int{1, 2, 1}},
		{Starts: []int{3, 4, 5}, Ends: []int{-1, -1, -1}, Steps: []int{-1, -2, -3}},
		{Starts: []int{0, 4, 1}, Ends: []int{4, 0, 6}, Steps: []int{3, -1, 2}},
		{Starts: []int{2, 1, 5}, Ends: []int{3, 2, 0}, Steps: []int{1, 1, -2}},
		{Starts: []int{1, 0, 0}, Ends: []int{1, 5, 6}, Steps: []int{1, 1, 1}}, // empty
	}
}

func testSlice(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(13, 14))
	xs := kernels.Shape{4, 5, 6}
	x := Rand(r, xs.Numel(), -1, 1)
	for _, p := range plSliceCases() {
		name := fmt.Sprintf("slice %v", p)
		want, ys := refSlice(x, xs, p)
		plFwd(t, b, name, x, xs, ys, func(y, xt *kernels.Tensor) error { return b.Slice(y, xt, p) }, want, TolExact)
		if ys.Numel() == 0 {
			continue
		}
		// Backward: dx = 0 except the slice's positions get dy.
		dy := Rand(r, ys.Numel(), -1, 1)
		wantDx := make([]float32, xs.Numel())
		for i := range dy {
			idx := plUnravel(i, ys)
			for a := range idx {
				idx[a] = p.Starts[a] + idx[a]*p.Steps[a]
			}
			wantDx[plRavel(idx, xs)] = dy[i]
		}
		dx := NewGuarded(t, b, xs, 77)
		if err := b.SliceBackward(dx.T, Upload(t, b, dy, ys...), p); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		AssertClose(t, name+" backward", dx.Check(t, name), wantDx, TolExact)
	}
	p := plSliceCases()[3]
	ys, _ := kernels.SliceOutShape(xs, p)
	plLinearGrad(t, b, "slice grad", xs, ys, func(y, x *kernels.Tensor) error { return b.Slice(y, x, p) },
		func(dx, dy *kernels.Tensor) error { return b.SliceBackward(dx, dy, p) })
}

func testPad(t *testing.T, b kernels.Backend) {
	// ONNX Pad doc examples: x (3,2), pads [0,2,0,0] (two columns before).
	x := []float32{1, 1.2, 2.3, 3.4, 4.5, 5.7}
	xs := kernels.Shape{3, 2}
	for _, c := range []struct {
		mode kernels.PadMode
		want []float32
	}{
		{kernels.PadConstant, []float32{0, 0, 1, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7}},
		// reflect mirrors about column 0 without repeating it: 1.2 then 1.
		{kernels.PadReflect, []float32{1, 1.2, 1, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7}},
		{kernels.PadEdge, []float32{1, 1, 1, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7}},
	} {
		p := kernels.PadParams{Mode: c.mode, Pads: []int{0, 2, 0, 0}}
		plFwd(t, b, fmt.Sprintf("pad doc mode %d", c.mode), x, xs, kernels.Shape{3, 4}, func(y, xt *kernels.Tensor) error { return b.Pad(y, xt, p) }, c.want, TolExact)
	}
	// Crop then pad: [1,2,3,4] with begin -1 keeps [2,3,4]; reflect end 2
	// gives 3, 2; edge gives 4, 4; constant 9 gives 9, 9.
	for _, c := range []struct {
		mode kernels.PadMode
		want []float32
	}{
		{kernels.PadReflect, []float32{2, 3, 4, 3, 2}},
		{kernels.PadEdge, []float32{2, 3, 4, 4, 4}},
		{kernels.PadConstant, []float32{2, 3, 4, 9, 9}},
	} {
		p := kernels.PadParams{Mode: c.mode, Pads: []int{-1, 2}, Value: 9}
		plFwd(t, b, fmt.Sprintf("pad crop mode %d", c.mode), []float32{1, 2, 3, 4}, kernels.Shape{4}, kernels.Shape{5}, func(y, xt *kernels.Tensor) error { return b.Pad(y, xt, p) }, c.want, TolExact)
	}
	// Reflect backward folds: x [a,b,c], pads 2 before: y = [c,b,a,b,c],
	// so dx = [dy2, dy1+dy3, dy0+dy4].
	dx := NewGuarded(t, b, kernels.Shape{3}, 1)
	if err := b.PadBackward(dx.T, Upload(t, b, []float32{1, 10, 100, 1000, 10000}, 5), kernels.PadParams{Mode: kernels.PadReflect, Pads: []int{2, 0}}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "pad reflect backward", dx.Check(t, "pad reflect backward"), []float32{100, 1010, 10001}, TolExact)

	// Random, rank 1 to 4, against the reference; reflect pads beyond the
	// extent reflect back and forth.
	r := rand.New(rand.NewPCG(15, 16))
	for _, c := range []struct {
		xs   kernels.Shape
		pads []int
	}{
		{kernels.Shape{5}, []int{7, 4}},
		{kernels.Shape{3, 4}, []int{2, -1, 1, 3}},
		{kernels.Shape{2, 3, 4}, []int{0, 1, 2, 0, 2, 1}},
		{kernels.Shape{2, 3, 4, 5}, []int{0, 0, 1, 2, 0, 0, 2, 1}},
		{kernels.Shape{2, 3, 4, 5}, []int{1, 0, -1, 3, 0, 2, 1, -2}},
		{kernels.Shape{1, 2, 3, 40}, []int{0, 0, 2, 3, 0, 0, 1, 5}},
	} {
		for _, mode := range []kernels.PadMode{kernels.PadConstant, kernels.PadReflect, kernels.PadEdge} {
			p := kernels.PadParams{Mode: mode, Pads: c.pads, Value: -0.5}
			name := fmt.Sprintf("pad %v %v mode %d", c.xs, c.pads, mode)
			x := Rand(r, c.xs.Numel(), -1, 1)
			want, ys := refPad(x, c.xs, p)
			plFwd(t, b, name, x, c.xs, ys, func(y, xt *kernels.Tensor) error { return b.Pad(y, xt, p) }, want, TolExact)
			if c.xs.Numel() <= 60 {
				plLinearGrad(t, b, name, c.xs, ys, func(y, x *kernels.Tensor) error { return b.Pad(y, x, p) },
					func(dx, dy *kernels.Tensor) error { return b.PadBackward(dx, dy, p) })
			}
		}
	}
}

func testResize(t *testing.T, b kernels.Backend) {
	x4 := []float32{1, 2, 3, 4}
	x8 := plSeq(8)
	x16 := plSeq(16)
	nn := func(c kernels.CoordMode, m kernels.NearestMode, s ...float32) kernels.ResizeParams {
		return kernels.ResizeParams{Mode: kernels.ResizeNearest, Coord: c, Nearest: m, Scales: s}
	}
	lin := func(c kernels.CoordMode, s ...float32) kernels.ResizeParams {
		return kernels.ResizeParams{Mode: kernels.ResizeLinear, Coord: c, Scales: s}
	}
	third, twoThirds := float32(1.0/3), float32(2.0/3)
	for _, c := range []struct {
		name string
		x    []float32
		xs   kernels.Shape
		p    kernels.ResizeParams
		want []float32
	}{
		// ONNX test_resize_upsample_scales_nearest: 2x2 by (2,3), half_pixel,
		// round_prefer_floor: each input repeated into a 2x3 block.
		{"upsample_scales_nearest", x4, kernels.Shape{1, 1, 2, 2}, nn(kernels.CoordHalfPixel, kernels.NearestRoundPreferFloor, 1, 1, 2, 3),
			[]float32{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}},
		// test_resize_downsample_scales_nearest: (2,4) by 0.6 -> (1,2); rows:
		// 0.5/0.6-0.5 = 0.33 -> 0; cols 0.33 -> 0 and 1.5/0.6-0.5 = 2 -> 2.
		{"downsample_scales_nearest", x8, kernels.Shape{1, 1, 2, 4}, nn(kernels.CoordHalfPixel, kernels.NearestRoundPreferFloor, 1, 1, 0.6, 0.6), []float32{1, 3}},
		// test_resize_upsample_sizes_nearest: 2x2 to 7x8 (scales 3.5, 4):
		// rows (o+0.5)/3.5-0.5 = -0.36,-0.07,0.21,0.5(floor),0.79,1.07,1.36.
		{"upsample_sizes_nearest", x4, kernels.Shape{1, 1, 2, 2}, nn(kernels.CoordHalfPixel, kernels.NearestRoundPreferFloor, 1, 1, 3.5, 4),
			[]float32{1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2,
				3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 3, 3, 4, 4, 4, 4}},
		// test_resize_upsample_sizes_nearest_ceil_half_pixel: 4x4 to 8x8:
		// o/2-0.25 ceil -> 0,1,1,2,2,3,3,4(clamped 3).
		{"nearest_ceil_half_pixel", x16, kernels.Shape{1, 1, 4, 4}, nn(kernels.CoordHalfPixel, kernels.NearestCeil, 1, 1, 2, 2),
			plNearestGrid(x16, 4, []int{0, 1, 1, 2, 2, 3, 3, 3})},
		// test_resize_upsample_sizes_nearest_floor_align_corners: o*3/7
		// floored -> 0,0,0,1,1,2,2,3.
		{"nearest_floor_align_corners", x16, kernels.Shape{1, 1, 4, 4}, nn(kernels.CoordAlignCorners, kernels.NearestFloor, 1, 1, 2, 2),
			plNearestGrid(x16, 4, []int{0, 0, 0, 1, 1, 2, 2, 3})},
		// test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric:
		// o/2 with halves up -> 0,1,1,2,2,3,3,4(clamped 3).
		{"nearest_round_prefer_ceil_asymmetric", x16, kernels.Shape{1, 1, 4, 4}, nn(kernels.CoordAsymmetric, kernels.NearestRoundPreferCeil, 1, 1, 2, 2),
			plNearestGrid(x16, 4, []int{0, 1, 1, 2, 2, 3, 3, 3})},
		// test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn: 4x4 to
		// 3x2: rows (o+0.5)/0.75 = 0.67,2,3.33 -> 1,2,3; cols 1, 3.
		{"nearest_tf_half_pixel_for_nn", x16, kernels.Shape{1, 1, 4, 4}, nn(kernels.CoordTFHalfPixelForNN, kernels.NearestRoundPreferFloor, 1, 1, 0.75, 0.5),
			[]float32{6, 8, 10, 12, 14, 16}},
		// test_resize_upsample_scales_linear: 2x2 by 2, half_pixel: rows and
		// cols at -0.25(clamped 0), 0.25, 0.75, 1.25(clamped 1).
		{"upsample_scales_linear", x4, kernels.Shape{1, 1, 2, 2}, lin(kernels.CoordHalfPixel, 1, 1, 2, 2),
			[]float32{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}},
		// test_resize_upsample_scales_linear_align_corners: o/3.
		{"upsample_scales_linear_align_corners", x4, kernels.Shape{1, 1, 2, 2}, lin(kernels.CoordAlignCorners, 1, 1, 2, 2),
			[]float32{1, 1 + third, 1 + twoThirds, 2, 1 + 2*third, 2, 2 + third, 2 + twoThirds,
				2 + third, 2 + twoThirds, 3, 3 + third, 3, 3 + third, 3 + twoThirds, 4}},
		// test_resize_downsample_scales_linear: (2,4) by 0.6: row 1/3, cols
		// 1/3 and 2: (1-1/3)*[1.33, 4] + 1/3*[5.33, 8].
		{"downsample_scales_linear", x8, kernels.Shape{1, 1, 2, 4}, lin(kernels.CoordHalfPixel, 1, 1, 0.6, 0.6), []float32{2.6666665, 4.3333331}},
		// test_resize_downsample_scales_linear_align_corners: col 1 maps to
		// 1*(4-1)/(4*0.6-1) = 2.142857 (length_resized = 2.4, not 2).
		{"downsample_scales_linear_align_corners", x8, kernels.Shape{1, 1, 2, 4}, lin(kernels.CoordAlignCorners, 1, 1, 0.6, 0.6), []float32{1, 3.142857}},
		// test_resize_downsample_sizes_linear_pytorch_half_pixel: 4x4 to 3x1:
		// rows 0.17, 1.5, 2.83 -> 1+4*row; the single column is 0.
		{"downsample_sizes_linear_pytorch_half_pixel", x16, kernels.Shape{1, 1, 4, 4}, lin(kernels.CoordPytorchHalfPixel, 1, 1, 0.75, 0.25),
			[]float32{1.6666666, 7, 12.333333}},
	} {
		ys, err := kernels.ResizeOutShape(c.xs, c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		plFwd(t, b, c.name, c.x, c.xs, ys, func(y, xt *kernels.Tensor) error { return b.Resize(y, xt, c.p) }, c.want, TolF32)
		// The reference loops agree with the hand numbers too.
		ref, _ := refResize(c.x, c.xs, c.p)
		AssertClose(t, c.name+" (reference)", ref, c.want, TolF32)
	}

	r := rand.New(rand.NewPCG(17, 18))
	coords := []kernels.CoordMode{kernels.CoordHalfPixel, kernels.CoordAsymmetric, kernels.CoordAlignCorners, kernels.CoordPytorchHalfPixel, kernels.CoordTFHalfPixelForNN}
	nearests := []kernels.NearestMode{kernels.NearestRoundPreferFloor, kernels.NearestRoundPreferCeil, kernels.NearestFloor, kernels.NearestCeil}
	shapes := []struct {
		xs     kernels.Shape
		scales []float32
	}{
		{kernels.Shape{2, 3, 5, 7}, []float32{1, 1, 2, 2}},
		{kernels.Shape{1, 2, 6, 9}, []float32{1, 1, 0.5, 1.7}},
		{kernels.Shape{1, 1, 7, 4}, []float32{1, 1, 1.3, 3}},
		{kernels.Shape{2, 1, 3, 3, 4}, []float32{1, 1, 1, 2.5, 0.75}},
		{kernels.Shape{2, 3, 5}, []float32{2, 1, 1.5}}, // nearest only: N scaled
	}
	for _, s := range shapes {
		for _, cm := range coords {
			for _, nm := range nearests {
				p := nn(cm, nm, s.scales...)
				x := Rand(r, s.xs.Numel(), -1, 1)
				want, ys := refResize(x, s.xs, p)
				plFwd(t, b, fmt.Sprintf("resize nearest %v %+v", s.xs, p), x, s.xs, ys, func(y, xt *kernels.Tensor) error { return b.Resize(y, xt, p) }, want, TolExact)
			}
			if s.scales[0] != 1 || cm == kernels.CoordTFHalfPixelForNN {
				continue
			}
			p := lin(cm, s.scales...)
			x := Rand(r, s.xs.Numel(), -1, 1)
			want, ys := refResize(x, s.xs, p)
			plFwd(t, b, fmt.Sprintf("resize linear %v %+v", s.xs, p), x, s.xs, ys, func(y, xt *kernels.Tensor) error { return b.Resize(y, xt, p) }, want, TolF32)
		}
	}
	// Gradients (the adjoint) of both modes, upsampling and downsampling,
	// and nearest with a scaled N (several outputs per input across planes).
	for _, c := range []struct {
		xs kernels.Shape
		p  kernels.ResizeParams
	}{
		{kernels.Shape{1, 2, 3, 4}, nn(kernels.CoordHalfPixel, kernels.NearestRoundPreferFloor, 1, 1, 2, 1.5)},
		{kernels.Shape{1, 1, 6, 7}, nn(kernels.CoordAsymmetric, kernels.NearestFloor, 1, 1, 0.5, 0.6)},
		{kernels.Shape{2, 2, 3}, nn(kernels.CoordAlignCorners, kernels.NearestCeil, 2, 1, 2)},
		{kernels.Shape{1, 2, 3, 4}, lin(kernels.CoordHalfPixel, 1, 1, 2, 1.5)},
		{kernels.Shape{1, 1, 6, 7}, lin(kernels.CoordAlignCorners, 1, 1, 0.5, 0.6)},
		{kernels.Shape{2, 1, 3, 3}, lin(kernels.CoordPytorchHalfPixel, 1, 1, 1.7, 2)},
		{kernels.Shape{1, 1, 4, 3}, lin(kernels.CoordAsymmetric, 1, 1, 2.5, 1)},
	} {
		ys, err := kernels.ResizeOutShape(c.xs, c.p)
		if err != nil {
			t.Fatal(err)
		}
		plLinearGrad(t, b, fmt.Sprintf("resize grad %v %+v", c.xs, c.p), c.xs, ys,
			func(y, x *kernels.Tensor) error { return b.Resize(y, x, c.p) },
			func(dx, dy *kernels.Tensor) error { return b.ResizeBackward(dx, dy, c.p) })
	}
}

// plNearestGrid picks x[idx[i]][idx[j]] from an n x n plane for every i, j.
func plNearestGrid(x []float32, n int, idx []int) []float32 {
	var out []float32
	for _, i := range idx {
		for _, j := range idx {
			out = append(out, x[i*n+j])
		}
	}
	return out
}

func testDepthToSpace(t *testing.T, b kernels.Backend) {
	x := make([]float32, 48)
	for i := range x {
		x[i] = float32(i)
	}
	xs, ys := kernels.Shape{1, 8, 2, 3}, kernels.Shape{1, 2, 4, 6}
	// ONNX DepthToSpace doc examples, x = 0..47 (1,8,2,3), blocksize 2.
	// DCR: y[0,c,2h+i,2w+j] = x[0,(2i+j)*2+c,h,w]; channel k starts at 6k.
	dcr := []float32{
		0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4, 16, 5, 17, 27, 39, 28, 40, 29, 41,
		6, 18, 7, 19, 8, 20, 30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47}
	// CRD: channel c*4 + 2i + j.
	crd := []float32{
		0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20, 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23,
		24, 30, 25, 31, 26, 32, 36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47}
	for _, c := range []struct {
		crd  bool
		want []float32
	}{{false, dcr}, {true, crd}} {
		p := kernels.DepthToSpaceParams{Blocksize: 2, CRD: c.crd}
		name := fmt.Sprintf("depthtospace crd=%v", c.crd)
		plFwd(t, b, name, x, xs, ys, func(y, xt *kernels.Tensor) error { return b.DepthToSpace(y, xt, p) }, c.want, TolExact)
		ref, _ := refDepthToSpace(x, xs, p)
		AssertClose(t, name+" (reference)", ref, c.want, TolExact)
		// Backward of a permutation is its inverse: dx from y is x.
		dx := NewGuarded(t, b, xs, 3)
		if err := b.DepthToSpaceBackward(dx.T, Upload(t, b, c.want, ys...), p); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, name+" backward", dx.Check(t, name), x, TolExact)
	}
	r := rand.New(rand.NewPCG(19, 20))
	for _, c := range []struct {
		xs kernels.Shape
		bs int
	}{{kernels.Shape{2, 18, 3, 5}, 3}, {kernels.Shape{1, 8, 7, 2}, 2}, {kernels.Shape{2, 3, 2, 2}, 1}} {
		for _, crdMode := range []bool{false, true} {
			p := kernels.DepthToSpaceParams{Blocksize: c.bs, CRD: crdMode}
			xv := Rand(r, c.xs.Numel(), -1, 1)
			want, ys := refDepthToSpace(xv, c.xs, p)
			name := fmt.Sprintf("depthtospace %v %+v", c.xs, p)
			plFwd(t, b, name, xv, c.xs, ys, func(y, xt *kernels.Tensor) error { return b.DepthToSpace(y, xt, p) }, want, TolExact)
			if c.xs.Numel() <= 60 {
				plLinearGrad(t, b, name, c.xs, ys, func(y, x *kernels.Tensor) error { return b.DepthToSpace(y, x, p) },
					func(dx, dy *kernels.Tensor) error { return b.DepthToSpaceBackward(dx, dy, p) })
			}
		}
	}
}

// plPerms returns all permutations of 0..n-1.
func plPerms(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range plPerms(n - 1) {
		for at := 0; at <= len(p); at++ {
			q := append(append(append([]int{}, p[:at]...), n-1), p[at:]...)
			out = append(out, q)
		}
	}
	return out
}

func testTranspose(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(21, 22))
	check := func(xs kernels.Shape, perm []int) {
		t.Helper()
		x := Rand(r, xs.Numel(), -1, 1)
		p := perm
		if len(p) == 0 {
			p = kernels.ReversePerm(len(xs))
		}
		want, ys := refTransposeND(x, xs, p)
		name := fmt.Sprintf("transpose %v %v", xs, perm)
		xt := Upload(t, b, x, xs...)
		y := NewGuarded(t, b, ys, 4)
		if err := b.Transpose(y.T, xt, perm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name, y.Check(t, name), want, TolExact)
		// The backward is the transpose by the inverse perm.
		back := NewGuarded(t, b, xs, 4)
		if err := b.Transpose(back.T, y.T, kernels.InversePerm(p)); err != nil {
			t.Fatalf("%s inverse: %v", name, err)
		}
		AssertClose(t, name+" inverse", back.Check(t, name), x, TolExact)
	}
	for _, p := range plPerms(4) {
		check(kernels.Shape{2, 3, 4, 5}, p)
		check(kernels.Shape{3, 1, 2, 1}, p) // extent-1 axes merge away
	}
	for _, p := range plPerms(3) {
		check(kernels.Shape{37, 33, 5}, p) // partial 32x32 tiles
	}
	check(kernels.Shape{2, 35, 17, 19}, []int{0, 2, 3, 1}) // NCHW -> NHWC
	check(kernels.Shape{2, 17, 19, 35}, []int{0, 3, 1, 2}) // NHWC -> NCHW
	check(kernels.Shape{7}, []int{0})
	check(kernels.Shape{2, 3, 2, 3, 2, 3}, nil) // default: reversed
	check(kernels.Shape{2, 3, 4, 2, 3}, []int{1, 3, 0, 4, 2})
}

func testBroadcastTo(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, c := range []struct{ xs, ys kernels.Shape }{
		{kernels.Shape{3, 1}, kernels.Shape{2, 3, 4}},
		{kernels.Shape{}, kernels.Shape{2, 2}},
		{kernels.Shape{4}, kernels.Shape{3, 4}},
		{kernels.Shape{2, 1, 5}, kernels.Shape{2, 3, 5}},
		{kernels.Shape{1, 3, 1, 1}, kernels.Shape{2, 3, 4, 5}},
		{kernels.Shape{2, 3}, kernels.Shape{2, 3}},
	} {
		x := Rand(r, c.xs.Numel(), -1, 1)
		plFwd(t, b, fmt.Sprintf("broadcastto %v -> %v", c.xs, c.ys), x, c.xs, c.ys, b.BroadcastTo, refBroadcastTo(x, c.xs, c.ys), TolExact)
	}
	// Hand case: a column (2,1) = [1,2] to (2,3).
	plFwd(t, b, "broadcastto column", []float32{1, 2}, kernels.Shape{2, 1}, kernels.Shape{2, 3}, b.BroadcastTo, []float32{1, 1, 1, 2, 2, 2}, TolExact)
}

func testLayoutErrors(t *testing.T, b kernels.Backend) {
	z := func(s ...int) *kernels.Tensor { return Upload(t, b, make([]float32, kernels.Shape(s).Numel()), s...) }
	x := z(2, 3, 4)
	plWantErr(t, "concat mismatch", b.Concat(z(2, 5, 4), []*kernels.Tensor{x, z(2, 2, 5)}, 1), kernels.ErrShape)
	plWantErr(t, "concat y shape", b.Concat(z(2, 6, 4), []*kernels.Tensor{x, z(2, 2, 4)}, 1), kernels.ErrShape)
	plWantErr(t, "concat axis", b.Concat(z(2, 6, 4), []*kernels.Tensor{x, x}, 3), kernels.ErrParam)
	plWantErr(t, "split extents", b.Split([]*kernels.Tensor{z(2, 1, 4), z(2, 1, 4)}, x, 1), kernels.ErrShape)
	sp := kernels.SliceParams{Starts: []int{0, 0, 0}, Ends: []int{2, 3, 4}, Steps: []int{1, 0, 1}}
	plWantErr(t, "slice step 0", b.Slice(x, x, sp), kernels.ErrParam)
	sp.Steps[1], sp.Ends[2] = 1, 5
	plWantErr(t, "slice end past extent", b.Slice(z(2, 3, 5), x, sp), kernels.ErrParam)
	sp.Ends[2] = 2
	plWantErr(t, "slice y shape", b.Slice(x, x, sp), kernels.ErrShape)
	plWantErr(t, "slice backward dy shape", b.SliceBackward(x, x, sp), kernels.ErrShape)
	plWantErr(t, "pad count", b.Pad(x, x, kernels.PadParams{Pads: []int{0, 0}}), kernels.ErrParam)
	plWantErr(t, "pad y shape", b.Pad(x, x, kernels.PadParams{Pads: []int{0, 0, 1, 0, 0, 0}}), kernels.ErrShape)
	plWantErr(t, "pad crop below 0", b.Pad(x, x, kernels.PadParams{Pads: []int{-3, 0, 0, 0, 0, 0}}), kernels.ErrShape)
	plWantErr(t, "pad mode", b.Pad(x, x, kernels.PadParams{Mode: 9, Pads: make([]int, 6)}), kernels.ErrParam)
	img := z(2, 3, 4, 4)
	plWantErr(t, "resize y shape", b.Resize(img, img, kernels.ResizeParams{Scales: []float32{1, 1, 2, 2}}), kernels.ErrShape)
	plWantErr(t, "resize scale count", b.Resize(img, img, kernels.ResizeParams{Scales: []float32{1, 1}}), kernels.ErrParam)
	plWantErr(t, "resize scale 0", b.Resize(img, img, kernels.ResizeParams{Scales: []float32{1, 1, 0, 1}}), kernels.ErrParam)
	plWantErr(t, "resize linear on N", b.Resize(z(4, 3, 4, 4), img, kernels.ResizeParams{Mode: kernels.ResizeLinear, Scales: []float32{2, 1, 1, 1}}), kernels.ErrUnsupported)
	plWantErr(t, "depthtospace channels", b.DepthToSpace(z(2, 1, 8, 8), img, kernels.DepthToSpaceParams{Blocksize: 2}), kernels.ErrShape)
	plWantErr(t, "depthtospace blocksize", b.DepthToSpace(img, img, kernels.DepthToSpaceParams{}), kernels.ErrParam)
	plWantErr(t, "transpose perm", b.Transpose(x, x, []int{0, 0, 1}), kernels.ErrParam)
	plWantErr(t, "transpose y shape", b.Transpose(x, x, []int{2, 1, 0}), kernels.ErrShape)
	plWantErr(t, "broadcastto", b.BroadcastTo(z(2, 3, 4), z(2, 4)), kernels.ErrShape)
	plWantErr(t, "broadcastto rank", b.BroadcastTo(z(3, 4), x), kernels.ErrShape)
	for name, err := range map[string]error{
		"slice backward":        b.SliceBackward(nil, x, sp),
		"pad backward":          b.PadBackward(nil, x, kernels.PadParams{Pads: make([]int, 6)}),
		"resize backward":       b.ResizeBackward(nil, img, kernels.ResizeParams{Scales: []float32{1, 1, 1, 1}}),
		"depthtospace backward": b.DepthToSpaceBackward(nil, img, kernels.DepthToSpaceParams{Blocksize: 1}),
	} {
		if err != nil {
			t.Errorf("%s with nil dx: %v (want nil, skipped)", name, err)
		}
	}
}
