package train

import (
	"fmt"
	"math"
)

// OneCycle is fastai v1's one-cycle policy (OneCycleScheduler, the
// version the lesson uses): over Total iterations, the first
// a1 = int(Total*PctStart) warm the learning rate up from max/DivFactor to
// max along a half cosine while momentum falls from MomMax to MomMin; the
// remaining a2 = Total-a1 anneal the rate from max to max/FinalDiv along a
// half cosine while momentum climbs back to MomMax.
//
// As fastai's Stepper, iteration i (0-based) uses pct i/a1 in the first
// phase (i <= a1, so iteration a1 runs at the peak) and (i-a1)/a2 in the
// second.
type OneCycle struct {
	// Total is the number of iterations (batches times epochs).
	Total int
	// PctStart is the fraction of iterations spent warming up (fastai v1:
	// 0.3; v2 uses 0.25).
	PctStart float64
	// DivFactor: the first rate is max/DivFactor (fastai: 25).
	DivFactor float64
	// FinalDiv: the last rate tends to max/FinalDiv (fastai v1:
	// DivFactor*1e4).
	FinalDiv float64
	// MomMax and MomMin are the momentum's ends (fastai: 0.95, 0.85).
	MomMax, MomMin float64
}

// NewOneCycle is fastai v1's defaults for total iterations.
func NewOneCycle(total int) OneCycle {
	return OneCycle{Total: total, PctStart: 0.3, DivFactor: 25, FinalDiv: 25e4, MomMax: 0.95, MomMin: 0.85}
}

// Validate reports an unusable schedule, wrapping ErrConfig.
func (s OneCycle) Validate() error {
	switch {
	case s.Total < 1:
		return fmt.Errorf("%w: one-cycle total iterations (got=%d, want>=1)", ErrConfig, s.Total)
	case !(s.PctStart > 0 && s.PctStart < 1):
		return fmt.Errorf("%w: one-cycle pct_start (got=%v, want in (0,1))", ErrConfig, s.PctStart)
	case !(s.DivFactor >= 1) || !(s.FinalDiv >= 1):
		return fmt.Errorf("%w: one-cycle div factors (got=%v/%v, want>=1)", ErrConfig, s.DivFactor, s.FinalDiv)
	case !(s.MomMax >= 0 && s.MomMax < 1) || !(s.MomMin >= 0 && s.MomMin < 1):
		return fmt.Errorf("%w: one-cycle momenta (got=%v/%v, want in [0,1))", ErrConfig, s.MomMax, s.MomMin)
	}
	return nil
}

// annealCos goes from start (pct 0) to end (pct 1) along a half cosine.
func annealCos(start, end, pct float64) float64 {
	return end + (start-end)/2*(math.Cos(math.Pi*pct)+1)
}

// At returns the learning-rate multiplier (of the max rate) and the
// momentum for iteration i (clamped to [0, Total-1]).
func (s OneCycle) At(i int) (lrMult, mom float64) {
	if i < 0 {
		i = 0
	}
	if i >= s.Total {
		i = s.Total - 1
	}
	a1 := int(float64(s.Total) * s.PctStart)
	a2 := s.Total - a1
	if a1 > 0 && i <= a1 {
		p := float64(i) / float64(a1)
		return annealCos(1/s.DivFactor, 1, p), annealCos(s.MomMax, s.MomMin, p)
	}
	p := float64(i-a1) / float64(max(a2, 1))
	return annealCos(1, 1/s.FinalDiv, p), annealCos(s.MomMin, s.MomMax, p)
}

// Rates are per-layer-group maximum learning rates, as fastai's lr
// argument: a number, slice(hi) or slice(lo, hi).
type Rates struct {
	// Lo and Hi: Lo == Hi is one rate for every group (Const); Lo == 0 is
	// fastai's slice(Hi): Hi/10 for every group but the last, Hi for the
	// last; otherwise geometric from Lo (first group) to Hi (last group),
	// fastai's even_mults.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Const is one rate for every layer group.
func Const(lr float64) Rates { return Rates{Lo: lr, Hi: lr} }

// Slice is fastai's slice(lo, hi); Slice(0, hi) is slice(hi).
func Slice(lo, hi float64) Rates { return Rates{Lo: lo, Hi: hi} }

// Validate reports non-positive or non-finite rates, wrapping ErrConfig.
func (r Rates) Validate() error {
	if !(r.Hi > 0) || math.IsInf(r.Hi, 0) || r.Lo < 0 || math.IsInf(r.Lo, 0) || math.IsNaN(r.Lo) || r.Lo > r.Hi {
		return fmt.Errorf("%w: learning rates (got lo=%v hi=%v, want 0 <= lo <= hi, hi > 0 finite)", ErrConfig, r.Lo, r.Hi)
	}
	return nil
}

// For returns the rate of each of n groups.
func (r Rates) For(n int) []float64 {
	out := make([]float64, n)
	for g := range out {
		switch {
		case r.Lo == r.Hi:
			out[g] = r.Hi
		case r.Lo == 0:
			out[g] = r.Hi / 10
			if g == n-1 {
				out[g] = r.Hi
			}
		case n == 1:
			out[g] = r.Hi
		default:
			// even_mults: lo * (hi/lo)^(g/(n-1)).
			out[g] = r.Lo * math.Pow(r.Hi/r.Lo, float64(g)/float64(n-1))
		}
	}
	return out
}

// String is the fastai spelling: 0.01, slice(0.01), slice(1e-05, 0.002).
func (r Rates) String() string {
	switch {
	case r.Lo == r.Hi:
		return fmt.Sprintf("%g", r.Hi)
	case r.Lo == 0:
		return fmt.Sprintf("slice(%g)", r.Hi)
	}
	return fmt.Sprintf("slice(%g, %g)", r.Lo, r.Hi)
}
