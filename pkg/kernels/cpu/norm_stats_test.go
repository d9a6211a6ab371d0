package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestBatchNormStats: the one-pass statistics match a two-pass float64
// computation, also where the mean is large against the spread (a plain
// E[x^2]-E[x]^2 would cancel to noise there), on constant channels
// (variance 0, never negative) and with plane sizes that leave a tail.
func TestBatchNormStats(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		n, ch, s       int
		offset, spread float64
	}{
		{3, 2, 7, 0, 1},
		{4, 3, 16, 1e4, 1e-2},
		{64, 2, 49, 1e4, 1e-2},
		{16, 1, 784, -3e3, 0.5},
		{2, 1, 33, -250, 3},
		{5, 2, 9, 7, 0},
		{64, 4, 49, 0.5, 0.1},
	} {
		x := make([]float32, c.n*c.ch*c.s)
		for i := range x {
			x[i] = float32(c.offset + c.spread*r.NormFloat64())
		}
		g := bnChannel{n: c.n, ch: c.ch, s: c.s}
		for k := range c.ch {
			var vals []float64
			for i := range c.n {
				for j := range c.s {
					vals = append(vals, float64(x[(i*c.ch+k)*c.s+j]))
				}
			}
			var m, v float64
			for _, a := range vals {
				m += a
			}
			m /= float64(len(vals))
			for _, a := range vals {
				v += (a - m) * (a - m)
			}
			v /= float64(len(vals))
			gm, gv := g.stats(x, k)
			name := fmt.Sprintf("%+v channel %d", c, k)
			if math.Abs(gm-m) > 1e-12*math.Max(1, math.Abs(m)) {
				t.Errorf("%s: mean %v, want %v", name, gm, m)
			}
			if math.Abs(gv-v) > 1e-9*math.Max(v, 1e-12) || gv < 0 {
				t.Errorf("%s: variance %v, want %v", name, gv, v)
			}
		}
	}
}
