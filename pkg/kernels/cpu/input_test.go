package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

func randFrames(r *rand.Rand, n int) []byte {
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(r.IntN(256))
	}
	return src
}

// TestNormalizeU8ParallelMatchesSerial: frames big enough to split across
// threads give the same floats on 1 and 2 threads, for every channel count
// and both channel orders.
func TestNormalizeU8ParallelMatchesSerial(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	c1, c2 := newCPU(t, 1), newCPU(t, 2)
	for _, ch := range []int{1, 3, 4} {
		for _, swap := range []bool{false, true} {
			p := kernels.NormalizeParams{N: 3, H: 97, W: 131, C: ch, Mean: kernelstest.Rand(r, ch, 0, 1), Std: kernelstest.Rand(r, ch, 0.1, 1), SwapRB: swap}
			src := randFrames(r, p.N*p.H*p.W*p.C)
			var ys [2][]float32
			for i, c := range []*cpu.CPU{c1, c2} {
				y := kernels.NewHost(p.N, p.C, p.H, p.W)
				if err := c.NormalizeU8(y, src, p); err != nil {
					t.Fatal(err)
				}
				ys[i] = y.Data
			}
			kernelstest.AssertClose(t, fmt.Sprintf("C=%d swap=%v (2 threads vs 1)", ch, swap), ys[1], ys[0], kernelstest.TolExact)
		}
	}
}

// BenchmarkNormalizeU8 measures BGR frames to normalised RGB planes at the
// model sizes the services use; GB/s counts the bytes read plus the floats
// written (5 bytes per value).
func BenchmarkNormalizeU8(b *testing.B) {
	for _, g := range []struct{ n, h, w int }{{8, 224, 224}, {1, 576, 768}, {32, 64, 64}} {
		p := kernels.NormalizeParams{N: g.n, H: g.h, W: g.w, C: 3, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}, SwapRB: true}
		src := randFrames(rand.New(rand.NewPCG(1, 2)), g.n*g.h*g.w*3)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%dx3/threads=%d", g.n, g.h, g.w, threads), func(b *testing.B) {
				c := newCPU(b, threads)
				y := kernels.NewHost(g.n, 3, g.h, g.w)
				bytes := int64(5 * len(src))
				b.SetBytes(bytes)
				b.ResetTimer()
				for range b.N {
					if err := c.NormalizeU8(y, src, p); err != nil {
						b.Fatal(err)
					}
				}
				s := b.Elapsed().Seconds()
				b.ReportMetric(float64(bytes)*float64(b.N)/s/1e9, "GB/s")
				b.ReportMetric(float64(g.n*b.N)/s, "frames/s")
			})
		}
	}
}
