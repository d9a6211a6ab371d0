package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// The conformance suite's loss and optimiser cases are mostly small enough
// to run inline. These run them on tensors that split across threads and
// require the 2-thread results to equal the 1-thread results bit for bit:
// the loss sums are float64 over fixed blocks added in block order, so the
// thread count must not change a single bit.

// lossData is one random batch: logits, BCE/MSE targets, class ids with
// some Void (255), per-sample weights.
type lossData struct {
	x, tb, tm, tc, w *kernels.Tensor
}

func newLossData(xs kernels.Shape) lossData {
	r := rand.New(rand.NewPCG(7, uint64(xs.Numel())))
	n := xs.Numel()
	ts := append(kernels.Shape{xs[0]}, xs[2:]...)
	tc := make([]float32, ts.Numel())
	for i := range tc {
		tc[i] = float32(r.IntN(xs[1]))
		if r.IntN(7) == 0 {
			tc[i] = 255
		}
	}
	return lossData{
		x:  kernels.FromSlice(kernelstest.Rand(r, n, -5, 5), xs...),
		tb: kernels.FromSlice(kernelstest.Rand(r, n, 0, 1), xs...),
		tm: kernels.FromSlice(kernelstest.Rand(r, n, -1, 1), xs...),
		tc: kernels.FromSlice(tc, ts...),
		w:  kernels.FromSlice(kernelstest.Rand(r, xs[0], 0.5, 2), xs[0]),
	}
}

// lossRuns are each loss's forward (into a 1-element tensor) and backward
// (into a tensor of x's shape) as out = op(c, d).
func lossRuns() []struct {
	name string
	fwd  bool
	op   func(c *cpu.CPU, out *kernels.Tensor, d lossData) error
} {
	type run = struct {
		name string
		fwd  bool
		op   func(c *cpu.CPU, out *kernels.Tensor, d lossData) error
	}
	return []run{
		{"bce", true, func(c *cpu.CPU, l *kernels.Tensor, d lossData) error { return c.BCEWithLogits(l, d.x, d.tb, d.w) }},
		{"bce backward", false, func(c *cpu.CPU, dx *kernels.Tensor, d lossData) error {
			return c.BCEWithLogitsBackward(dx, d.x, d.tb, d.w, 1)
		}},
		{"mse", true, func(c *cpu.CPU, l *kernels.Tensor, d lossData) error { return c.MSE(l, d.x, d.tm, nil) }},
		{"mse backward", false, func(c *cpu.CPU, dx *kernels.Tensor, d lossData) error { return c.MSEBackward(dx, d.x, d.tm, d.w, 1) }},
		{"ce", true, func(c *cpu.CPU, l *kernels.Tensor, d lossData) error { return c.CrossEntropy(l, d.x, d.tc, d.w, 255) }},
		{"ce backward", false, func(c *cpu.CPU, dx *kernels.Tensor, d lossData) error {
			return c.CrossEntropyBackward(dx, d.x, d.tc, d.w, 255, 1)
		}},
	}
}

func TestLossParallelMatchesSerial(t *testing.T) {
	c1, c2 := newCPU(t, 1), newCPU(t, 2)
	for _, xs := range []kernels.Shape{{3, 11, 61, 67}, {20000, 10}} {
		d := newLossData(xs)
		for _, lr := range lossRuns() {
			name := fmt.Sprintf("%s %v", lr.name, xs)
			os := kernels.Shape{1}
			if !lr.fwd {
				os = xs
			}
			o1, o2 := kernels.NewHost(os...), kernels.NewHost(os...)
			if err := lr.op(c1, o1, d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := lr.op(c2, o2, d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			kernelstest.AssertClose(t, name+" (2 threads vs 1)", o2.Data, o1.Data, kernelstest.TolExact)
		}
	}
}

// BenchmarkCrossEntropy measures per-pixel cross-entropy forward and
// backward on a U-Net-sized output (8 images, 12 classes, 128x128), in
// pixels per second.
func BenchmarkCrossEntropy(b *testing.B) {
	xs := kernels.Shape{8, 12, 128, 128}
	d := newLossData(xs)
	pixels := float64(xs[0] * xs[2] * xs[3])
	for _, threads := range []int{1, 2} {
		c := newCPU(b, threads)
		l, dx := kernels.NewHost(1), kernels.NewHost(xs...)
		b.Run(fmt.Sprintf("forward/threads=%d", threads), func(b *testing.B) {
			for range b.N {
				if err := c.CrossEntropy(l, d.x, d.tc, nil, 255); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(pixels*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
		})
		b.Run(fmt.Sprintf("backward/threads=%d", threads), func(b *testing.B) {
			for range b.N {
				if err := c.CrossEntropyBackward(dx, d.x, d.tc, nil, 255, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(pixels*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpixel/s")
		})
	}
}
