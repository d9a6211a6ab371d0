package cpu_test

import (
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestOptimParallelMatchesSerial runs three SGD and AdamW steps on a
// parameter big enough to split across threads: the 2-thread result must
// equal the 1-thread one bit for bit (each element is updated by the same
// arithmetic either way).
func TestOptimParallelMatchesSerial(t *testing.T) {
	const n = 100003
	r := rand.New(rand.NewPCG(8, 9))
	p0 := kernelstest.Rand(r, n, -1, 1)
	g := kernels.FromSlice(kernelstest.Rand(r, n, -1, 1), n)
	var results [2][3][]float32
	for i, threads := range []int{1, 2} {
		c := newCPU(t, threads)
		p := kernels.FromSlice(append([]float32(nil), p0...), n)
		m, v, vel := kernels.NewHost(n), kernels.NewHost(n), kernels.NewHost(n)
		for step := 1; step <= 3; step++ {
			if err := c.SGDStep(p, g, vel, kernels.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 1e-4}); err != nil {
				t.Fatal(err)
			}
			if err := c.AdamWStep(p, g, m, v, kernels.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, Step: step}); err != nil {
				t.Fatal(err)
			}
		}
		results[i] = [3][]float32{p.Data, m.Data, vel.Data}
	}
	for j, name := range []string{"p", "m", "velocity"} {
		kernelstest.AssertClose(t, name+" (2 threads vs 1)", results[1][j], results[0][j], kernelstest.TolExact)
	}
}
