package cpu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestConvBackwardCols checks the blocked backward (weightGradCols,
// backwardImageCols) against the reference loops on shapes that reach
// each of its paths: blocks of several images (the parts path and the
// all-images path), chunks within one large image, forced tiny chunks
// whose edges fall mid-row, groups, strides, dilations and 1x1 kernels.
func TestConvBackwardCols(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		// 6 images of 4x4 positions: blocks of 6 (one task: all-images path).
		{kernels.Shape{6, 3, 8, 8}, kernels.Shape{4, 3, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Strides: [2]int{2, 2}}},
		// 40 images of 2x2: blocks of 32 and 8, groups: parts path.
		{kernels.Shape{40, 4, 2, 2}, kernels.Shape{6, 2, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 2}},
		// 9 images of 16x16, K=16*9: blocks of 9 images.
		{kernels.Shape{9, 16, 16, 16}, kernels.Shape{8, 16, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		// One image with K*P past the budget: chunks of 896 positions.
		{kernels.Shape{2, 32, 32, 32}, kernels.Shape{3, 32, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		// Stride 1 with uneven pads and a non-square kernel (the flipped
		// forward convolution's pads).
		{kernels.Shape{2, 3, 7, 9}, kernels.Shape{4, 3, 3, 2}, kernels.ConvParams{Pads: [4]int{1, 0, 2, 1}}},
		// Pointwise (the image is the column matrix) and strided 1x1.
		{kernels.Shape{12, 5, 4, 4}, kernels.Shape{7, 5, 1, 1}, kernels.ConvParams{}},
		{kernels.Shape{12, 5, 6, 6}, kernels.Shape{7, 5, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
		{kernels.Shape{3, 2, 11, 9}, kernels.Shape{3, 2, 3, 3}, kernels.ConvParams{Strides: [2]int{2, 3}, Dilations: [2]int{2, 1}, Pads: [4]int{1, 2, 2, 0}}},
	}
	flips := 0
	defer func() {
		if flips == 0 {
			t.Error("no case reached backwardImageFlip")
		}
	}()
	smalls := 0
	defer func() {
		if gemm512 && smalls == 0 {
			t.Error("no case reached weightGradSmall")
		}
	}()
	defer func() { wgradSmallOff = false }()
	for _, threads := range []int{1, 2, 3} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range cases {
			for _, mc := range []int{0, 5, 13, -1} {
				// mc -1: chunk 0 with weightGradSmall off (the GEMM path).
				wgradSmallOff = mc == -1
				name := fmt.Sprintf("threads=%d x%v w%v %+v chunk=%d", threads, tc.xs, tc.ws, tc.p, mc)
				x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
				w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
				ys, q, err := conv2DPlan("test", x, w, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				q.maxChunk = max(mc, 0)
				if q.wgradSmallOK() {
					smalls++
				}
				dy := kernelstest.Rand(r, ys.Numel(), -1, 1)
				wdx, wdw, _ := kernelstest.RefConv2DBackward(dy, x.Data, tc.xs, w.Data, tc.ws, tc.p)
				dw := kernelstest.Rand(r, tc.ws.Numel(), -9, 9) // overwritten
				c.weightGradCols(q, dw, dy, x.Data)
				kernelstest.AssertClose(t, name+" dw", dw, wdw, kernelstest.Tol{Abs: 1e-3, Rel: 1e-4})
				dx := kernelstest.Rand(r, tc.xs.Numel(), -9, 9)
				c.backwardImageCols(q, dx, dy, w.Data, nil)
				kernelstest.AssertClose(t, name+" dx", dx, wdx, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
				bias := kernelstest.Rand(r, tc.xs[1], -1, 1)
				c.backwardImageCols(q, dx, dy, w.Data, bias)
				hw := tc.xs[2] * tc.xs[3]
				for i := range wdx {
					wdx[i] += bias[i/hw%tc.xs[1]]
				}
				kernelstest.AssertClose(t, name+" dx+bias", dx, wdx, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
				if q.flipOK() {
					for i := range wdx {
						wdx[i] -= bias[i/hw%tc.xs[1]]
					}
					if err := c.backwardImageFlip(q, dx, dy, w.Data); err != nil {
						t.Fatal(err)
					}
					kernelstest.AssertClose(t, name+" dx (flipped conv)", dx, wdx, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
					flips++
				}
			}
		}
	}
}

// TestConvWeightGradDeterministic: the weight gradient of a batch is the
// same to the bit on every call at 2 threads (the sum over images must
// not depend on which thread took which images when), and at 1 thread
// where the split does not depend on the thread count.
func TestConvWeightGradDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	cases := []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		{kernels.Shape{32, 64, 16, 16}, kernels.Shape{64, 64, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{32, 3, 32, 32}, kernels.Shape{16, 3, 7, 7}, kernels.ConvParams{Pads: [4]int{3, 3, 3, 3}, Strides: [2]int{2, 2}}},
		{kernels.Shape{32, 64, 8, 8}, kernels.Shape{16, 64, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		// weightGradSmall (on AVX-512): a small-input stem and a 1x1
		// stride-2 shortcut.
		{kernels.Shape{64, 1, 28, 28}, kernels.Shape{16, 1, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{64, 16, 28, 28}, kernels.Shape{32, 16, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
	}
	one, err := New(Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	two, err := New(Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	for _, tc := range cases {
		x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
		w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
		ys, _ := kernels.Conv2DOutShape(tc.xs, tc.ws, tc.p)
		dy := kernels.FromSlice(kernelstest.Rand(r, ys.Numel(), -1, 1), ys...)
		dw := kernels.NewHost(tc.ws...)
		if err := two.Conv2DBackward(nil, dw, nil, dy, x, w, tc.p); err != nil {
			t.Fatal(err)
		}
		first := slices.Clone(dw.Data)
		_, q, _ := conv2DPlan("test", x, w, tc.p)
		if parts := q.bwParts(q.bwSplit()); parts < 4 && !q.wgradSmallOK() {
			t.Fatalf("x%v: %d parts: the case does not reach the partial sums", tc.xs, parts)
		}
		for i := range 20 {
			if err := two.Conv2DBackward(nil, dw, nil, dy, x, w, tc.p); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dw.Data, first) {
				t.Fatalf("x%v w%v: call %d at 2 threads differs from the first", tc.xs, tc.ws, i+2)
			}
		}
		if err := one.Conv2DBackward(nil, dw, nil, dy, x, w, tc.p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dw.Data, first) {
			t.Errorf("x%v w%v: 1 thread differs from 2 threads", tc.xs, tc.ws)
		}
	}
}

// BenchmarkConvBackwardAB compares the blocked backward (impl=cols) with
// the per-image one it replaced (impl=image: backwardImage; its weight gradient was removed)
// on the convolutions of a ResNet-18 step at 64x64, batch 32, side by
// side:
//
//	go test ./pkg/kernels/cpu -run '^$' -bench ConvBackwardAB -benchtime 10x -count 3
func BenchmarkConvBackwardAB(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	layers := []struct {
		n, c, hw, m, k, s int
	}{
		{32, 3, 64, 64, 7, 2}, {32, 64, 16, 64, 3, 1}, {32, 64, 16, 128, 3, 2}, {32, 128, 8, 128, 3, 1}, {32, 64, 16, 128, 1, 2},
		{32, 128, 8, 256, 3, 2}, {32, 256, 4, 256, 3, 1}, {32, 256, 4, 512, 3, 2}, {32, 512, 2, 512, 3, 1},
	}
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for _, l := range layers {
			pad := l.k / 2
			xs, ws := kernels.Shape{l.n, l.c, l.hw, l.hw}, kernels.Shape{l.m, l.c, l.k, l.k}
			p := kernels.ConvParams{Pads: [4]int{pad, pad, pad, pad}, Strides: [2]int{l.s, l.s}}
			x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
			w := kernels.FromSlice(kernelstest.Rand(r, ws.Numel(), -1, 1), ws...)
			ys, q, err := conv2DPlan("bench", x, w, p)
			if err != nil {
				b.Fatal(err)
			}
			dy := kernelstest.Rand(r, ys.Numel(), -1, 1)
			dw, dx := make([]float32, ws.Numel()), make([]float32, xs.Numel())
			flops := 2 * float64(ys.Numel()) * float64(q.k())
			name := fmt.Sprintf("x%dx%dx%d_m%d_k%d_s%d/threads=%d", l.c, l.hw, l.hw, l.m, l.k, l.s, threads)
			for _, impl := range []string{"image", "cols", "flip"} {
				if impl == "flip" && !q.flipOK() {
					continue
				}
				for _, grad := range []string{"dw", "dx"} {
					b.Run(name+"/grad="+grad+"/impl="+impl, func(b *testing.B) {
						for b.Loop() {
							switch {
							case grad == "dw" && impl == "image":
								b.Skip("the per-image weight gradient was replaced by cols (deterministic) and removed")
							case grad == "dw" && impl == "flip":
								b.Skip("flip is an input-gradient method")
							case grad == "dw":
								c.weightGradCols(q, dw, dy, x.Data)
							case impl == "image":
								c.backwardImage(q, dx, dy, w.Data, nil)
							case impl == "flip":
								if err := c.backwardImageFlip(q, dx, dy, w.Data); err != nil {
									b.Fatal(err)
								}
							default:
								c.backwardImageCols(q, dx, dy, w.Data, nil)
							}
						}
						b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					})
				}
			}
		}
	}
}

// BenchmarkWeightGradSmall compares weightGradSmall (impl=small) with the
// GEMM path (impl=gemm) on the small-gradient weight gradients of the
// Fashion-MNIST recipe (resnet8s@0.25, 28x28, batch 64): the 3x3 stem
// over one channel, the three 1x1 stride-2 shortcuts and the first 3x3
// stride-2 convolution, side by side:
//
//	go test ./pkg/kernels/cpu -run '^$' -bench WeightGradSmall -count 3
func BenchmarkWeightGradSmall(b *testing.B) {
	if !gemm512 {
		b.Skip("weightGradSmall needs AVX-512")
	}
	r := rand.New(rand.NewPCG(3, 3))
	c, err := New(Config{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	defer func() { wgradSmallOff = false }()
	for _, tc := range []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		{kernels.Shape{64, 1, 28, 28}, kernels.Shape{16, 1, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{64, 16, 28, 28}, kernels.Shape{32, 16, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
		{kernels.Shape{64, 32, 14, 14}, kernels.Shape{64, 32, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
		{kernels.Shape{64, 64, 7, 7}, kernels.Shape{128, 64, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
		{kernels.Shape{64, 16, 28, 28}, kernels.Shape{32, 16, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Strides: [2]int{2, 2}}},
	} {
		x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
		w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
		ys, q, err := conv2DPlan("bench", x, w, tc.p)
		if err != nil {
			b.Fatal(err)
		}
		dy := kernelstest.Rand(r, ys.Numel(), -1, 1)
		dw := make([]float32, tc.ws.Numel())
		flops := 2 * float64(ys.Numel()) * float64(q.k())
		for _, impl := range []string{"gemm", "small"} {
			b.Run(fmt.Sprintf("x%v_w%v/impl=%s", tc.xs, tc.ws, impl), func(b *testing.B) {
				wgradSmallOff = impl == "gemm"
				for b.Loop() {
					c.weightGradCols(q, dw, dy, x.Data)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
