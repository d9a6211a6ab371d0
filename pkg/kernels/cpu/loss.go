package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// The losses follow PyTorch / fastai (lesson 3: BCEWithLogitsFlat for
// multi-label, CrossEntropyFlat per pixel for segmentation, MSELossFlat for
// points), with one difference the LossOps contract fixes: the optional
// weight is per sample (N), and the reduction is the weighted mean
//
//	loss = sum_e w[n(e)]*l[e] / sum_e w[n(e)]
//
// over the counted elements e (n(e) is e's sample). Without a weight it is
// the plain mean. (PyTorch's BCEWithLogitsLoss(weight=w) divides by the
// element count instead; its CrossEntropyLoss with per-class weights and
// ignore_index divides by the sum of the counted weights, as we do.) When
// nothing counts (every element ignored, or every weight 0) the loss and
// its gradient are 0, where PyTorch gives NaN: a batch of all-Void masks
// must not poison training.
//
// Sums are float64 over fixed blocks of lossBlock values, added in block
// order, so the result does not depend on the thread count.

// lossBlock is about how many input values one block of a loss covers.
const lossBlock = 8192

// lossOut checks that loss holds exactly one value.
func lossOut(op string, loss *kernels.Tensor) ([]float32, error) {
	ld, err := hostOp(op, "loss", loss)
	if err != nil {
		return nil, err
	}
	if len(ld) != 1 {
		return nil, fmt.Errorf("%w: %s: loss has shape %v (want 1 element)", kernels.ErrShape, op, loss.Shape)
	}
	return ld, nil
}

// lossWeights checks weight (nil, or shape (N) with finite values >= 0) and
// returns its values (nil without a weight).
func lossWeights(op string, weight *kernels.Tensor, n int) ([]float32, error) {
	if weight == nil {
		return nil, nil
	}
	if err := kernels.CheckShape(op+": weight", weight, kernels.Shape{n}); err != nil {
		return nil, err
	}
	wd, err := hostOp(op, "weight", weight)
	if err != nil {
		return nil, err
	}
	for i, w := range wd {
		if !(w >= 0) || math.IsInf(float64(w), 1) {
			return nil, fmt.Errorf("%w: %s: weight[%d] = %v (want finite and >= 0)", kernels.ErrParam, op, i, w)
		}
	}
	return wd, nil
}

// pointwise describes a loss that is a function of each (x, target) pair:
// x (N,...) with inner values per sample.
type pointwise struct {
	x, t, w  []float32
	n, inner int
}

// pointwiseArgs checks x, target and weight of BCEWithLogits (same shape)
// or MSE (same element count and first dimension: MSELossFlat flattens).
func pointwiseArgs(op string, x, target, weight *kernels.Tensor, flat bool) (pointwise, error) {
	var pw pointwise
	xd, err := hostOp(op, "x", x)
	if err != nil {
		return pw, err
	}
	if len(x.Shape) == 0 {
		return pw, fmt.Errorf("%w: %s: x is a scalar, shape %v (want (N,...))", kernels.ErrShape, op, x.Shape)
	}
	td, err := hostOp(op, "target", target)
	if err != nil {
		return pw, err
	}
	switch {
	case !flat:
		if err := kernels.CheckShape(op+": target", target, x.Shape); err != nil {
			return pw, err
		}
	case len(target.Shape) == 0 || target.Shape[0] != x.Shape[0] || len(td) != len(xd):
		return pw, fmt.Errorf("%w: %s: target has shape %v (want %d elements in %d samples, as x %v)", kernels.ErrShape, op, target.Shape, len(xd), x.Shape[0], x.Shape)
	}
	n := x.Shape[0]
	wd, err := lossWeights(op, weight, n)
	if err != nil {
		return pw, err
	}
	inner := 0
	if n > 0 {
		inner = len(xd) / n
	}
	return pointwise{x: xd, t: td, w: wd, n: n, inner: inner}, nil
}

// weightOf is w[n], or 1 without a weight.
func weightOf(w []float32, n int) float64 {
	if w == nil {
		return 1
	}
	return float64(w[n])
}

// denominator is sum_e w[n(e)] over all elements.
func (pw pointwise) denominator() float64 {
	if pw.w == nil {
		return float64(pw.n * pw.inner)
	}
	var s float64
	for _, w := range pw.w {
		s += float64(w)
	}
	return s * float64(pw.inner)
}

// pointwiseSum returns sum_e w[n(e)]*f(x[e], t[e]) in float64, over fixed blocks in
// parallel.
func (c *CPU) pointwiseSum(pw pointwise, f func(x, t float64) float64) float64 {
	total := len(pw.x)
	blocks := (total + lossBlock - 1) / lossBlock
	part := make([]float64, blocks)
	c.parallel(blocks, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			var s float64
			for e, end := b*lossBlock, min(total, (b+1)*lossBlock); e < end; {
				n := e / pw.inner
				segEnd := min(end, (n+1)*pw.inner)
				var sn float64
				for ; e < segEnd; e++ {
					sn += f(float64(pw.x[e]), float64(pw.t[e]))
				}
				s += weightOf(pw.w, n) * sn
			}
			part[b] = s
		}
	})
	var s float64
	for _, p := range part {
		s += p
	}
	return s
}

// pointwiseGrad writes dx[e] = coef*w[n(e)]*g(x[e], t[e]) in parallel.
func (c *CPU) pointwiseGrad(dx []float32, pw pointwise, coef float64, g func(x, t float64) float64) {
	c.parallel(len(dx), lossBlock, func(lo, hi int) {
		for e := lo; e < hi; {
			n := e / pw.inner
			segEnd := min(hi, (n+1)*pw.inner)
			k := coef * weightOf(pw.w, n)
			for ; e < segEnd; e++ {
				dx[e] = float32(k * g(float64(pw.x[e]), float64(pw.t[e])))
			}
		}
	})
}

// bceElem is -[t*log(sigmoid(x)) + (1-t)*log(1-sigmoid(x))] in the stable
// form max(x,0) - x*t + log1p(exp(-|x|)).
func bceElem(x, t float64) float64 {
	return math.Max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
}

// sigmoid64 is 1/(1+exp(-x)) without overflow for either sign.
func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// BCEWithLogits implements kernels.LossOps: x and target (N,...),
//
//	loss = sum_{n,j} w[n]*(max(x,0) - x*t + log1p(exp(-|x|))) / sum_{n,j} w[n]
//
// (w = 1 without a weight: the mean over all elements).
func (c *CPU) BCEWithLogits(loss, x, target, weight *kernels.Tensor) error {
	return c.pointwiseLoss("bce_with_logits", loss, x, target, weight, false, bceElem)
}

// BCEWithLogitsBackward implements kernels.LossOps:
// dx = scale * w[n]*(sigmoid(x) - t) / sum_{n,j} w[n].
func (c *CPU) BCEWithLogitsBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return c.pointwiseLossBackward("bce_with_logits backward", dx, x, target, weight, false, float64(scale),
		func(x, t float64) float64 { return sigmoid64(x) - t })
}

// MSE implements kernels.LossOps (MSELossFlat): x (N,...) and target with
// the same number of elements and samples,
//
//	loss = sum_{n,j} w[n]*(x-t)^2 / sum_{n,j} w[n].
func (c *CPU) MSE(loss, x, target, weight *kernels.Tensor) error {
	return c.pointwiseLoss("mse", loss, x, target, weight, true, func(x, t float64) float64 { return (x - t) * (x - t) })
}

// MSEBackward implements kernels.LossOps:
// dx = scale * 2*w[n]*(x - t) / sum_{n,j} w[n].
func (c *CPU) MSEBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return c.pointwiseLossBackward("mse backward", dx, x, target, weight, true, 2*float64(scale),
		func(x, t float64) float64 { return x - t })
}

// pointwiseLoss writes loss = sum_{n,j} w[n]*elem(x,t) / sum_{n,j} w[n]
// (0 when the weights sum to 0); sameCount as in pointwiseArgs.
func (c *CPU) pointwiseLoss(op string, loss, x, target, weight *kernels.Tensor, sameCount bool, elem func(x, t float64) float64) error {
	ld, err := lossOut(op, loss)
	if err != nil {
		return err
	}
	pw, err := pointwiseArgs(op, x, target, weight, sameCount)
	if err != nil {
		return err
	}
	den := pw.denominator()
	if den == 0 {
		ld[0] = 0
		return nil
	}
	ld[0] = float32(c.pointwiseSum(pw, elem) / den)
	return nil
}

// pointwiseLossBackward writes dx = factor * w[n]*grad(x,t) / sum_{n,j} w[n]
// (0 when the weights sum to 0); nothing when dx is nil.
func (c *CPU) pointwiseLossBackward(op string, dx, x, target, weight *kernels.Tensor, sameCount bool, factor float64, grad func(x, t float64) float64) error {
	if dx == nil {
		return nil
	}
	pw, err := pointwiseArgs(op, x, target, weight, sameCount)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape(op+": dx", dx, x.Shape); err != nil {
		return err
	}
	dd, err := hostOp(op, "dx", dx)
	if err != nil {
		return err
	}
	coef := 0.0
	if den := pw.denominator(); den != 0 {
		coef = factor / den
	}
	c.pointwiseGrad(dd, pw, coef, grad)
	return nil
}

// ceArgs are CrossEntropy's checked operands: x is (N,C,S...) viewed as
// (N,C,S) with S the product of the spatial extents (1 for (N,C)), and
// cls[e] the class of element e = n*S+s, or -1 where it is ignored.
type ceArgs struct {
	x        []float32
	w        []float32
	cls      []int32
	n, c, s  int
	den      float64 // sum of w[n(e)] over the counted elements
	elements int     // N*S
}

// ceCheck checks CrossEntropy's operands and reads the targets: each must
// be ignoreIndex or an integer class id in [0, C).
func ceCheck(op string, x, target, weight *kernels.Tensor, ignoreIndex int) (ceArgs, error) {
	var a ceArgs
	xd, err := hostOp(op, "x", x)
	if err != nil {
		return a, err
	}
	if len(x.Shape) < 2 {
		return a, fmt.Errorf("%w: %s: x has shape %v (want (N,C) or (N,C,H,W))", kernels.ErrShape, op, x.Shape)
	}
	ts := append(kernels.Shape{x.Shape[0]}, x.Shape[2:]...)
	if err := kernels.CheckShape(op+": target", target, ts); err != nil {
		return a, err
	}
	td, err := hostOp(op, "target", target)
	if err != nil {
		return a, err
	}
	a = ceArgs{x: xd, n: x.Shape[0], c: x.Shape[1], elements: len(td)}
	if a.n > 0 {
		a.s = len(td) / a.n
	}
	if a.w, err = lossWeights(op, weight, a.n); err != nil {
		return a, err
	}
	a.cls = make([]int32, len(td))
	for e, t := range td {
		k := int(t)
		switch {
		case float32(k) != t: // NaN, ±Inf, fractions, beyond int range
			return a, fmt.Errorf("%w: %s: target[%d] = %v is not an integer class id (want 0..%d, or the ignore index %d)", kernels.ErrParam, op, e, t, a.c-1, ignoreIndex)
		case k == ignoreIndex:
			a.cls[e] = -1
		case k < 0 || k >= a.c:
			return a, fmt.Errorf("%w: %s: target[%d] = %v is out of range (want 0..%d, or the ignore index %d)", kernels.ErrParam, op, e, t, a.c-1, ignoreIndex)
		default:
			a.cls[e] = int32(k)
			a.den += weightOf(a.w, e/a.s)
		}
	}
	return a, nil
}

// ceTile is the most elements (spatial positions) one pass over the classes
// handles together.
const ceTile = 256

// blockLen is how many elements (of N*S) one block holds: about lossBlock
// logits, at most ceTile elements.
func (a ceArgs) blockLen() int { return max(1, min(ceTile, lossBlock/max(1, a.c))) }

// logSumExp computes, for elements e in [e0, e0+len(lse)) of one sample n
// (positions s0.. in its plane), lse[j] = log(sum_c exp(x[n,c,s0+j])),
// as max + log(sum exp(x - max)) in float64.
func (a ceArgs) logSumExp(lse []float64, n, s0 int) {
	m := lse // the maxima first, then replaced by lse
	for j := range m {
		m[j] = math.Inf(-1)
	}
	var sum [ceTile]float64
	se := sum[:len(lse)]
	for c := range a.c {
		row := a.x[(n*a.c+c)*a.s+s0:][:len(m)]
		for j, v := range row {
			m[j] = math.Max(m[j], float64(v))
		}
	}
	for c := range a.c {
		row := a.x[(n*a.c+c)*a.s+s0:][:len(m)]
		for j, v := range row {
			se[j] += math.Exp(float64(v) - m[j])
		}
	}
	for j := range lse {
		lse[j] = m[j] + math.Log(se[j])
	}
}

// forSegments runs fn over the elements of blocks [blo, bhi), cut where
// the sample changes: fn(b, n, s0, s1) covers positions [s0, s1) of sample
// n, inside block b.
func (a ceArgs) forSegments(blo, bhi int, fn func(b, n, s0, s1 int)) {
	bl := a.blockLen()
	for b := blo; b < bhi; b++ {
		for e, end := b*bl, min(a.elements, (b+1)*bl); e < end; {
			n, s := e/a.s, e%a.s
			s1 := min(a.s, s+(end-e))
			fn(b, n, s, s1)
			e += s1 - s
		}
	}
}

// CrossEntropy implements kernels.LossOps: x (N,C) or (N,C,H,W) logits,
// target (N) or (N,H,W) class ids. It equals the plain loop
//
//	for n, s: k = target[n,s]; if k == ignoreIndex: continue
//	  lse = log(sum_c exp(x[n,c,s]))      (stably: max + log sum exp(x-max))
//	  num += w[n]*(lse - x[n,k,s]); den += w[n]
//	loss = num/den (0 if den == 0)
//
// A target that is neither ignoreIndex nor an integer in [0, C) is an error
// naming it. (Any rank >= 2 works: x (N,C,d1..dk) with target (N,d1..dk).)
func (c *CPU) CrossEntropy(loss, x, target, weight *kernels.Tensor, ignoreIndex int) error {
	return c.CrossEntropySmooth(loss, x, target, weight, ignoreIndex, 0)
}

// CrossEntropySmooth implements kernels.LabelSmoothingOps: CrossEntropy
// against the smoothed target (1-eps)*onehot(k) + eps/C (fastai's
// LabelSmoothingCrossEntropy), per counted element
//
//	(1-eps)*(lse - x[k]) + eps*mean_c(lse - x[c]) = lse - (1-eps)*x[k] - eps/C*sum_c x[c]
//
// eps 0 is CrossEntropy.
func (c *CPU) CrossEntropySmooth(loss, x, target, weight *kernels.Tensor, ignoreIndex int, eps float32) error {
	const op = "cross_entropy"
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("%w: %s: label smoothing %v (want 0 <= eps < 1)", kernels.ErrParam, op, eps)
	}
	ld, err := lossOut(op, loss)
	if err != nil {
		return err
	}
	a, err := ceCheck(op, x, target, weight, ignoreIndex)
	if err != nil {
		return err
	}
	if a.den == 0 {
		ld[0] = 0
		return nil
	}
	e := float64(eps)
	bl := a.blockLen()
	blocks := (a.elements + bl - 1) / bl
	part := make([]float64, blocks)
	c.parallel(blocks, 1, func(lo, hi int) {
		var buf [ceTile]float64
		a.forSegments(lo, hi, func(b, n, s0, s1 int) {
			lse := buf[:s1-s0]
			a.logSumExp(lse, n, s0)
			var sn float64
			for j := range lse {
				k := a.cls[n*a.s+s0+j]
				if k < 0 {
					continue
				}
				sn += lse[j] - (1-e)*float64(a.x[(n*a.c+int(k))*a.s+s0+j])
			}
			if e != 0 {
				for ci := range a.c {
					row := a.x[(n*a.c+ci)*a.s+s0:][:len(lse)]
					for j, v := range row {
						if a.cls[n*a.s+s0+j] >= 0 {
							sn -= e / float64(a.c) * float64(v)
						}
					}
				}
			}
			part[b] += weightOf(a.w, n) * sn
		})
	})
	var num float64
	for _, p := range part {
		num += p
	}
	ld[0] = float32(num / a.den)
	return nil
}

// CrossEntropyBackward implements kernels.LossOps:
//
//	dx[n,c,s] = scale * w[n]/den * (softmax(x[n,:,s])[c] - [c == k])
//
// and 0 for ignored elements (all of dx when nothing counts).
func (c *CPU) CrossEntropyBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, scale float32) error {
	return c.CrossEntropySmoothBackward(dx, x, target, weight, ignoreIndex, 0, scale)
}

// CrossEntropySmoothBackward implements kernels.LabelSmoothingOps:
//
//	dx[n,c,s] = scale * w[n]/den * (softmax(x[n,:,s])[c] - (1-eps)*[c == k] - eps/C)
func (c *CPU) CrossEntropySmoothBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, eps, scale float32) error {
	const op = "cross_entropy backward"
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("%w: %s: label smoothing %v (want 0 <= eps < 1)", kernels.ErrParam, op, eps)
	}
	if dx == nil {
		return nil
	}
	a, err := ceCheck(op, x, target, weight, ignoreIndex)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape(op+": dx", dx, x.Shape); err != nil {
		return err
	}
	dd, err := hostOp(op, "dx", dx)
	if err != nil {
		return err
	}
	coef := 0.0
	if a.den != 0 {
		coef = float64(scale) / a.den
	}
	spread, hit := float64(eps)/float64(a.c), 1-float64(eps) // the smoothed target
	bl := a.blockLen()
	blocks := (a.elements + bl - 1) / bl
	c.parallel(blocks, 1, func(lo, hi int) {
		var buf, kk [ceTile]float64
		a.forSegments(lo, hi, func(_, n, s0, s1 int) {
			lse, k := buf[:s1-s0], kk[:s1-s0]
			a.logSumExp(lse, n, s0)
			wn := coef * weightOf(a.w, n)
			for j := range k {
				k[j] = wn
				if a.cls[n*a.s+s0+j] < 0 {
					k[j] = 0
				}
			}
			for ci := range a.c {
				off := (n*a.c+ci)*a.s + s0
				row, out := a.x[off:off+len(lse)], dd[off:off+len(lse)]
				for j, v := range row {
					g := math.Exp(float64(v)-lse[j]) - spread
					if int(a.cls[n*a.s+s0+j]) == ci {
						g -= hit
					}
					out[j] = float32(k[j] * g)
				}
			}
		})
	})
	return nil
}
