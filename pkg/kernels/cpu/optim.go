package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// optimGrain is how many parameters make a parallel chunk of an optimiser
// step worth its hand-off.
const optimGrain = 16384

// optimTensors checks that grad and each state tensor (nil ones are
// skipped) have param's shape and returns their host data in order.
func optimTensors(op string, param, grad *kernels.Tensor, state map[string]*kernels.Tensor, order ...string) (pd, gd []float32, sd [][]float32, err error) {
	if pd, err = hostOp(op, "param", param); err != nil {
		return nil, nil, nil, err
	}
	if err = kernels.CheckShape(op+": grad", grad, param.Shape); err != nil {
		return nil, nil, nil, err
	}
	if gd, err = hostOp(op, "grad", grad); err != nil {
		return nil, nil, nil, err
	}
	for _, name := range order {
		t := state[name]
		if t == nil {
			sd = append(sd, nil)
			continue
		}
		if err = kernels.CheckShape(op+": "+name, t, param.Shape); err != nil {
			return nil, nil, nil, err
		}
		d, err := hostOp(op, name, t)
		if err != nil {
			return nil, nil, nil, err
		}
		sd = append(sd, d)
	}
	return pd, gd, sd, nil
}

// SGDStep implements kernels.OptimOps, PyTorch's SGD with momentum and L2
// weight decay (dampening 0, not Nesterov). For each element i:
//
//	d = g[i] + wd*p[i]
//	v[i] = momentum*v[i] + d     (when velocity is given)
//	p[i] -= lr * v[i]            (lr * d without velocity)
//
// A zeroed velocity makes the first step v = d, as PyTorch's first-step
// buffer. velocity may be nil only when Momentum is 0.
func (c *CPU) SGDStep(param, grad, velocity *kernels.Tensor, p kernels.SGDParams) error {
	const op = "sgd"
	if err := p.Check(op); err != nil {
		return err
	}
	pd, gd, sd, err := optimTensors(op, param, grad, map[string]*kernels.Tensor{"velocity": velocity}, "velocity")
	if err != nil {
		return err
	}
	if velocity == nil && p.Momentum != 0 {
		return fmt.Errorf("%w: %s: velocity is nil with Momentum=%v (want a velocity tensor of shape %v)", kernels.ErrParam, op, p.Momentum, param.Shape)
	}
	vd := sd[0]
	lr, mom, wd := p.LR, p.Momentum, p.WeightDecay
	c.parallel(len(pd), optimGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := gd[i] + wd*pd[i]
			if vd != nil {
				d += mom * vd[i]
				vd[i] = d
			}
			pd[i] -= lr * d
		}
	})
	return nil
}

// AdamWStep implements kernels.OptimOps, PyTorch's AdamW (amsgrad off).
// With t = p.Step (1-based), bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, for each
// element i:
//
//	p[i] *= 1 - lr*wd                      (decoupled weight decay)
//	m[i] = beta1*m[i] + (1-beta1)*g[i]
//	v[i] = beta2*v[i] + (1-beta2)*g[i]^2
//	p[i] -= (lr/bc1) * m[i] / (sqrt(v[i])/sqrt(bc2) + eps)
//
// m and v start zeroed; the bias corrections are computed in float64.
// Where the denominator is 0 (Eps 0 and v 0) only the decay applies.
func (c *CPU) AdamWStep(param, grad, m, v *kernels.Tensor, p kernels.AdamWParams) error {
	const op = "adamw"
	if err := p.Check(op); err != nil {
		return err
	}
	pd, gd, sd, err := optimTensors(op, param, grad, map[string]*kernels.Tensor{"m": m, "v": v}, "m", "v")
	if err != nil {
		return err
	}
	if m == nil || v == nil {
		return fmt.Errorf("%w: %s: m or v is nil (want both, shape %v)", kernels.ErrParam, op, param.Shape)
	}
	md, vd := sd[0], sd[1]
	stepSize, invSqrtBC2, decay := p.Factors()
	// In C (optim_c.go), vectorised, per element:
	//	g := gd[i]
	//	mi := b1*md[i] + (1-b1)*g
	//	vi := b2*vd[i] + (1-b2)*g*g
	//	md[i], vd[i] = mi, vi
	//	den := float32(math.Sqrt(float64(vi)))*invSqrtBC2 + eps
	//	if den == 0 { // Eps 0 and no gradient yet: no Adam term (not 0/0)
	//		pd[i] *= decay
	//	} else {
	//		pd[i] = pd[i]*decay - stepSize*mi/den
	//	}
	parallelFor(c, len(pd), optimGrain, adamwRange{p: pd, g: gd[:len(pd)], m: md[:len(pd)], v: vd[:len(pd)],
		b1: p.Beta1, b2: p.Beta2, eps: p.Eps, stepSize: stepSize, invSqrtBC2: invSqrtBC2, decay: decay})
	return nil
}
