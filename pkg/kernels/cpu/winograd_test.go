package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestWinograd checks the Winograd path against the reference convolution
// on odd and even grids (clipped last tiles), every padding from none to
// more than the kernel, one and several tile rows per task, batches, and
// one and two threads; and that the automatic choice takes it exactly for
// the geometries it supports.
func TestWinograd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		xs, ws kernels.Shape
		pads   [4]int
	}{
		{kernels.Shape{1, 3, 7, 9}, kernels.Shape{4, 3, 3, 3}, [4]int{1, 1, 1, 1}},
		{kernels.Shape{2, 5, 8, 8}, kernels.Shape{3, 5, 3, 3}, [4]int{0, 0, 0, 0}},
		{kernels.Shape{1, 2, 5, 6}, kernels.Shape{2, 2, 3, 3}, [4]int{2, 0, 1, 3}},
		{kernels.Shape{3, 4, 3, 3}, kernels.Shape{5, 4, 3, 3}, [4]int{1, 1, 1, 1}},
		{kernels.Shape{1, 16, 13, 18}, kernels.Shape{8, 16, 3, 3}, [4]int{1, 2, 0, 1}},
		{kernels.Shape{2, 20, 11, 33}, kernels.Shape{24, 20, 3, 3}, [4]int{1, 1, 1, 1}},
	}
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range cases {
			for _, mc := range []int{0, 1, 3, 7} {
				p := kernels.ConvParams{Pads: tc.pads}
				name := fmt.Sprintf("threads=%d x%v w%v pads=%v smalltasks=%d", threads, tc.xs, tc.ws, tc.pads, mc)
				x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
				w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
				bias := kernelstest.Rand(r, tc.ws[0], -1, 1)
				ys, q, err := conv2DPlan("test", x, w, p)
				if err != nil {
					t.Fatal(err)
				}
				q.wino, q.maxChunk = 1, mc
				if !q.winograd() {
					t.Fatalf("%s: Winograd path refused", name)
				}
				y := make([]float32, ys.Numel())
				for i := range y {
					y[i] = 1e9 // every output must be written
				}
				c.forwardCols(q, y, x.Data, w.Data, bias)
				want, _ := kernelstest.RefConv2D(x.Data, tc.xs, w.Data, tc.ws, bias, p)
				kernelstest.AssertClose(t, name, y, want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
			}
		}
	}
	// The automatic choice.
	for _, tc := range []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
		want   bool
	}{
		{kernels.Shape{1, 96, 120, 160}, kernels.Shape{24, 96, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}, true},
		{kernels.Shape{1, 96, 120, 160}, kernels.Shape{24, 96, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Strides: [2]int{2, 2}}, false},
		{kernels.Shape{1, 96, 120, 160}, kernels.Shape{24, 96, 3, 3}, kernels.ConvParams{Pads: [4]int{2, 2, 2, 2}, Dilations: [2]int{2, 2}}, false},
		{kernels.Shape{1, 96, 120, 160}, kernels.Shape{96, 1, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 96}, false},
		{kernels.Shape{1, 96, 120, 160}, kernels.Shape{24, 96, 1, 1}, kernels.ConvParams{}, false},
		{kernels.Shape{1, 3, 120, 160}, kernels.Shape{24, 3, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}, false},
		{kernels.Shape{1, 64, 2, 2}, kernels.Shape{64, 64, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}, false},
	} {
		x, w := kernels.NewHost(tc.xs...), kernels.NewHost(tc.ws...)
		_, q, err := conv2DPlan("test", x, w, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.winograd(); got != tc.want {
			t.Errorf("x%v w%v %+v: winograd() = %v, want %v", tc.xs, tc.ws, tc.p, got, tc.want)
		}
	}
}

// TestWinogradFused checks the Winograd path under Conv2DFused's
// epilogue (bias, residual, activation), through the public entry point.
func TestWinogradFused(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	c, err := New(Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	xs, ws := kernels.Shape{1, 32, 21, 30}, kernels.Shape{16, 32, 3, 3}
	p := kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}
	x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
	w := kernels.FromSlice(kernelstest.Rand(r, ws.Numel(), -1, 1), ws...)
	b := kernels.FromSlice(kernelstest.Rand(r, ws[0], -1, 1), ws[0])
	conv, ys := kernelstest.RefConv2D(x.Data, xs, w.Data, ws, b.Data, p)
	res := kernels.FromSlice(kernelstest.Rand(r, ys.Numel(), -1, 1), ys...)
	want := make([]float32, len(conv))
	for i, v := range conv {
		want[i] = max(v+res.Data[i], 0)
	}
	y := kernels.NewHost(ys...)
	if err := c.Conv2DFused(y, x, w, b, res, p, kernels.Act{Kind: kernels.ActRelu}); err != nil {
		t.Fatal(err)
	}
	kernelstest.AssertClose(t, "fused", y.Data, want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
}

// BenchmarkWinogradAB times the Winograd path against the path the plan
// takes without it (the shifted GEMMs) on PP-OCRv4 det's 96->24 head
// convolutions and ResNet blocks, the two interleaved in every iteration;
// it reports the fastest run of each (robust on a shared machine, where
// medians also count the time spent waiting for a core) and their ratio:
//
//	go test -run - -bench WinogradAB -benchtime 60x ./pkg/kernels/cpu
func BenchmarkWinogradAB(b *testing.B) {
	for _, bc := range []struct {
		name   string
		xs, ws kernels.Shape
	}{
		{"det96to24/120x160", kernels.Shape{1, 96, 120, 160}, kernels.Shape{24, 96, 3, 3}},
		{"det96to24/60x80", kernels.Shape{1, 96, 60, 80}, kernels.Shape{24, 96, 3, 3}},
		{"det96to24/30x40", kernels.Shape{1, 96, 30, 40}, kernels.Shape{24, 96, 3, 3}},
		{"resnet64/b8x32x32", kernels.Shape{8, 64, 32, 32}, kernels.Shape{64, 64, 3, 3}},
		{"resnet128/b8x16x16", kernels.Shape{8, 128, 16, 16}, kernels.Shape{128, 128, 3, 3}},
		{"resnet256/b8x8x8", kernels.Shape{8, 256, 8, 8}, kernels.Shape{256, 256, 3, 3}},
		{"resnet16/b64x28x28", kernels.Shape{64, 16, 28, 28}, kernels.Shape{16, 16, 3, 3}},
		{"resnet32/b64x14x14", kernels.Shape{64, 32, 14, 14}, kernels.Shape{32, 32, 3, 3}},
	} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", bc.name, threads), func(b *testing.B) {
				c, err := New(Config{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				r := rand.New(rand.NewPCG(1, 1))
				x := kernels.FromSlice(kernelstest.Rand(r, bc.xs.Numel(), -1, 1), bc.xs...)
				w := kernels.FromSlice(kernelstest.Rand(r, bc.ws.Numel(), -1, 1), bc.ws...)
				ys, q, err := conv2DPlan("bench", x, w, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}})
				if err != nil {
					b.Fatal(err)
				}
				y := make([]float32, ys.Numel())
				best := [2]time.Duration{time.Hour, time.Hour}
				for b.Loop() {
					for k, wino := range []int{1, -1} {
						q.wino = wino
						t0 := time.Now()
						c.convForward(q, y, x.Data, w.Data, nil, convEpi{})
						best[k] = min(best[k], time.Since(t0))
					}
				}
				q.wino = 0
				b.ReportMetric(float64(best[0].Microseconds()), "wino-min-us")
				b.ReportMetric(float64(best[1].Microseconds()), "direct-min-us")
				b.ReportMetric(best[1].Seconds()/best[0].Seconds(), "speedup")
				auto := 0.0
				if q.winograd() {
					auto = 1
				}
				b.ReportMetric(auto, "auto-wino")
			})
		}
	}
}
