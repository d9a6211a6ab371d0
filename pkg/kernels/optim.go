package kernels

import (
	"fmt"
	"math"
)

// Check validates SGD's hyper-parameters for op (every backend's SGDStep
// starts with it): LR, Momentum and WeightDecay finite and >= 0.
func (p SGDParams) Check(op string) error {
	inf := math.Inf(1)
	for _, hp := range []hyper{{"LR", p.LR, 0, inf}, {"Momentum", p.Momentum, 0, inf}, {"WeightDecay", p.WeightDecay, 0, inf}} {
		if err := hp.check(op); err != nil {
			return err
		}
	}
	return nil
}

// Check validates AdamW's hyper-parameters for op: LR, Eps and
// WeightDecay finite and >= 0, the betas in [0, 1), Step >= 1.
func (p AdamWParams) Check(op string) error {
	inf := math.Inf(1)
	for _, hp := range []hyper{{"LR", p.LR, 0, inf}, {"Beta1", p.Beta1, 0, 1}, {"Beta2", p.Beta2, 0, 1}, {"Eps", p.Eps, 0, inf}, {"WeightDecay", p.WeightDecay, 0, inf}} {
		if err := hp.check(op); err != nil {
			return err
		}
	}
	if p.Step < 1 {
		return fmt.Errorf("%w: %s: Step=%d (want >= 1, the 1-based count of steps taken including this one)", ErrParam, op, p.Step)
	}
	return nil
}

// Factors are AdamW's per-step constants, computed in float64 from the
// 1-based Step as every backend computes them: the step size lr/bc1,
// 1/sqrt(bc2) (bc1 = 1-beta1^t, bc2 = 1-beta2^t) and the decoupled decay
// factor 1 - lr*wd.
func (p AdamWParams) Factors() (stepSize, invSqrtBC2, decay float32) {
	t := float64(p.Step)
	bc1 := 1 - math.Pow(float64(p.Beta1), t)
	bc2 := 1 - math.Pow(float64(p.Beta2), t)
	return float32(float64(p.LR) / bc1), float32(1 / math.Sqrt(bc2)), float32(1 - float64(p.LR)*float64(p.WeightDecay))
}

// hyper is one optimiser hyper-parameter and its range [lo, hi) (hi =
// +Inf for no upper bound).
type hyper struct {
	name   string
	v      float32
	lo, hi float64
}

func (h hyper) check(op string) error {
	f := float64(h.v)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < h.lo || f >= h.hi {
		if math.IsInf(h.hi, 1) {
			return fmt.Errorf("%w: %s: %s=%v (want finite and >= %v)", ErrParam, op, h.name, h.v, h.lo)
		}
		return fmt.Errorf("%w: %s: %s=%v (want in [%v, %v))", ErrParam, op, h.name, h.v, h.lo, h.hi)
	}
	return nil
}
