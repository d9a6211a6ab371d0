package kernelstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testConv(t *testing.T, b kernels.Backend) {
	t.Run("conv2d_hand", func(t *testing.T) { testConv2DHand(t, b) })
	t.Run("conv2d_random", func(t *testing.T) { testConv2DRandom(t, b) })
	t.Run("conv2d_grad", func(t *testing.T) { testConv2DGrad(t, b) })
	t.Run("conv_transpose2d_hand", func(t *testing.T) { testConvTransposeHand(t, b) })
	t.Run("conv_transpose2d_random", func(t *testing.T) { testConvTransposeRandom(t, b) })
	t.Run("conv_transpose2d_grad", func(t *testing.T) { testConvTransposeGrad(t, b) })
	t.Run("errors", func(t *testing.T) { testConvErrors(t, b) })
}

func testConv2DHand(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)
	ones := Upload(t, b, []float32{1, 1, 1, 1}, 1, 1, 2, 2)
	cases := []struct {
		name string
		w    *kernels.Tensor
		bias *kernels.Tensor
		p    kernels.ConvParams
		out  kernels.Shape
		want []float32
	}{
		// x = [1 2 3; 4 5 6; 7 8 9], 2x2 box filter, no padding:
		// [1+2+4+5 2+3+5+6; 4+5+7+8 5+6+8+9] = [12 16; 24 28].
		{"box", ones, nil, kernels.ConvParams{}, kernels.Shape{1, 1, 2, 2}, []float32{12, 16, 24, 28}},
		// Same with bias 0.5.
		{"box bias", ones, Upload(t, b, []float32{0.5}, 1), kernels.ConvParams{}, kernels.Shape{1, 1, 2, 2}, []float32{12.5, 16.5, 24.5, 28.5}},
		// Pads 1, stride 2: oH = (3+2-2)/2+1 = 2; output (oy,ox) covers
		// rows 2oy-1..2oy, cols 2ox-1..2ox:
		// (0,0): x00 = 1; (0,1): x01+x02 = 5; (1,0): x10+x20 = 11;
		// (1,1): x11+x12+x21+x22 = 28.
		{"pad stride", ones, nil, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}, kernels.Shape{1, 1, 2, 2}, []float32{1, 5, 11, 28}},
		// Dilation 2 of the 2x2 box on 3x3 picks the corners: 1+3+7+9 = 20.
		{"dilation", ones, nil, kernels.ConvParams{Dilations: [2]int{2, 2}}, kernels.Shape{1, 1, 1, 1}, []float32{20}},
		// Asymmetric pads: top 0, left 1, bottom 1, right 0 give a 3x3
		// output; output (oy,ox) covers rows oy..oy+1 (row 3 is padding)
		// and cols ox-1..ox (col -1 is padding):
		// row 0: 1+4, 1+2+4+5, 2+3+5+6 = 5 12 16;
		// row 1: 4+7, 4+5+7+8, 5+6+8+9 = 11 24 28;
		// row 2: 7, 7+8, 8+9 = 7 15 17.
		{"asymmetric pads", ones, nil, kernels.ConvParams{Pads: [4]int{0, 1, 1, 0}}, kernels.Shape{1, 1, 3, 3}, []float32{5, 12, 16, 11, 24, 28, 7, 15, 17}},
	}
	for _, tc := range cases {
		y := NewGuarded(t, b, tc.out, 3)
		if err := b.Conv2D(y.T, x, tc.w, tc.bias, tc.p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		AssertClose(t, tc.name, y.Check(t, tc.name), tc.want, TolExact)
	}
	// Depthwise (group 2): channel 0 = [1 2; 3 4] with a box filter gives
	// 10; channel 1 = [5 6; 7 8] with [1 0; 0 -1] gives 5-8 = -3, plus bias
	// [0, 1]: [10, -2].
	xd := Upload(t, b, []float32{1, 2, 3, 4, 5, 6, 7, 8}, 1, 2, 2, 2)
	wd := Upload(t, b, []float32{1, 1, 1, 1, 1, 0, 0, -1}, 2, 1, 2, 2)
	y := NewGuarded(t, b, kernels.Shape{1, 2, 1, 1}, 3)
	if err := b.Conv2D(y.T, xd, wd, Upload(t, b, []float32{0, 1}, 2), kernels.ConvParams{Group: 2}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "depthwise", y.Check(t, "depthwise"), []float32{10, -2}, TolExact)
	// Backward of the box case with dy = 1 everywhere: db = 4; dw[i][j]
	// = sum of the 2x2 window of x shifted by (i,j) = [12 16; 24 28];
	// dx counts the windows covering each pixel: [1 2 1; 2 4 2; 1 2 1].
	dx := NewGuarded(t, b, kernels.Shape{1, 1, 3, 3}, 3)
	dw := NewGuarded(t, b, kernels.Shape{1, 1, 2, 2}, 3)
	db := NewGuarded(t, b, kernels.Shape{1}, 3)
	dy := Upload(t, b, []float32{1, 1, 1, 1}, 1, 1, 2, 2)
	if err := b.Conv2DBackward(dx.T, dw.T, db.T, dy, x, ones, kernels.ConvParams{}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "box dx", dx.Check(t, "dx"), []float32{1, 2, 1, 2, 4, 2, 1, 2, 1}, TolExact)
	AssertClose(t, "box dw", dw.Check(t, "dw"), []float32{12, 16, 24, 28}, TolExact)
	AssertClose(t, "box db", db.Check(t, "db"), []float32{4}, TolExact)
}

// convCase is one Conv2D configuration: x (N,C,H,W), w (M,C/G,kH,kW).
type convCase struct {
	n, c, h, w, m, kh, kw int
	p                     kernels.ConvParams
}

func (cc convCase) String() string {
	return fmt.Sprintf("x(%d,%d,%d,%d) w(%d,%d,%d,%d) %+v", cc.n, cc.c, cc.h, cc.w, cc.m, cc.c/max(cc.p.Group, 1), cc.kh, cc.kw, cc.p)
}

var conv2DCases = []convCase{
	{1, 1, 5, 5, 1, 3, 3, kernels.ConvParams{}},
	{2, 3, 7, 6, 4, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
	{2, 4, 9, 8, 6, 3, 3, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 0, 2, 1}}},
	{2, 3, 9, 7, 4, 3, 3, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}}, // odd width, left pad
	{1, 2, 8, 11, 3, 3, 3, kernels.ConvParams{Strides: [2]int{1, 3}, Pads: [4]int{0, 2, 1, 0}, Dilations: [2]int{1, 2}}},
	{1, 3, 10, 11, 5, 3, 2, kernels.ConvParams{Dilations: [2]int{2, 2}, Pads: [4]int{2, 1, 0, 2}}},
	{2, 4, 7, 7, 6, 3, 3, kernels.ConvParams{Strides: [2]int{2, 1}, Group: 2}},
	{1, 6, 8, 5, 9, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Dilations: [2]int{1, 2}, Group: 3}},
	{2, 8, 9, 9, 8, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 8}},                          // depthwise
	{2, 4, 10, 9, 8, 3, 3, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 0, 0}, Group: 4}},  // depthwise, multiplier 2
	{1, 3, 8, 8, 3, 3, 3, kernels.ConvParams{Dilations: [2]int{2, 2}, Pads: [4]int{2, 0, 1, 2}, Group: 3}}, // depthwise, dilated
	{2, 6, 11, 21, 6, 5, 5, kernels.ConvParams{Pads: [4]int{2, 2, 2, 2}, Group: 6}},                        // depthwise 5x5
	{1, 4, 9, 35, 4, 3, 3, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}, Group: 4}},  // depthwise 3x3 stride 2
	{3, 5, 6, 7, 3, 1, 1, kernels.ConvParams{}},                                                            // pointwise
	{1, 16, 5, 5, 7, 1, 1, kernels.ConvParams{Strides: [2]int{2, 2}}},                                      // 1x1 strided
	{2, 3, 6, 6, 4, 5, 5, kernels.ConvParams{Pads: [4]int{2, 2, 2, 2}}},                                    // kernel larger than pads
	{1, 16, 24, 24, 8, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},                                 // several column chunks
	{1, 2, 4, 4, 3, 4, 4, kernels.ConvParams{Pads: [4]int{3, 3, 3, 3}, Strides: [2]int{3, 3}}},             // mostly padding
	{1, 32, 6, 7, 5, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},                                   // enough channels for a backend's shifted-GEMM path
	{2, 32, 7, 6, 4, 3, 3, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 0, 1, 1}}},            // same, strided
}

func testConv2DRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, cc := range conv2DCases {
		name := "conv2d " + cc.String()
		xs := kernels.Shape{cc.n, cc.c, cc.h, cc.w}
		ws := kernels.Shape{cc.m, cc.c / max(cc.p.Group, 1), cc.kh, cc.kw}
		xv, wv, bv := Rand(r, xs.Numel(), -1, 1), Rand(r, ws.Numel(), -1, 1), Rand(r, cc.m, -1, 1)
		want, ys := RefConv2D(xv, xs, wv, ws, bv, cc.p)
		x, w, bias := Upload(t, b, xv, xs...), Upload(t, b, wv, ws...), Upload(t, b, bv, cc.m)
		y := NewGuarded(t, b, ys, 5)
		if err := b.Conv2D(y.T, x, w, bias, cc.p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		k := ws[1] * cc.kh * cc.kw
		AssertClose(t, name, y.Check(t, name), want, linTolSum(k))
		// No bias: the same minus b.
		want0, _ := RefConv2D(xv, xs, wv, ws, nil, cc.p)
		y0 := NewGuarded(t, b, ys, 5)
		if err := b.Conv2D(y0.T, x, w, nil, cc.p); err != nil {
			t.Fatalf("%s no bias: %v", name, err)
		}
		AssertClose(t, name+" no bias", y0.Check(t, name), want0, linTolSum(k))

		dyv := Rand(r, ys.Numel(), -1, 1)
		wdx, wdw, wdb := RefConv2DBackward(dyv, xv, xs, wv, ws, cc.p)
		dx, dw, db := NewGuarded(t, b, xs, 5), NewGuarded(t, b, ws, 5), NewGuarded(t, b, kernels.Shape{cc.m}, 5)
		dy := Upload(t, b, dyv, ys...)
		if err := b.Conv2DBackward(dx.T, dw.T, db.T, dy, x, w, cc.p); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		AssertClose(t, name+" dx", dx.Check(t, "dx"), wdx, linTolSum(cc.m*cc.kh*cc.kw))
		AssertClose(t, name+" dw", dw.Check(t, "dw"), wdw, linTolSum(cc.n*ys[2]*ys[3]))
		AssertClose(t, name+" db", db.Check(t, "db"), wdb, linTolSum(cc.n*ys[2]*ys[3]))
		// Gradients one at a time (the others nil) agree.
		dw1 := NewGuarded(t, b, ws, 5)
		if err := b.Conv2DBackward(nil, dw1.T, nil, dy, x, w, cc.p); err != nil {
			t.Fatalf("%s backward dw only: %v", name, err)
		}
		AssertClose(t, name+" dw only", dw1.Check(t, "dw"), wdw, linTolSum(cc.n*ys[2]*ys[3]))
		dx1 := NewGuarded(t, b, xs, 5)
		if err := b.Conv2DBackward(dx1.T, nil, nil, dy, x, w, cc.p); err != nil {
			t.Fatalf("%s backward dx only: %v", name, err)
		}
		AssertClose(t, name+" dx only", dx1.Check(t, "dx"), wdx, linTolSum(cc.m*cc.kh*cc.kw))
	}
}

// testConv2DGrad checks Conv2DBackward against central differences of
// L = Dot(Conv2D(x,w,b), r) on small cases (grouped, strided, dilated,
// depthwise).
func testConv2DGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, cc := range []convCase{
		{2, 4, 5, 4, 4, 3, 3, kernels.ConvParams{Strides: [2]int{2, 1}, Pads: [4]int{1, 0, 1, 1}, Group: 2}},
		{1, 2, 6, 6, 3, 2, 3, kernels.ConvParams{Dilations: [2]int{2, 1}, Pads: [4]int{1, 1, 0, 0}}},
		{2, 3, 5, 5, 3, 3, 3, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 3}},
	} {
		name := "conv2d grad " + cc.String()
		xs := kernels.Shape{cc.n, cc.c, cc.h, cc.w}
		ws := kernels.Shape{cc.m, cc.c / max(cc.p.Group, 1), cc.kh, cc.kw}
		x := Upload(t, b, Rand(r, xs.Numel(), -1, 1), xs...)
		w := Upload(t, b, Rand(r, ws.Numel(), -1, 1), ws...)
		bias := Upload(t, b, Rand(r, cc.m, -1, 1), cc.m)
		ys, err := kernels.Conv2DOutShape(xs, ws, cc.p)
		if err != nil {
			t.Fatal(err)
		}
		proj := Rand(r, ys.Numel(), -1, 1)
		y, _ := b.Alloc(ys)
		loss := func() float64 {
			if err := b.Conv2D(y, x, w, bias, cc.p); err != nil {
				t.Fatal(err)
			}
			return Dot(Download(t, b, y), proj)
		}
		dx, _ := b.Alloc(xs)
		dw, _ := b.Alloc(ws)
		db, _ := b.Alloc(kernels.Shape{cc.m})
		if err := b.Conv2DBackward(dx, dw, db, Upload(t, b, proj, ys...), x, w, cc.p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name+" dx", Download(t, b, dx), NumericGrad(t, b, x, 1e-2, loss), TolGrad)
		AssertClose(t, name+" dw", Download(t, b, dw), NumericGrad(t, b, w, 1e-2, loss), TolGrad)
		AssertClose(t, name+" db", Download(t, b, db), NumericGrad(t, b, bias, 1e-2, loss), TolGrad)
	}
}

func testConvTransposeHand(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, []float32{1, 2, 3, 4}, 1, 1, 2, 2)
	ones := Upload(t, b, []float32{1, 1, 1, 1}, 1, 1, 2, 2)
	cases := []struct {
		name string
		p    kernels.ConvTransposeParams
		out  kernels.Shape
		want []float32
	}{
		// Stride 1: each x value is added to the 2x2 block below-right of
		// it: y[i][j] = sum of x[a][b] with i-a, j-b in {0,1}:
		// [1 1+2 2; 1+3 1+2+3+4 2+4; 3 3+4 4].
		{"stride 1", kernels.ConvTransposeParams{}, kernels.Shape{1, 1, 3, 3}, []float32{1, 3, 2, 4, 10, 6, 3, 7, 4}},
		// Stride 2: the blocks do not overlap: each x value fills a 2x2
		// block of the 4x4 output.
		{"stride 2", kernels.ConvTransposeParams{Strides: [2]int{2, 2}}, kernels.Shape{1, 1, 4, 4},
			[]float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}},
		// Stride 2, pads 1 crop one ring of the 4x4 (2x2 left); output
		// padding 1 adds a bottom row and right column that only the
		// (cropped) ring would reach: oH = 2*1+1+1+1-2 = 3:
		// [1 2 2; 3 4 4; 3 4 4].
		{"stride 2 pads outpad", kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}, OutputPadding: [2]int{1, 1}},
			kernels.Shape{1, 1, 3, 3}, []float32{1, 2, 2, 3, 4, 4, 3, 4, 4}},
	}
	for _, tc := range cases {
		y := NewGuarded(t, b, tc.out, 3)
		if err := b.ConvTranspose2D(y.T, x, ones, nil, tc.p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		AssertClose(t, tc.name, y.Check(t, tc.name), tc.want, TolExact)
	}
}

// convTCase is one ConvTranspose2D configuration: x (N,C,H,W), w
// (C,M/G,kH,kW).
type convTCase struct {
	n, c, h, w, mg, kh, kw int
	p                      kernels.ConvTransposeParams
}

func (cc convTCase) String() string {
	return fmt.Sprintf("x(%d,%d,%d,%d) w(%d,%d,%d,%d) %+v", cc.n, cc.c, cc.h, cc.w, cc.c, cc.mg, cc.kh, cc.kw, cc.p)
}

var convTransposeCases = []convTCase{
	{1, 2, 3, 3, 3, 3, 3, kernels.ConvTransposeParams{}},
	{2, 4, 4, 5, 6, 3, 3, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}, OutputPadding: [2]int{1, 1}}},
	{1, 4, 3, 4, 2, 2, 2, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Group: 2}},
	{2, 6, 3, 3, 1, 3, 3, kernels.ConvTransposeParams{Strides: [2]int{2, 3}, Pads: [4]int{0, 1, 1, 0}, OutputPadding: [2]int{1, 2}, Group: 3}},
	{1, 3, 4, 4, 2, 3, 3, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Dilations: [2]int{2, 2}, OutputPadding: [2]int{1, 1}}},
	{2, 5, 4, 4, 3, 1, 1, kernels.ConvTransposeParams{}}, // pointwise
	{1, 8, 12, 12, 4, 4, 4, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}},
	{2, 4, 3, 4, 32, 3, 3, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 0, 1}, OutputPadding: [2]int{1, 0}}},
	{1, 4, 4, 3, 32, 3, 3, kernels.ConvTransposeParams{Pads: [4]int{1, 1, 1, 1}}},
	// Stride equal to the kernel (disjoint footprints: the CPU backend's
	// direct scatter), with an uneven 3x2 kernel and, in the last, more
	// input rows than one of its chunks.
	{2, 5, 7, 9, 3, 2, 2, kernels.ConvTransposeParams{Strides: [2]int{2, 2}}},
	{1, 24, 6, 33, 24, 2, 2, kernels.ConvTransposeParams{Strides: [2]int{2, 2}}},
	{2, 3, 5, 4, 2, 3, 2, kernels.ConvTransposeParams{Strides: [2]int{3, 2}}},
	{1, 8, 70, 200, 4, 2, 2, kernels.ConvTransposeParams{Strides: [2]int{2, 2}}},
}

func testConvTransposeRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, cc := range convTransposeCases {
		name := "conv_transpose2d " + cc.String()
		xs := kernels.Shape{cc.n, cc.c, cc.h, cc.w}
		ws := kernels.Shape{cc.c, cc.mg, cc.kh, cc.kw}
		m := cc.mg * max(cc.p.Group, 1)
		xv, wv, bv := Rand(r, xs.Numel(), -1, 1), Rand(r, ws.Numel(), -1, 1), Rand(r, m, -1, 1)
		want, ys := RefConvTranspose2D(xv, xs, wv, ws, bv, cc.p)
		x, w, bias := Upload(t, b, xv, xs...), Upload(t, b, wv, ws...), Upload(t, b, bv, m)
		y := NewGuarded(t, b, ys, 5)
		if err := b.ConvTranspose2D(y.T, x, w, bias, cc.p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cg := cc.c / max(cc.p.Group, 1)
		AssertClose(t, name, y.Check(t, name), want, linTolSum(cg*cc.kh*cc.kw))

		dyv := Rand(r, ys.Numel(), -1, 1)
		wdx, wdw, wdb := RefConvTranspose2DBackward(dyv, xv, xs, wv, ws, cc.p)
		dx, dw, db := NewGuarded(t, b, xs, 5), NewGuarded(t, b, ws, 5), NewGuarded(t, b, kernels.Shape{m}, 5)
		if err := b.ConvTranspose2DBackward(dx.T, dw.T, db.T, Upload(t, b, dyv, ys...), x, w, cc.p); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		AssertClose(t, name+" dx", dx.Check(t, "dx"), wdx, linTolSum(cc.mg*cc.kh*cc.kw))
		AssertClose(t, name+" dw", dw.Check(t, "dw"), wdw, linTolSum(cc.n*cc.h*cc.w))
		AssertClose(t, name+" db", db.Check(t, "db"), wdb, linTolSum(cc.n*ys[2]*ys[3]))
	}
}

func testConvTransposeGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, cc := range []convTCase{
		{2, 4, 3, 3, 2, 3, 3, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 0, 1, 1}, OutputPadding: [2]int{1, 0}, Group: 2}},
		{1, 2, 3, 4, 3, 2, 2, kernels.ConvTransposeParams{Dilations: [2]int{2, 1}, Strides: [2]int{1, 2}, OutputPadding: [2]int{1, 1}}},
	} {
		name := "conv_transpose2d grad " + cc.String()
		xs := kernels.Shape{cc.n, cc.c, cc.h, cc.w}
		ws := kernels.Shape{cc.c, cc.mg, cc.kh, cc.kw}
		m := cc.mg * max(cc.p.Group, 1)
		x := Upload(t, b, Rand(r, xs.Numel(), -1, 1), xs...)
		w := Upload(t, b, Rand(r, ws.Numel(), -1, 1), ws...)
		bias := Upload(t, b, Rand(r, m, -1, 1), m)
		ys, err := kernels.ConvTranspose2DOutShape(xs, ws, cc.p)
		if err != nil {
			t.Fatal(err)
		}
		proj := Rand(r, ys.Numel(), -1, 1)
		y, _ := b.Alloc(ys)
		loss := func() float64 {
			if err := b.ConvTranspose2D(y, x, w, bias, cc.p); err != nil {
				t.Fatal(err)
			}
			return Dot(Download(t, b, y), proj)
		}
		dx, _ := b.Alloc(xs)
		dw, _ := b.Alloc(ws)
		db, _ := b.Alloc(kernels.Shape{m})
		if err := b.ConvTranspose2DBackward(dx, dw, db, Upload(t, b, proj, ys...), x, w, cc.p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name+" dx", Download(t, b, dx), NumericGrad(t, b, x, 1e-2, loss), TolGrad)
		AssertClose(t, name+" dw", Download(t, b, dw), NumericGrad(t, b, w, 1e-2, loss), TolGrad)
		AssertClose(t, name+" db", Download(t, b, db), NumericGrad(t, b, bias, 1e-2, loss), TolGrad)
	}
}

func testConvErrors(t *testing.T, b kernels.Backend) {
	alloc := func(s ...int) *kernels.Tensor {
		x, err := b.Alloc(kernels.Shape(s))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	want := func(name string, err, sentinel error) {
		t.Helper()
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: got error %v (want one wrapping %v)", name, err, sentinel)
		}
	}
	x, w := alloc(1, 4, 5, 5), alloc(6, 2, 3, 3)
	g2 := kernels.ConvParams{Group: 2}
	want("conv ok", b.Conv2D(alloc(1, 6, 3, 3), x, w, nil, g2), nil)
	want("conv channels", b.Conv2D(alloc(1, 6, 3, 3), x, w, nil, kernels.ConvParams{}), kernels.ErrShape)
	want("conv group", b.Conv2D(alloc(1, 6, 3, 3), x, w, nil, kernels.ConvParams{Group: 3}), kernels.ErrShape)
	want("conv y", b.Conv2D(alloc(1, 6, 5, 5), x, w, nil, g2), kernels.ErrShape)
	want("conv bias", b.Conv2D(alloc(1, 6, 3, 3), x, w, alloc(4), g2), kernels.ErrShape)
	want("conv rank", b.Conv2D(alloc(1, 6, 3, 3), alloc(4, 5, 5), w, nil, g2), kernels.ErrShape)
	want("conv kernel too big", b.Conv2D(alloc(1, 6, 1, 1), alloc(1, 4, 2, 2), w, nil, g2), kernels.ErrShape)
	want("conv negative pad", b.Conv2D(alloc(1, 6, 3, 3), x, w, nil, kernels.ConvParams{Group: 2, Pads: [4]int{-1, 0, 0, 0}}), kernels.ErrParam)
	want("conv negative stride", b.Conv2D(alloc(1, 6, 3, 3), x, w, nil, kernels.ConvParams{Group: 2, Strides: [2]int{-1, 1}}), kernels.ErrParam)
	want("conv backward dx", b.Conv2DBackward(alloc(1, 4, 5, 4), nil, nil, alloc(1, 6, 3, 3), x, w, g2), kernels.ErrShape)
	want("conv backward dw", b.Conv2DBackward(nil, alloc(6, 4, 3, 3), nil, alloc(1, 6, 3, 3), x, w, g2), kernels.ErrShape)
	want("conv backward dy", b.Conv2DBackward(nil, nil, alloc(6), alloc(1, 6, 3, 4), x, w, g2), kernels.ErrShape)

	xt, wt := alloc(1, 4, 3, 3), alloc(4, 3, 2, 2)
	tp := kernels.ConvTransposeParams{Group: 2}
	want("convT ok", b.ConvTranspose2D(alloc(1, 6, 4, 4), xt, wt, nil, tp), nil)
	want("convT w channels", b.ConvTranspose2D(alloc(1, 6, 4, 4), xt, alloc(3, 3, 2, 2), nil, tp), kernels.ErrShape)
	want("convT y", b.ConvTranspose2D(alloc(1, 3, 4, 4), xt, wt, nil, tp), kernels.ErrShape)
	want("convT output padding", b.ConvTranspose2D(alloc(1, 6, 5, 5), xt, wt, nil, kernels.ConvTransposeParams{Group: 2, OutputPadding: [2]int{1, 1}}), kernels.ErrParam)
	want("convT backward dw", b.ConvTranspose2DBackward(nil, alloc(4, 6, 2, 2), nil, alloc(1, 6, 4, 4), xt, wt, tp), kernels.ErrShape)

	// Shape functions and defaults.
	if p := (kernels.ConvParams{}).WithDefaults(); p.Strides != [2]int{1, 1} || p.Dilations != [2]int{1, 1} || p.Group != 1 {
		t.Errorf("ConvParams{}.WithDefaults() = %+v (want strides 1, dilations 1, group 1)", p)
	}
	// 56x56, 3x3, stride 2, pads 1: (56+2-3)/2+1 = 28.
	if s, err := kernels.Conv2DOutShape(kernels.Shape{8, 64, 56, 56}, kernels.Shape{128, 64, 3, 3}, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}); err != nil || !s.Equal(kernels.Shape{8, 128, 28, 28}) {
		t.Errorf("Conv2DOutShape = %v, %v (want (8,128,28,28))", s, err)
	}
	// 28x28, 4x4, stride 2, pads 1: 2*27 + 4 - 2 = 56; output padding 1: 57.
	if s, err := kernels.ConvTranspose2DOutShape(kernels.Shape{1, 16, 28, 28}, kernels.Shape{16, 4, 4, 4}, kernels.ConvTransposeParams{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}, OutputPadding: [2]int{1, 0}, Group: 2}); err != nil || !s.Equal(kernels.Shape{1, 8, 57, 56}) {
		t.Errorf("ConvTranspose2DOutShape = %v, %v (want (1,8,57,56))", s, err)
	}
}
