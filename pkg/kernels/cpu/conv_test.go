package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestConvChunkEdges runs the GEMM-based conv paths with tiny chunks, so
// chunk edges fall mid-row and (shifted paths) inside the dropped columns,
// which the small shapes of the conformance suite never reach, with the
// shifted-GEMM path forced on and off.
func TestConvChunkEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		{kernels.Shape{2, 3, 7, 9}, kernels.Shape{4, 3, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{1, 4, 8, 7}, kernels.Shape{6, 2, 3, 2}, kernels.ConvParams{Pads: [4]int{2, 0, 1, 1}, Dilations: [2]int{2, 1}, Group: 2}},
		{kernels.Shape{2, 3, 9, 11}, kernels.Shape{5, 3, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 2, 0, 1}, Strides: [2]int{2, 2}}},
		{kernels.Shape{1, 2, 10, 10}, kernels.Shape{3, 2, 2, 3}, kernels.ConvParams{Strides: [2]int{1, 3}, Pads: [4]int{0, 1, 1, 2}}},
		{kernels.Shape{2, 2, 11, 9}, kernels.Shape{3, 2, 3, 3}, kernels.ConvParams{Strides: [2]int{2, 3}, Dilations: [2]int{2, 1}, Pads: [4]int{1, 2, 2, 0}}},
		{kernels.Shape{1, 3, 6, 6}, kernels.Shape{2, 3, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
	}
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range cases {
			for _, v := range []struct{ mc, shift int }{{5, 1}, {13, 1}, {40, 1}, {1000, 1}, {5, -1}, {13, -1}, {40, -1}} {
				mc := v.mc
				name := fmt.Sprintf("threads=%d x%v w%v %+v chunk=%d shift=%d", threads, tc.xs, tc.ws, tc.p, mc, v.shift)
				x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
				w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
				bias := kernelstest.Rand(r, tc.ws[0], -1, 1)
				ys, q, err := conv2DPlan("test", x, w, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				q.maxChunk, q.shift = mc, v.shift
				y := make([]float32, ys.Numel())
				c.forwardCols(q, y, x.Data, w.Data, bias)
				want, _ := kernelstest.RefConv2D(x.Data, tc.xs, w.Data, tc.ws, bias, tc.p)
				kernelstest.AssertClose(t, name+" y", y, want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})

				dy := kernelstest.Rand(r, ys.Numel(), -1, 1)
				wdx, wdw, _ := kernelstest.RefConv2DBackward(dy, x.Data, tc.xs, w.Data, tc.ws, tc.p)
				dw := make([]float32, tc.ws.Numel())
				c.weightGradCols(q, dw, dy, x.Data)
				kernelstest.AssertClose(t, name+" dw", dw, wdw, kernelstest.Tol{Abs: 1e-3, Rel: 1e-4})
				dx := make([]float32, tc.xs.Numel())
				c.backwardImage(q, dx, dy, w.Data, nil)
				kernelstest.AssertClose(t, name+" dx", dx, wdx, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
			}
		}
	}
}

// TestConvConcurrentCallers runs convolutions and GEMMs from several
// goroutines on one backend at once (scratch buffers and the worker pool
// are shared): each must still get its own right answer. Run with -race.
func TestConvConcurrentCallers(t *testing.T) {
	c, err := New(Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type job struct {
		x, w, y *kernels.Tensor
		p       kernels.ConvParams
		want    []float32
	}
	r := rand.New(rand.NewPCG(5, 6))
	var jobs []job
	for i, p := range []kernels.ConvParams{
		{Pads: [4]int{1, 1, 1, 1}},
		{Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}},
		{Pads: [4]int{1, 1, 1, 1}, Group: 32},
		{},
	} {
		xs := kernels.Shape{2, 32, 9 + i, 8}
		ws := kernels.Shape{32, 32 / p.WithDefaults().Group, 3, 3}
		if i == 3 {
			ws = kernels.Shape{16, 32, 1, 1}
		}
		x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
		w := kernels.FromSlice(kernelstest.Rand(r, ws.Numel(), -1, 1), ws...)
		want, ys := kernelstest.RefConv2D(x.Data, xs, w.Data, ws, nil, p)
		jobs = append(jobs, job{x, w, kernels.NewHost(ys...), p, want})
	}
	done := make(chan error, len(jobs))
	for _, j := range jobs {
		go func() {
			for range 20 {
				if err := c.Conv2D(j.y, j.x, j.w, nil, j.p); err != nil {
					done <- err
					return
				}
				if i, ok := kernelstest.Close(j.y.Data, j.want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4}); !ok {
					done <- fmt.Errorf("%+v: element %d: got %v, want %v", j.p, i, j.y.Data[i], j.want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for range jobs {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestDepthwise3x3 checks the depthwise 3x3 kernels (stride 1 and 2, all
// taps per output row in one pass over a zero-bordered copy of the plane)
// against the reference: symmetric, asymmetric, zero and wide pads, grids
// from 1 to 9 wide, a channel multiplier, fused ReLU.
func TestDepthwise3x3(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	c, err := New(Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ran := 0
	for _, stride := range []int{1, 2} {
		for _, pads := range [][4]int{{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 0, 1, 1}, {2, 1, 0, 2}, {1, 0, 1, 0}} {
			for _, hw := range [][2]int{{3, 3}, {4, 1}, {5, 2}, {6, 7}, {9, 9}} {
				for _, mult := range []int{1, 2} {
					h, w := hw[0], hw[1]
					xs, ws := kernels.Shape{2, 3, h, w}, kernels.Shape{3 * mult, 1, 3, 3}
					p := kernels.ConvParams{Pads: pads, Strides: [2]int{stride, stride}, Group: 3}
					if _, err := kernels.Conv2DOutShape(xs, ws, p); err != nil {
						continue // kernel larger than the padded image
					}
					ran++
					name := fmt.Sprintf("stride %d pads %v x %v mult %d", stride, pads, xs, mult)
					x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
					wt := kernels.FromSlice(kernelstest.Rand(r, ws.Numel(), -1, 1), ws...)
					b := kernels.FromSlice(kernelstest.Rand(r, ws[0], -1, 1), ws[0])
					want, ys := kernelstest.RefConv2D(x.Data, xs, wt.Data, ws, b.Data, p)
					y := kernels.NewHost(ys...)
					if err := c.Conv2D(y, x, wt, b, p); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					kernelstest.AssertClose(t, name, y.Data, want, kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
					for i := range want {
						want[i] = max(want[i], 0)
					}
					if err := c.Conv2DFused(y, x, wt, b, nil, p, kernels.Act{Kind: kernels.ActRelu}); err != nil {
						t.Fatalf("%s fused: %v", name, err)
					}
					kernelstest.AssertClose(t, name+" fused relu", y.Data, want, kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
				}
			}
		}
	}
	if ran < 60 {
		t.Fatalf("only %d cases ran", ran)
	}
}
