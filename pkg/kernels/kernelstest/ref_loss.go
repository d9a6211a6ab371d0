package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain float64 reference loops for the loss family, one element at a time,
// straight from the LossOps contract: per-sample weights w (nil = all 1),
// loss = sum_e w[n(e)]*l[e] / sum_e w[n(e)] over the counted elements, 0
// when nothing counts. Each returns the loss and dLoss/dx (scale 1).

// refLossWeight is w[n], or 1 without weights.
func refLossWeight(w []float32, n int) float64 {
	if w == nil {
		return 1
	}
	return float64(w[n])
}

// refLossPointwise reduces l(x,t) over x and t of n samples and returns
// dLoss/dx from dl(x,t).
func refLossPointwise(x, t, w []float32, n int, l, dl func(x, t float64) float64) (float64, []float32) {
	inner := len(x) / n
	var num, den float64
	for e := range x {
		wn := refLossWeight(w, e/inner)
		num += wn * l(float64(x[e]), float64(t[e]))
		den += wn
	}
	dx := make([]float32, len(x))
	if den == 0 {
		return 0, dx
	}
	for e := range x {
		dx[e] = float32(refLossWeight(w, e/inner) * dl(float64(x[e]), float64(t[e])) / den)
	}
	return num / den, dx
}

// refLossBCE is binary cross-entropy on logits, written the naive way
// -[t*log(p) + (1-t)*log(1-p)] with p = sigmoid(x) in float64 (inputs
// must keep |x| small enough that p is not 0 or 1).
func refLossBCE(x, t, w []float32, n int) (float64, []float32) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	return refLossPointwise(x, t, w, n,
		func(x, t float64) float64 { p := sig(x); return -(t*math.Log(p) + (1-t)*math.Log(1-p)) },
		func(x, t float64) float64 { return sig(x) - t })
}

// refLossMSE is the mean squared error over all elements.
func refLossMSE(x, t, w []float32, n int) (float64, []float32) {
	return refLossPointwise(x, t, w, n,
		func(x, t float64) float64 { return (x - t) * (x - t) },
		func(x, t float64) float64 { return 2 * (x - t) })
}

// refLossCE is cross-entropy of x (N,C,S...) against class ids target
// (N,S...), skipping targets equal to ignore: for each (n, s)
//
//	l = log(sum_c exp(x[n,c,s])) - x[n,target,s]
//	dl/dx[n,c,s] = softmax(x[n,:,s])[c] - [c == target]
func refLossCE(x []float32, xs kernels.Shape, target, w []float32, ignore int) (float64, []float32) {
	return refLossCESmooth(x, xs, target, w, ignore, 0)
}

// refLossCESmooth is label-smoothed cross-entropy (fastai's
// LabelSmoothingCrossEntropy): per element (1-eps)*(-log p_k) +
// eps/C * sum_c(-log p_c), in the same weighted mean; its gradient is
// p_c - (1-eps)*[c == k] - eps/C. eps 0 is plain cross-entropy.
func refLossCESmooth(x []float32, xs kernels.Shape, target, w []float32, ignore int, eps float64) (float64, []float32) {
	N, C := xs[0], xs[1]
	S := xs.Numel() / (N * C)
	at := func(n, c, s int) int { return (n*C+c)*S + s }
	var num, den float64
	grad := make([]float64, len(x))
	for n := 0; n < N; n++ {
		for s := 0; s < S; s++ {
			k := int(target[n*S+s])
			if k == ignore {
				continue
			}
			m := math.Inf(-1)
			for c := 0; c < C; c++ {
				m = math.Max(m, float64(x[at(n, c, s)]))
			}
			var se float64
			for c := 0; c < C; c++ {
				se += math.Exp(float64(x[at(n, c, s)]) - m)
			}
			lse := m + math.Log(se)
			wn := refLossWeight(w, n)
			var all float64
			for c := 0; c < C; c++ {
				all += lse - float64(x[at(n, c, s)])
			}
			num += wn * ((1-eps)*(lse-float64(x[at(n, k, s)])) + eps/float64(C)*all)
			den += wn
			for c := 0; c < C; c++ {
				g := math.Exp(float64(x[at(n, c, s)])-lse) - eps/float64(C)
				if c == k {
					g -= 1 - eps
				}
				grad[at(n, c, s)] = wn * g
			}
		}
	}
	dx := make([]float32, len(x))
	if den == 0 {
		return 0, dx
	}
	for i, g := range grad {
		dx[i] = float32(g / den)
	}
	return num / den, dx
}
