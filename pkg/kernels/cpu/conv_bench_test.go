package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// Benchmarks: naive (kernelstest's direct reference loops) vs optimised
// (the CPU backend) vs the backend's Gemm on the equivalent GEMM shape,
// over several sizes, at 1 and 2 threads. Run them side by side:
//
//	go test ./pkg/kernels/cpu -run '^$' -bench 'Conv2D|Gemm' -count 5
//
// The ratio of opt to gemm GFLOP/s is the figure of merit (see package
// kernels/bench for the interleaved version used by `vireo bench kernels`).

type benchConv struct {
	n, c, hw, m, k, stride, group int
}

func (bc benchConv) String() string {
	return fmt.Sprintf("n%d_c%d_%dx%d_m%d_k%d_s%d_g%d", bc.n, bc.c, bc.hw, bc.hw, bc.m, bc.k, bc.stride, bc.group)
}

func (bc benchConv) shapes() (xs, ws kernels.Shape, p kernels.ConvParams) {
	pad := bc.k / 2
	p = kernels.ConvParams{Pads: [4]int{pad, pad, pad, pad}, Strides: [2]int{bc.stride, bc.stride}, Group: bc.group}
	return kernels.Shape{bc.n, bc.c, bc.hw, bc.hw}, kernels.Shape{bc.m, bc.c / bc.group, bc.k, bc.k}, p
}

var benchConvs = []benchConv{
	{1, 16, 28, 16, 3, 1, 1},
	{2, 32, 28, 32, 3, 1, 1},
	{1, 64, 56, 64, 3, 1, 1},
	{8, 64, 56, 64, 3, 1, 1},
	{8, 128, 28, 128, 3, 1, 1},
	{8, 64, 56, 128, 3, 2, 1},
	{8, 256, 14, 256, 1, 1, 1},
	{8, 64, 56, 64, 3, 1, 64},
}

func BenchmarkConv2D(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, bc := range benchConvs {
		xs, ws, p := bc.shapes()
		ys, err := kernels.Conv2DOutShape(xs, ws, p)
		if err != nil {
			b.Fatal(err)
		}
		xv, wv := kernelstest.Rand(r, xs.Numel(), -1, 1), kernelstest.Rand(r, ws.Numel(), -1, 1)
		flops := 2 * float64(ys.Numel()) * float64(ws[1]*ws[2]*ws[3])
		bytes := int64(4 * (xs.Numel() + ws.Numel() + ys.Numel()))
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		if xs.Numel() <= 64*56*56 {
			b.Run(bc.String()+"/impl=naive", func(b *testing.B) {
				b.SetBytes(bytes)
				for b.Loop() {
					kernelstest.RefConv2D(xv, xs, wv, ws, nil, p)
				}
				report(b)
			})
		}
		for _, threads := range []int{1, 2} {
			c := newCPU(b, threads)
			x, w := kernelstest.Upload(b, c, xv, xs...), kernelstest.Upload(b, c, wv, ws...)
			y, _ := c.Alloc(ys)
			b.Run(fmt.Sprintf("%s/impl=opt/threads=%d", bc, threads), func(b *testing.B) {
				b.SetBytes(bytes)
				for b.Loop() {
					if err := c.Conv2D(y, x, w, nil, p); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			// The equivalent GEMM: (M/G, K) x (K, N*oH*oW*G).
			gm, gk, gn := ws[0]/bc.group, ws[1]*ws[2]*ws[3], ys[0]*ys[2]*ys[3]*bc.group
			ga, _ := c.Alloc(kernels.Shape{gm, gk})
			gb, _ := c.Alloc(kernels.Shape{gk, gn})
			gc, _ := c.Alloc(kernels.Shape{gm, gn})
			b.Run(fmt.Sprintf("%s/impl=gemm/threads=%d", bc, threads), func(b *testing.B) {
				for b.Loop() {
					if err := c.Gemm(gc, ga, gb, kernels.GemmParams{Alpha: 1}); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}

func BenchmarkConv2DBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, bc := range []benchConv{{1, 16, 28, 16, 3, 1, 1}, {8, 64, 56, 64, 3, 1, 1}, {8, 64, 56, 64, 3, 1, 64}} {
		xs, ws, p := bc.shapes()
		ys, _ := kernels.Conv2DOutShape(xs, ws, p)
		xv, wv, dyv := kernelstest.Rand(r, xs.Numel(), -1, 1), kernelstest.Rand(r, ws.Numel(), -1, 1), kernelstest.Rand(r, ys.Numel(), -1, 1)
		flops := 4 * float64(ys.Numel()) * float64(ws[1]*ws[2]*ws[3]) // dx and dw
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		if xs.Numel() <= 16*28*28 {
			b.Run(bc.String()+"/impl=naive", func(b *testing.B) {
				for b.Loop() {
					kernelstest.RefConv2DBackward(dyv, xv, xs, wv, ws, p)
				}
				report(b)
			})
		}
		for _, threads := range []int{1, 2} {
			c := newCPU(b, threads)
			x, w, dy := kernelstest.Upload(b, c, xv, xs...), kernelstest.Upload(b, c, wv, ws...), kernelstest.Upload(b, c, dyv, ys...)
			dx, _ := c.Alloc(xs)
			dw, _ := c.Alloc(ws)
			b.Run(fmt.Sprintf("%s/impl=opt/threads=%d", bc, threads), func(b *testing.B) {
				for b.Loop() {
					if err := c.Conv2DBackward(dx, dw, nil, dy, x, w, p); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, sz := range [][3]int{{64, 64, 64}, {256, 256, 256}, {1024, 1024, 1024}, {64, 576, 3136}} {
		m, k, n := sz[0], sz[1], sz[2]
		flops := 2 * float64(m*n*k)
		av, bv := kernelstest.Rand(r, m*k, -1, 1), kernelstest.Rand(r, k*n, -1, 1)
		if m*n*k <= 256*256*256 {
			b.Run(fmt.Sprintf("m%d_k%d_n%d/impl=naive", m, k, n), func(b *testing.B) {
				cv := make([]float32, m*n)
				for b.Loop() {
					kernelstest.RefGemm(av, kernels.Shape{m, k}, bv, kernels.Shape{k, n}, cv, kernels.GemmParams{Alpha: 1})
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		for _, threads := range []int{1, 2} {
			c := newCPU(b, threads)
			a, bb := kernelstest.Upload(b, c, av, m, k), kernelstest.Upload(b, c, bv, k, n)
			cc, _ := c.Alloc(kernels.Shape{m, n})
			b.Run(fmt.Sprintf("m%d_k%d_n%d/impl=opt/threads=%d", m, k, n, threads), func(b *testing.B) {
				for b.Loop() {
					if err := c.Gemm(cc, a, bb, kernels.GemmParams{Alpha: 1}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
