package cpu_test

import (
	"errors"
	"fmt"
	"math"
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
		{"ce smoothed", true, func(c *cpu.CPU, l *kernels.Tensor, d lossData) error {
			return c.CrossEntropySmooth(l, d.x, d.tc, d.w, 255, 0.1)
		}},
		{"ce smoothed backward", false, func(c *cpu.CPU, dx *kernels.Tensor, d lossData) error {
			return c.CrossEntropySmoothBackward(dx, d.x, d.tc, d.w, 255, 0.1, 1)
		}},
	}
}

// Label smoothing against hand-computed values, its gradient against
// central differences of its loss, eps 0 against plain cross-entropy, and
// the refusal of eps outside [0, 1).
func TestCrossEntropySmooth(t *testing.T) {
	c := newCPU(t, 1)
	// Rows (1,2,3) class 2 and (0,0,ln 2) class 0, C = 3, eps 0.1:
	//   row 0: lse 3.40760596 - 0.9*3 - 0.1/3*6 = 0.50760596
	//   row 1: lse ln 4 - 0 - 0.1/3*ln 2 = 1.36318945
	// mean 0.93539771. dx = (softmax - (0.9*onehot + 0.1/3))/2:
	//   row 0: (0.09003057-1/30, 0.24472847-1/30, 0.66524096-28/30)/2
	//   row 1: (0.25-28/30, 0.25-1/30, 0.5-1/30)/2
	x := kernels.FromSlice([]float32{1, 2, 3, 0, 0, float32(math.Ln2)}, 2, 3)
	tg := kernels.FromSlice([]float32{2, 0}, 2)
	l := kernels.NewHost(1)
	if err := c.CrossEntropySmooth(l, x, tg, nil, -1, 0.1); err != nil {
		t.Fatal(err)
	}
	kernelstest.AssertClose(t, "smoothed loss", l.Data, []float32{0.93539771}, kernelstest.TolF32)
	dx := kernels.NewHost(2, 3)
	if err := c.CrossEntropySmoothBackward(dx, x, tg, nil, -1, 0.1, 1); err != nil {
		t.Fatal(err)
	}
	kernelstest.AssertClose(t, "smoothed dx", dx.Data,
		[]float32{0.02834862, 0.10569757, -0.13404619, -0.34166667, 0.10833333, 0.23333333}, kernelstest.TolF32)

	// eps 0 is CrossEntropy, bit for bit.
	d := newLossData(kernels.Shape{2, 5, 3, 4})
	l0, lc := kernels.NewHost(1), kernels.NewHost(1)
	if err := c.CrossEntropySmooth(l0, d.x, d.tc, d.w, 255, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.CrossEntropy(lc, d.x, d.tc, d.w, 255); err != nil {
		t.Fatal(err)
	}
	kernelstest.AssertClose(t, "eps 0", l0.Data, lc.Data, kernelstest.TolExact)

	// The gradient is the loss's: central differences in float64 terms of
	// float32 losses, on per-pixel logits with Void and weights.
	const eps, h = 0.2, 1e-2
	g := kernels.NewHost(d.x.Shape...)
	if err := c.CrossEntropySmoothBackward(g, d.x, d.tc, d.w, 255, eps, 1); err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		if err := c.CrossEntropySmooth(l, d.x, d.tc, d.w, 255, eps); err != nil {
			t.Fatal(err)
		}
		return float64(l.Data[0])
	}
	for i := range d.x.Data {
		v := d.x.Data[i]
		d.x.Data[i] = v + h
		up := lossAt()
		d.x.Data[i] = v - h
		down := lossAt()
		d.x.Data[i] = v
		if num := (up - down) / (2 * h); math.Abs(num-float64(g.Data[i])) > 2e-4 {
			t.Fatalf("dx[%d] = %v, central difference %v", i, g.Data[i], num)
		}
	}

	for _, bad := range []float32{-0.1, 1, float32(math.NaN())} {
		if err := c.CrossEntropySmooth(l, x, tg, nil, -1, bad); !errors.Is(err, kernels.ErrParam) {
			t.Errorf("eps %v: got %v, want ErrParam", bad, err)
		}
		if err := c.CrossEntropySmoothBackward(dx, x, tg, nil, -1, bad, 1); !errors.Is(err, kernels.ErrParam) {
			t.Errorf("backward eps %v: got %v, want ErrParam", bad, err)
		}
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
