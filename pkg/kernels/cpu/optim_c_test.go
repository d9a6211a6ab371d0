package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestAdamWMatchesGoLoop: the vectorised AdamW step equals the plain Go
// loop of its comment bit for bit, on a length that leaves a scalar tail
// and with zero gradients (the den == 0 branch with Eps 0).
func TestAdamWMatchesGoLoop(t *testing.T) {
	const n = 1037
	r := rand.New(rand.NewPCG(3, 5))
	c := newCPU(t, 1)
	for _, eps := range []float32{1e-5, 0} {
		p0, g := kernelstest.Rand(r, n, -1, 1), kernelstest.Rand(r, n, -1, 1)
		for i := 0; i < n; i += 7 {
			g[i] = 0
		}
		p, m, v := kernels.FromSlice(append([]float32(nil), p0...), n), kernels.NewHost(n), kernels.NewHost(n)
		wp, wm, wv := append([]float32(nil), p0...), make([]float32, n), make([]float32, n)
		for step := 1; step <= 3; step++ {
			prm := kernels.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: eps, WeightDecay: 0.01, Step: step}
			if err := c.AdamWStep(p, kernels.FromSlice(g, n), m, v, prm); err != nil {
				t.Fatal(err)
			}
			bc1 := 1 - math.Pow(float64(prm.Beta1), float64(step))
			bc2 := 1 - math.Pow(float64(prm.Beta2), float64(step))
			stepSize := float32(float64(prm.LR) / bc1)
			invSqrtBC2 := float32(1 / math.Sqrt(bc2))
			decay := float32(1 - float64(prm.LR)*float64(prm.WeightDecay))
			b1, b2 := prm.Beta1, prm.Beta2
			for i := range wp {
				mi := b1*wm[i] + (1-b1)*g[i]
				vi := b2*wv[i] + (1-b2)*g[i]*g[i]
				wm[i], wv[i] = mi, vi
				den := float32(math.Sqrt(float64(vi)))*invSqrtBC2 + eps
				if den == 0 {
					wp[i] *= decay
				} else {
					wp[i] = wp[i]*decay - stepSize*mi/den
				}
			}
		}
		kernelstest.AssertClose(t, "p", p.Data, wp, kernelstest.TolExact)
		kernelstest.AssertClose(t, "m", m.Data, wm, kernelstest.TolExact)
		kernelstest.AssertClose(t, "v", v.Data, wv, kernelstest.TolExact)
	}
}
