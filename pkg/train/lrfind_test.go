package train

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// linReg is minibatch SGD on least squares, loss = mean((x·w - y)²): the
// Hessian is 2·E[xxᵀ] = 2·diag(scale²), so plain SGD is stable only for
// lr < 2/λmax = 1/max(scale²) and fastest near half of that.
type linReg struct {
	rng   *rand.Rand
	scale []float64
	wTrue []float64
	w     []float64
	batch int
	noise float64
}

// newLinReg uses batches of 512: the finder reads slopes of a smoothed
// curve, and with small batches the minibatch noise of the first steps
// (relative std sqrt(2/batch)) is as steep as the real descent.
func newLinReg(seed uint64, scale []float64) *linReg {
	r := &linReg{rng: rand.New(rand.NewPCG(seed, 7)), scale: scale, batch: 512, noise: 0.01}
	for range scale {
		r.wTrue = append(r.wTrue, r.rng.NormFloat64())
		r.w = append(r.w, 0)
	}
	return r
}

// step draws a batch, returns its loss before the update, then does one
// SGD step at lr.
func (r *linReg) step(lr float64) (float64, error) {
	d := len(r.w)
	grad := make([]float64, d)
	loss := 0.0
	for b := 0; b < r.batch; b++ {
		x := make([]float64, d)
		pred, y := 0.0, r.noise*r.rng.NormFloat64()
		for j := range x {
			x[j] = r.scale[j] * r.rng.NormFloat64()
			pred += x[j] * r.w[j]
			y += x[j] * r.wTrue[j]
		}
		e := pred - y
		loss += e * e
		for j := range grad {
			grad[j] += 2 * e * x[j]
		}
	}
	for j := range r.w {
		r.w[j] -= lr * grad[j] / float64(r.batch)
	}
	return loss / float64(r.batch), nil
}

// TestFindLRSuggestsStableFastRate: on least squares with known curvature
// the suggestion must be a rate that converges (below the stability
// limit 1/max(scale²)) and not a uselessly small one (within 30x of the
// limit), and it must move with the curvature.
func TestFindLRSuggestsStableFastRate(t *testing.T) {
	var prev float64
	for i, c := range []float64{1, 10, 100, 1000} {
		scale := []float64{math.Sqrt(c), math.Sqrt(c) / 2, math.Sqrt(c) / 3, math.Sqrt(c) / 4}
		limit := 1 / c // 2/λmax with λmax = 2c
		p := newLinReg(uint64(i+1), scale)
		res, err := FindLR(context.Background(), LRFindConfig{}, p.step)
		if err != nil {
			t.Fatalf("c=%v: %v", c, err)
		}
		t.Logf("curvature %v: stable below %.3g, suggestion %.3g (min at %.3g, %d steps, diverged=%v)", c, limit, res.Suggestion, res.MinLR, len(res.LRs), res.Diverged)
		if !(res.Suggestion < limit && res.Suggestion > limit/30) {
			t.Errorf("curvature %v: suggestion %.3g (want in (%.3g, %.3g): stable and not tiny)", c, res.Suggestion, limit/30, limit)
		}
		if !res.Diverged {
			t.Errorf("curvature %v: the sweep up to 10 should diverge above %.3g", c, limit)
		}
		if res.Suggestion >= res.MinLR {
			t.Errorf("curvature %v: suggestion %.3g not below the minimum's rate %.3g", c, res.Suggestion, res.MinLR)
		}
		if i > 0 {
			if r := prev / res.Suggestion; r < 3 || r > 30 {
				t.Errorf("curvature x10 moved the suggestion by %.3gx (want ~10x)", r)
			}
		}
		prev = res.Suggestion
	}
}
