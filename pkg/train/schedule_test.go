package train

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// TestOneCycleShape checks fastai v1's one-cycle values at hand-computed
// points and the shape: the rate rises monotonically to the peak at
// iteration int(0.3·Total) and then falls to ~max/25e4, while momentum
// mirrors it (0.95 -> 0.85 -> 0.95).
func TestOneCycleShape(t *testing.T) {
	s := NewOneCycle(100) // a1 = 30, a2 = 70
	for _, c := range []struct {
		i       int
		lr, mom float64
	}{
		{0, 1.0 / 25, 0.95},
		{15, 1.0/25 + (1-1.0/25)/2, 0.90}, // halfway up: cos(pi/2) = 0
		{30, 1, 0.85},
		{65, 1/25e4 + (1-1/25e4)/2, 0.90}, // halfway down
		{99, 1/25e4 + (1-1/25e4)/2*(math.Cos(math.Pi*69/70)+1), 0.95 + (0.85-0.95)/2*(math.Cos(math.Pi*69/70)+1)},
	} {
		lr, mom := s.At(c.i)
		if !near(lr, c.lr, 1e-12) || !near(mom, c.mom, 1e-12) {
			t.Errorf("At(%d) = (%.9g, %.9g), want (%.9g, %.9g)", c.i, lr, mom, c.lr, c.mom)
		}
	}
	var prevLR, prevMom float64
	for i := 0; i < s.Total; i++ {
		lr, mom := s.At(i)
		if i > 0 {
			up := i <= 30
			if up && !(lr > prevLR && mom < prevMom) {
				t.Fatalf("iteration %d: warm-up must raise the rate and lower momentum (lr %g->%g, mom %g->%g)", i, prevLR, lr, prevMom, mom)
			}
			if !up && !(lr < prevLR && mom > prevMom) {
				t.Fatalf("iteration %d: annealing must lower the rate and raise momentum (lr %g->%g, mom %g->%g)", i, prevLR, lr, prevMom, mom)
			}
		}
		prevLR, prevMom = lr, mom
	}
	if lr, _ := s.At(99); lr > 1e-3 {
		t.Errorf("last rate multiplier %g, want close to 1/25e4", lr)
	}
	if err := (OneCycle{Total: 0, PctStart: 0.3, DivFactor: 25, FinalDiv: 1}).Validate(); err == nil {
		t.Error("Total 0 validated")
	}
}

// TestRates checks fastai's lr_range: a number for every group,
// slice(hi) = hi/10 for the body and hi for the head, slice(lo, hi)
// geometric.
func TestRates(t *testing.T) {
	for _, c := range []struct {
		r    Rates
		want []float64
		str  string
	}{
		{Const(0.01), []float64{0.01, 0.01, 0.01}, "0.01"},
		{Slice(0, 0.01), []float64{0.001, 0.001, 0.01}, "slice(0.01)"},
		{Slice(1e-5, 1e-3), []float64{1e-5, 1e-4, 1e-3}, "slice(1e-05, 0.001)"},
	} {
		got := c.r.For(3)
		for i := range got {
			if !near(got[i], c.want[i], 1e-12) {
				t.Errorf("%v.For(3) = %v, want %v", c.r, got, c.want)
				break
			}
		}
		if c.r.String() != c.str {
			t.Errorf("String() = %q, want %q", c.r.String(), c.str)
		}
		if err := c.r.Validate(); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []Rates{{}, {Lo: 1, Hi: 0.1}, {Lo: -1, Hi: 1}, {Hi: math.NaN()}, {Hi: math.Inf(1)}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
