package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain float64 reference steps for the optimiser family, as PyTorch's
// torch.optim.SGD (dampening 0, no Nesterov) and torch.optim.AdamW
// (amsgrad off) write them. They update p and the state in place.

// refOptimSGD: d = g + wd*p; v = momentum*v + d (v nil: no momentum);
// p -= lr*v.
func refOptimSGD(p, g, v []float64, prm kernels.SGDParams) {
	lr, mom, wd := float64(prm.LR), float64(prm.Momentum), float64(prm.WeightDecay)
	for i := range p {
		d := g[i] + wd*p[i]
		if v != nil {
			v[i] = mom*v[i] + d
			d = v[i]
		}
		p[i] -= lr * d
	}
}

// refOptimAdamW: p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
// p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps), t = prm.Step.
func refOptimAdamW(p, g, m, v []float64, prm kernels.AdamWParams) {
	lr, b1, b2 := float64(prm.LR), float64(prm.Beta1), float64(prm.Beta2)
	eps, wd, t := float64(prm.Eps), float64(prm.WeightDecay), float64(prm.Step)
	for i := range p {
		p[i] *= 1 - lr*wd
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / (1 - math.Pow(b1, t))
		vhat := v[i] / (1 - math.Pow(b2, t))
		p[i] -= lr * mhat / (math.Sqrt(vhat) + eps)
	}
}
