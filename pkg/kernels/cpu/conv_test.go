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
				c.weightGrad(q, dw, dy, x.Data)
				kernelstest.AssertClose(t, name+" dw", dw, wdw, kernelstest.Tol{Abs: 1e-3, Rel: 1e-4})
				dx := make([]float32, tc.xs.Numel())
				c.backwardImage(q, dx, dy, w.Data, nil)
				kernelstest.AssertClose(t, name+" dx", dx, wdx, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
			}
		}
	}
}
