//go:build cuda

package cuda

import (
	"fmt"
	"math"

	"gorgonia.org/cu"

	"vireo/pkg/kernels"
)

var _ kernels.LabelSmoothingOps = (*Backend)(nil)

// The losses check their operands as the CPU backend does, before any
// launch. Per-sample weights and cross-entropy targets are validated
// (finite weights >= 0; integer class ids in range or the ignore index),
// so they are downloaded first: one small device-to-host copy per call,
// which also waits for the kernels queued before. The denominator (the
// sum of the counted weights) is then computed on the host in the CPU
// backend's order, and the numerator on the device in double (loss.cu).

// loss.cu's kinds of point-wise loss.
const (
	lossBCE = 0
	lossMSE = 1
)

// maxPartials bounds the blocks of a loss's first pass.
const maxPartials = 1024

// partials returns a device buffer of n float64s for a loss's partial
// sums; it runs on the owner goroutine (growing it waits for queued
// kernels).
func (b *Backend) partials(n int) (cu.DevicePtr, error) {
	bytes := int64(8 * n)
	if bytes > b.partial.bytes {
		if b.partial.ptr != 0 {
			if err := cu.Synchronize(); err != nil {
				return 0, fmt.Errorf("cuda: synchronize before growing the partial sums: %w", err)
			}
			if err := cu.MemFree(b.partial.ptr); err != nil {
				return 0, fmt.Errorf("cuda: free partial sums: %w", err)
			}
			b.partial = devBuf{}
		}
		size := max(bytes, 8*maxPartials)
		p, err := cu.MemAlloc(size)
		if err != nil {
			return 0, fmt.Errorf("cuda: partial sums of %d bytes: %w", size, err)
		}
		b.partial = devBuf{ptr: p, bytes: size}
	}
	return b.partial.ptr, nil
}

// chunking splits total items into at most maxPartials blocks of chunk
// items (at least minChunk each).
func chunking(total, minChunk int) (chunk, blocks int) {
	chunk = max(minChunk, (total+maxPartials-1)/maxPartials)
	return chunk, (total + chunk - 1) / chunk
}

// finishLoss queues loss_finish over blocks partials; it runs on the
// owner goroutine.
func (b *Backend) finishLoss(loss any, part cu.DevicePtr, blocks int, den float64) error {
	return b.launchGrid("loss_finish", [3]int{1, 1, 1}, sumThreads, loss, part, int64(blocks), math.Float64bits(den))
}

// lossOutCheck checks that loss holds exactly one value.
func lossOutCheck(op string, loss *kernels.Tensor) error {
	if loss == nil {
		return fmt.Errorf("%w: %s: loss is nil", kernels.ErrShape, op)
	}
	if loss.Numel() != 1 {
		return fmt.Errorf("%w: %s: loss has shape %v (want 1 element)", kernels.ErrShape, op, loss.Shape)
	}
	return nil
}

// lossWeights checks weight (nil, or shape (N) with finite values >= 0)
// and returns its values (nil without a weight).
func (b *Backend) lossWeights(op string, weight *kernels.Tensor, n int) ([]float32, error) {
	if weight == nil {
		return nil, nil
	}
	if err := kernels.CheckShape(op+": weight", weight, kernels.Shape{n}); err != nil {
		return nil, err
	}
	wd := make([]float32, n)
	if err := b.Download(wd, weight); err != nil {
		return nil, fmt.Errorf("%s: weight: %w", op, err)
	}
	for i, w := range wd {
		if !(w >= 0) || math.IsInf(float64(w), 1) {
			return nil, fmt.Errorf("%w: %s: weight[%d] = %v (want finite and >= 0)", kernels.ErrParam, op, i, w)
		}
	}
	return wd, nil
}

// pointwise is a checked BCE or MSE call: N samples of inner values each
// and the denominator sum_e w[n(e)].
type pointwise struct {
	n, inner int
	den      float64
}

// pointwiseCheck checks x, target and weight of BCEWithLogits (same
// shape) or MSE (flat: same element count and first dimension).
func (b *Backend) pointwiseCheck(op string, x, target, weight *kernels.Tensor, flat bool) (pointwise, error) {
	var pw pointwise
	if x == nil {
		return pw, fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	if len(x.Shape) == 0 {
		return pw, fmt.Errorf("%w: %s: x is a scalar, shape %v (want (N,...))", kernels.ErrShape, op, x.Shape)
	}
	if target == nil {
		return pw, fmt.Errorf("%w: %s: target is nil", kernels.ErrShape, op)
	}
	switch {
	case !flat:
		if err := kernels.CheckShape(op+": target", target, x.Shape); err != nil {
			return pw, err
		}
	case len(target.Shape) == 0 || target.Shape[0] != x.Shape[0] || target.Numel() != x.Numel():
		return pw, fmt.Errorf("%w: %s: target has shape %v (want %d elements in %d samples, as x %v)", kernels.ErrShape, op, target.Shape, x.Numel(), x.Shape[0], x.Shape)
	}
	pw.n = x.Shape[0]
	wd, err := b.lossWeights(op, weight, pw.n)
	if err != nil {
		return pw, err
	}
	if pw.n > 0 {
		pw.inner = x.Numel() / pw.n
	}
	if wd == nil {
		pw.den = float64(pw.n * pw.inner)
	} else {
		var s float64
		for _, w := range wd {
			s += float64(w)
		}
		pw.den = s * float64(pw.inner)
	}
	return pw, nil
}

// pointwiseLoss queues loss = sum_e w[n(e)]*f(x[e],t[e]) / den.
func (b *Backend) pointwiseLoss(op string, loss, x, target, weight *kernels.Tensor, kind int64, flat bool) error {
	if err := lossOutCheck(op, loss); err != nil {
		return err
	}
	pw, err := b.pointwiseCheck(op, x, target, weight, flat)
	if err != nil {
		return err
	}
	total := x.Numel()
	chunk, blocks := chunking(total, 4096)
	return b.do(func() error {
		p, err := b.addrs(op, []string{"loss", "x", "target"}, loss, x, target)
		if err != nil {
			return err
		}
		pwt, err := b.optAddr(op+": weight", weight)
		if err != nil {
			return err
		}
		if pw.den == 0 {
			return zero(p[0].(cu.DevicePtr), 1)
		}
		part, err := b.partials(blocks)
		if err != nil {
			return err
		}
		if err := b.launchGrid("loss_part", [3]int{blocks, 1, 1}, sumThreads, part, p[1], p[2], pwt,
			int64(total), int64(pw.inner), int64(chunk), kind); err != nil {
			return err
		}
		return b.finishLoss(p[0], part, blocks, pw.den)
	})
}

// pointwiseGrad queues dx = coef*w[n(e)]*g(x[e],t[e]) with coef =
// mult*scale/den (0 when den is 0).
func (b *Backend) pointwiseGrad(op string, dx, x, target, weight *kernels.Tensor, scale float32, kind int64, flat bool, mult float64) error {
	if dx == nil {
		return nil
	}
	pw, err := b.pointwiseCheck(op, x, target, weight, flat)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape(op+": dx", dx, x.Shape); err != nil {
		return err
	}
	coef := 0.0
	if pw.den != 0 {
		coef = mult * float64(scale) / pw.den
	}
	total := int64(x.Numel())
	return b.do(func() error {
		p, err := b.addrs(op, []string{"dx", "x", "target"}, dx, x, target)
		if err != nil {
			return err
		}
		pwt, err := b.optAddr(op+": weight", weight)
		if err != nil {
			return err
		}
		return b.launch("loss_grad", total, p[0], p[1], p[2], pwt, total, int64(max(1, pw.inner)), kind, math.Float64bits(coef))
	})
}

// BCEWithLogits implements kernels.LossOps: the (weighted) mean of
// max(x,0) - x*t + log1p(exp(-|x|)).
func (b *Backend) BCEWithLogits(loss, x, target, weight *kernels.Tensor) error {
	return b.pointwiseLoss("bce_with_logits", loss, x, target, weight, lossBCE, false)
}

// BCEWithLogitsBackward implements kernels.LossOps:
// dx = scale * w[n]*(sigmoid(x) - t) / sum_e w[n(e)].
func (b *Backend) BCEWithLogitsBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return b.pointwiseGrad("bce_with_logits backward", dx, x, target, weight, scale, lossBCE, false, 1)
}

// MSE implements kernels.LossOps (MSELossFlat): the (weighted) mean of
// (x-t)^2.
func (b *Backend) MSE(loss, x, target, weight *kernels.Tensor) error {
	return b.pointwiseLoss("mse", loss, x, target, weight, lossMSE, true)
}

// MSEBackward implements kernels.LossOps:
// dx = scale * 2*w[n]*(x - t) / sum_e w[n(e)].
func (b *Backend) MSEBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return b.pointwiseGrad("mse backward", dx, x, target, weight, scale, lossMSE, true, 2)
}

// ceArgs is a checked cross-entropy call: x (N,C,S...) viewed as (N,C,S)
// and the denominator, the sum of w[n] over the counted elements.
type ceArgs struct {
	n, c, s  int
	elements int
	den      float64
}

// ceCheck checks CrossEntropy's operands and validates the targets on the
// host: each must be ignoreIndex or an integer class id in [0, C).
func (b *Backend) ceCheck(op string, x, target, weight *kernels.Tensor, ignoreIndex int) (ceArgs, error) {
	var a ceArgs
	if x == nil {
		return a, fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	if len(x.Shape) < 2 {
		return a, fmt.Errorf("%w: %s: x has shape %v (want (N,C) or (N,C,H,W))", kernels.ErrShape, op, x.Shape)
	}
	ts := append(kernels.Shape{x.Shape[0]}, x.Shape[2:]...)
	if err := kernels.CheckShape(op+": target", target, ts); err != nil {
		return a, err
	}
	a = ceArgs{n: x.Shape[0], c: x.Shape[1], elements: target.Numel()}
	if a.n > 0 {
		a.s = a.elements / a.n
	}
	wd, err := b.lossWeights(op, weight, a.n)
	if err != nil {
		return a, err
	}
	td := make([]float32, a.elements)
	if err := b.Download(td, target); err != nil {
		return a, fmt.Errorf("%s: target: %w", op, err)
	}
	for e, t := range td {
		k := int(t)
		switch {
		case float32(k) != t: // NaN, ±Inf, fractions, beyond int range
			return a, fmt.Errorf("%w: %s: target[%d] = %v is not an integer class id (want 0..%d, or the ignore index %d)", kernels.ErrParam, op, e, t, a.c-1, ignoreIndex)
		case k == ignoreIndex:
		case k < 0 || k >= a.c:
			return a, fmt.Errorf("%w: %s: target[%d] = %v is out of range (want 0..%d, or the ignore index %d)", kernels.ErrParam, op, e, t, a.c-1, ignoreIndex)
		default:
			if wd == nil {
				a.den++
			} else {
				a.den += float64(wd[e/a.s])
			}
		}
	}
	return a, nil
}

// CrossEntropy implements kernels.LossOps (CrossEntropySmooth with eps 0).
func (b *Backend) CrossEntropy(loss, x, target, weight *kernels.Tensor, ignoreIndex int) error {
	return b.CrossEntropySmooth(loss, x, target, weight, ignoreIndex, 0)
}

// CrossEntropySmooth implements kernels.LabelSmoothingOps: per counted
// element, weighted by w[n], lse - (1-eps)*x[k] - eps/C*sum_c x[c]
// (lse in double), summed in double and divided by the counted weights.
func (b *Backend) CrossEntropySmooth(loss, x, target, weight *kernels.Tensor, ignoreIndex int, eps float32) error {
	const op = "cross_entropy"
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("%w: %s: label smoothing %v (want 0 <= eps < 1)", kernels.ErrParam, op, eps)
	}
	if err := lossOutCheck(op, loss); err != nil {
		return err
	}
	a, err := b.ceCheck(op, x, target, weight, ignoreIndex)
	if err != nil {
		return err
	}
	chunk, blocks := chunking(a.elements, sumThreads)
	return b.do(func() error {
		p, err := b.addrs(op, []string{"loss", "x", "target"}, loss, x, target)
		if err != nil {
			return err
		}
		pw, err := b.optAddr(op+": weight", weight)
		if err != nil {
			return err
		}
		if a.den == 0 {
			return zero(p[0].(cu.DevicePtr), 1)
		}
		part, err := b.partials(blocks)
		if err != nil {
			return err
		}
		if err := b.launchGrid("ce_part", [3]int{blocks, 1, 1}, sumThreads, part, p[1], p[2], pw,
			int64(a.elements), int64(a.c), int64(a.s), int64(chunk), int64(ignoreIndex), math.Float64bits(float64(eps))); err != nil {
			return err
		}
		return b.finishLoss(p[0], part, blocks, a.den)
	})
}

// CrossEntropyBackward implements kernels.LossOps.
func (b *Backend) CrossEntropyBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, scale float32) error {
	return b.CrossEntropySmoothBackward(dx, x, target, weight, ignoreIndex, 0, scale)
}

// CrossEntropySmoothBackward implements kernels.LabelSmoothingOps:
//
//	dx[n,c,s] = scale * w[n]/den * (softmax(x[n,:,s])[c] - (1-eps)*[c == k] - eps/C)
//
// and 0 for ignored elements, one thread per element (loss.cu's ce_grad).
func (b *Backend) CrossEntropySmoothBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, eps, scale float32) error {
	const op = "cross_entropy backward"
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("%w: %s: label smoothing %v (want 0 <= eps < 1)", kernels.ErrParam, op, eps)
	}
	if dx == nil {
		return nil
	}
	a, err := b.ceCheck(op, x, target, weight, ignoreIndex)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape(op+": dx", dx, x.Shape); err != nil {
		return err
	}
	coef := 0.0
	if a.den != 0 {
		coef = float64(scale) / a.den
	}
	return b.do(func() error {
		p, err := b.addrs(op, []string{"dx", "x", "target"}, dx, x, target)
		if err != nil {
			return err
		}
		pw, err := b.optAddr(op+": weight", weight)
		if err != nil {
			return err
		}
		return b.launch("ce_grad", int64(a.elements), p[0], p[1], p[2], pw, int64(a.elements), int64(a.c), int64(max(1, a.s)),
			int64(ignoreIndex), math.Float64bits(float64(eps)), math.Float64bits(coef))
	})
}

// optimCheck checks that grad and each state tensor that is not nil have
// param's shape.
func optimCheck(op string, param, grad *kernels.Tensor, names []string, state ...*kernels.Tensor) error {
	if param == nil {
		return fmt.Errorf("%w: %s: param is nil", kernels.ErrShape, op)
	}
	if err := kernels.CheckShape(op+": grad", grad, param.Shape); err != nil {
		return err
	}
	for i, t := range state {
		if t == nil {
			continue
		}
		if err := kernels.CheckShape(op+": "+names[i], t, param.Shape); err != nil {
			return err
		}
	}
	return nil
}

// SGDStep implements kernels.OptimOps as the CPU backend (PyTorch SGD,
// dampening 0, not Nesterov), in float32 without contractions:
//
//	d = g + wd*p; v = momentum*v + d (d = d + momentum*v); p -= lr*d
func (b *Backend) SGDStep(param, grad, velocity *kernels.Tensor, p kernels.SGDParams) error {
	const op = "sgd"
	if err := p.Check(op); err != nil {
		return err
	}
	if err := optimCheck(op, param, grad, []string{"velocity"}, velocity); err != nil {
		return err
	}
	if velocity == nil && p.Momentum != 0 {
		return fmt.Errorf("%w: %s: velocity is nil with Momentum=%v (want a velocity tensor of shape %v)", kernels.ErrParam, op, p.Momentum, param.Shape)
	}
	n := int64(param.Numel())
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"param", "grad"}, param, grad)
		if err != nil {
			return err
		}
		pv, err := b.optAddr(op+": velocity", velocity)
		if err != nil {
			return err
		}
		return b.launch("sgd_step", n, ps[0], ps[1], pv, n, p.LR, p.Momentum, p.WeightDecay)
	})
}

// AdamWStep implements kernels.OptimOps as the CPU backend (PyTorch
// AdamW): the bias corrections in float64 on the host, the element loop
// in float32 in the CPU backend's order without contractions.
func (b *Backend) AdamWStep(param, grad, m, v *kernels.Tensor, p kernels.AdamWParams) error {
	const op = "adamw"
	if err := p.Check(op); err != nil {
		return err
	}
	if err := optimCheck(op, param, grad, []string{"m", "v"}, m, v); err != nil {
		return err
	}
	if m == nil || v == nil {
		return fmt.Errorf("%w: %s: m or v is nil (want both, shape %v)", kernels.ErrParam, op, param.Shape)
	}
	stepSize, invSqrtBC2, decay := p.Factors()
	n := int64(param.Numel())
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"param", "grad", "m", "v"}, param, grad, m, v)
		if err != nil {
			return err
		}
		return b.launch("adamw_step", n, ps[0], ps[1], ps[2], ps[3], n, p.Beta1, p.Beta2, p.Eps, stepSize, invSqrtBC2, decay)
	})
}
