package train

import (
	"context"
	"fmt"
	"math"
)

// LRFindConfig parameterises the learning-rate finder (fastai v1's
// lr_find defaults when zero).
type LRFindConfig struct {
	// StartLR and EndLR bound the exponential sweep (1e-7, 10).
	StartLR, EndLR float64
	// Iters is the number of steps (100).
	Iters int
	// Beta smooths the loss (0.98): avg = β·avg + (1-β)·loss, smoothed =
	// avg/(1-β^k) after k steps (bias correction).
	Beta float64
	// NoStopDiv keeps going when the smoothed loss passes 4x its minimum.
	NoStopDiv bool
	// SkipStart and SkipEnd drop points at both ends before the suggestion
	// (fastai's plot defaults 10 and 5), shrunk when the sweep stopped
	// early so that at least 3 points remain.
	SkipStart, SkipEnd int
}

func (c *LRFindConfig) setDefaults() {
	if c.StartLR == 0 {
		c.StartLR = 1e-7
	}
	if c.EndLR == 0 {
		c.EndLR = 10
	}
	if c.Iters == 0 {
		c.Iters = 100
	}
	if c.Beta == 0 {
		c.Beta = 0.98
	}
	if c.SkipStart == 0 {
		c.SkipStart = 10
	}
	if c.SkipEnd == 0 {
		c.SkipEnd = 5
	}
}

// Validate reports the first bad field, wrapping ErrConfig.
func (c *LRFindConfig) Validate() error {
	switch {
	case !(c.StartLR > 0) || !(c.EndLR > c.StartLR) || math.IsInf(c.EndLR, 0):
		return fmt.Errorf("%w: lr_find range (got %v..%v, want 0 < start < end)", ErrConfig, c.StartLR, c.EndLR)
	case c.Iters < 3:
		return fmt.Errorf("%w: lr_find iterations (got=%d, want>=3)", ErrConfig, c.Iters)
	case !(c.Beta >= 0 && c.Beta < 1):
		return fmt.Errorf("%w: lr_find beta (got=%v, want in [0,1))", ErrConfig, c.Beta)
	case c.SkipStart < 0 || c.SkipEnd < 0:
		return fmt.Errorf("%w: lr_find skips (got=%d/%d, want>=0)", ErrConfig, c.SkipStart, c.SkipEnd)
	}
	return nil
}

// LRFindResult is one sweep.
type LRFindResult struct {
	// LRs, Losses and Smoothed are per step: the rate used, the raw loss
	// and the bias-corrected smoothed loss.
	LRs, Losses, Smoothed []float64
	// Suggestion is the rate at the steepest descent of the smoothed loss
	// against log(lr) (the minimum of its numerical gradient, as
	// np.gradient, after SkipStart/SkipEnd), not the rate at the minimum.
	Suggestion float64
	// MinLR is the rate where the smoothed loss was lowest (for the plot
	// and for the "10x before the minimum" rule of thumb).
	MinLR float64
	// Diverged says the sweep stopped because the smoothed loss passed 4x
	// its minimum or became NaN.
	Diverged bool
	// Skip records the points dropped at each end for the suggestion.
	SkipStart, SkipEnd int
}

// FindLR runs the learning-rate finder's algorithm: step i (0-based) trains
// one batch at lr = StartLR·(EndLR/StartLR)^(i/Iters) and returns its loss;
// the sweep stops after Iters steps, or (unless NoStopDiv) when the smoothed
// loss exceeds 4x the best smoothed loss so far or is NaN. The step
// function owns the model: restoring the weights afterwards is the
// caller's business (Learner.LRFind does it).
func FindLR(ctx context.Context, cfg LRFindConfig, step func(lr float64) (float64, error)) (*LRFindResult, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &LRFindResult{}
	var avg, best float64
	for i := 0; i < cfg.Iters; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lr := cfg.StartLR * math.Pow(cfg.EndLR/cfg.StartLR, float64(i)/float64(cfg.Iters))
		loss, err := step(lr)
		if err != nil {
			return nil, err
		}
		avg = cfg.Beta*avg + (1-cfg.Beta)*loss
		sm := avg / (1 - math.Pow(cfg.Beta, float64(i+1)))
		res.LRs = append(res.LRs, lr)
		res.Losses = append(res.Losses, loss)
		res.Smoothed = append(res.Smoothed, sm)
		if i == 0 || sm < best {
			best = sm
			res.MinLR = lr
		}
		if !cfg.NoStopDiv && (sm > 4*best || math.IsNaN(sm) || math.IsInf(sm, 0)) {
			res.Diverged = true
			break
		}
	}
	if err := res.suggest(cfg.SkipStart, cfg.SkipEnd); err != nil {
		return res, err
	}
	return res, nil
}

// suggest sets Suggestion from the smoothed curve.
func (r *LRFindResult) suggest(skipStart, skipEnd int) error {
	n := len(r.Smoothed)
	// Shrink the skips proportionally when the sweep was short.
	for skipStart+skipEnd > 0 && n-skipStart-skipEnd < 3 {
		if skipStart >= skipEnd && skipStart > 0 {
			skipStart--
		} else {
			skipEnd--
		}
	}
	r.SkipStart, r.SkipEnd = skipStart, skipEnd
	lrs, ls := r.LRs[skipStart:n-skipEnd], r.Smoothed[skipStart:n-skipEnd]
	if len(ls) < 3 {
		return fmt.Errorf("%w: lr_find: the loss diverged after %d steps, too few to suggest a rate (lower StartLR)", ErrDiverged, n)
	}
	g := gradient(ls)
	best := -1
	for i, v := range g {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if best < 0 || v < g[best] {
			best = i
		}
	}
	if best < 0 {
		return fmt.Errorf("%w: lr_find: no finite slope in the smoothed loss", ErrDiverged)
	}
	r.Suggestion = lrs[best]
	return nil
}

// gradient is numpy.gradient on unit spacing: central differences inside,
// one-sided at the ends.
func gradient(v []float64) []float64 {
	n := len(v)
	g := make([]float64, n)
	if n < 2 {
		return g
	}
	g[0] = v[1] - v[0]
	g[n-1] = v[n-1] - v[n-2]
	for i := 1; i < n-1; i++ {
		g[i] = (v[i+1] - v[i-1]) / 2
	}
	return g
}
