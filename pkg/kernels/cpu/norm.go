package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// bnGeom checks x (N,C,...) and the per-channel tensors, returning N, C and
// the spatial size S.
func bnGeom(op string, x *kernels.Tensor, ch ...*kernels.Tensor) (n, c, s int, err error) {
	if len(x.Shape) < 2 {
		return 0, 0, 0, fmt.Errorf("%w: %s: x is %v (want rank >= 2, (N,C,...))", kernels.ErrShape, op, x.Shape)
	}
	n, c = x.Shape[0], x.Shape[1]
	s = x.Numel() / max(1, n*c)
	for _, t := range ch {
		if t != nil && (len(t.Data) != c || t.Numel() != c) {
			return 0, 0, 0, fmt.Errorf("%w: %s: per-channel tensor is %v (want (%d))", kernels.ErrShape, op, t.Shape, c)
		}
	}
	return n, c, s, nil
}

// BatchNormInference implements kernels.NormOps. It equals
//
//	for n, c, i: y[n,c,i] = scale[c]*(x[n,c,i]-mean[c])/sqrt(var[c]+eps) + bias[c]
//
// computed as one multiply-add per element with per-channel coefficients.
func (c *CPU) BatchNormInference(y, x, scale, bias, mean, variance *kernels.Tensor, eps float32) error {
	d, err := sameSize("batchnorm", []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	n, ch, s, err := bnGeom("batchnorm", x, scale, bias, mean, variance)
	if err != nil {
		return err
	}
	if scale == nil || bias == nil || mean == nil || variance == nil {
		return fmt.Errorf("%w: batchnorm: scale, bias, mean and variance are required", kernels.ErrShape)
	}
	xd, yd := d[0], d[1]
	parallelFor(c, n*ch, planeGrain(s), bnPlanes{x: xd, y: yd, sc: scale.Data, bi: bias.Data, mu: mean.Data, va: variance.Data, eps: eps, ch: ch, s: s})
	return nil
}

// bnPlanes is BatchNormInference's loop over planes [lo,hi).
type bnPlanes struct {
	x, y, sc, bi, mu, va []float32
	eps                  float32
	ch, s                int
}

func (q *bnPlanes) run(lo, hi int) {
	sc, bi, mu, va, ch, s := q.sc, q.bi, q.mu, q.va, q.ch, q.s
	for p := lo; p < hi; p++ {
		k := p % ch
		a := sc[k] / float32(math.Sqrt(float64(va[k])+float64(q.eps)))
		b := bi[k] - mu[k]*a
		xs, ys := q.x[p*s:(p+1)*s], q.y[p*s:(p+1)*s]
		for i, v := range xs {
			ys[i] = v*a + b
		}
	}
}

// BatchNormTraining implements kernels.NormOps: normalise with the batch
// mean and biased variance, save mean and 1/sqrt(var+eps), and update the
// running statistics with the unbiased variance (ONNX/PyTorch).
func (c *CPU) BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return c.bnTraining("batchnorm training", y, x, scale, bias, runMean, runVar, saveMean, saveInvStd, eps, momentum, false)
}

// BatchNormTrainingRelu implements kernels.FusedBNReluOps:
// BatchNormTraining with y = Relu(y) applied as y is written.
func (c *CPU) BatchNormTrainingRelu(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return c.bnTraining("batchnorm+relu training", y, x, scale, bias, runMean, runVar, saveMean, saveInvStd, eps, momentum, true)
}

func (c *CPU) bnTraining(op string, y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32, relu bool) error {
	d, err := sameSize(op, []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	n, ch, s, err := bnGeom(op, x, scale, bias, runMean, runVar, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || bias == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: %s: scale, bias, saveMean and saveInvStd are required", kernels.ErrShape, op)
	}
	if n*s < 2 {
		return fmt.Errorf("%w: %s: %d values per channel in x %v (want >= 2)", kernels.ErrShape, op, n*s, x.Shape)
	}
	// Per channel k (C, bnChannel), in parallel over channels:
	//	mean, var: float64, two passes (the mean, then squared deviations,
	//	so a large offset does not cancel digits)
	//	save mean, 1/sqrt(var+eps); update the running statistics
	//	y = x*a + b with a = scale*invstd, b = bias - mean*a (float32)
	parallelFor(c, ch, 1, bnTrain{g: bnChannel{n: n, ch: ch, s: s}, x: d[0], y: d[1], sc: scale.Data, bi: bias.Data,
		sm: saveMean.Data, si: saveInvStd.Data, rm: dataOrNil(runMean), rv: dataOrNil(runVar), eps: eps, mom: momentum, relu: relu})
	return nil
}

func dataOrNil(t *kernels.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.Data
}

// bnTrain is BatchNormTraining's loop over channels [lo,hi).
type bnTrain struct {
	g                            bnChannel
	x, y, sc, bi, sm, si, rm, rv []float32
	eps, mom                     float32
	relu                         bool // then y = Relu(y)
}

func (b *bnTrain) run(lo, hi int) {
	m := float64(b.g.n * b.g.s)
	for k := lo; k < hi; k++ {
		mean, varc := b.g.stats(b.x, k)
		inv := 1 / math.Sqrt(varc+float64(b.eps))
		b.sm[k], b.si[k] = float32(mean), float32(inv)
		if b.rm != nil {
			b.rm[k] = b.rm[k]*b.mom + float32(mean)*(1-b.mom)
		}
		if b.rv != nil {
			b.rv[k] = b.rv[k]*b.mom + float32(varc*m/(m-1))*(1-b.mom)
		}
		a := b.sc[k] * b.si[k]
		b.g.affine(b.x, b.y, k, a, b.bi[k]-b.sm[k]*a, b.relu)
	}
}

// BatchNormBackward implements kernels.NormOps for the training-mode
// forward: with xhat = (x-mean)*invstd and M = N*S values per channel,
//
//	dbias[c]  = sum dy
//	dscale[c] = sum dy*xhat
//	dx        = scale*invstd/M * (M*dy - dbias - xhat*dscale)
//
// (the last one evaluated as a per-channel a*dy + b*x + c).
func (c *CPU) BatchNormBackward(dx, dscale, dbias, dy, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	return c.bnBackward("batchnorm backward", dx, dscale, dbias, dy, nil, x, scale, saveMean, saveInvStd)
}

// BatchNormBackwardRelu implements kernels.FusedBNReluOps: BatchNormBackward
// of dy read as (y > 0 ? dy : 0), y being BatchNormTrainingRelu's output:
// the same values the Relu's backward then BatchNormBackward would give.
func (c *CPU) BatchNormBackwardRelu(dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	if y == nil {
		return fmt.Errorf("%w: batchnorm+relu backward: y is required", kernels.ErrShape)
	}
	return c.bnBackward("batchnorm+relu backward", dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd)
}

// bnBackward is BatchNormBackward, with dy masked by y > 0 when y is not
// nil.
func (c *CPU) bnBackward(op string, dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	d, err := sameSize(op, []string{"x", "dy"}, x, dy)
	if err != nil {
		return err
	}
	n, ch, s, err := bnGeom(op, x, dscale, dbias, scale, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: %s: scale, saveMean and saveInvStd are required", kernels.ErrShape, op)
	}
	if dx != nil {
		if _, err := sameSize(op, []string{"x", "dx"}, x, dx); err != nil {
			return err
		}
	}
	var yd []float32
	if y != nil {
		m, err := sameSize(op, []string{"x", "y"}, x, y)
		if err != nil {
			return err
		}
		yd = m[1]
	}
	xd, dyd := d[0], d[1]
	m := float64(n * s)
	bc := bnChannel{n: n, ch: ch, s: s}
	c.parallel(ch, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			mu, inv := float64(saveMean.Data[k]), float64(saveInvStd.Data[k])
			sdy, sdyx := bc.gradSums(dyd, yd, xd, k, mu) // C: float64 sums in a fixed order
			sdyx *= inv
			if dbias != nil {
				dbias.Data[k] = float32(sdy)
			}
			if dscale != nil {
				dscale.Data[k] = float32(sdyx)
			}
			if dx == nil {
				continue
			}
			// dx = a*dy + b*x + c0 in float32, with the per-channel
			// coefficients folded in float64:
			// a = scale*invstd, b = -a*invstd*dscale/M,
			// c0 = -a*dbias/M - b*mean.
			a := float64(scale.Data[k]) * inv
			bb := -a * inv * sdyx / m
			c0 := -a*sdy/m - bb*mu
			bc.inputGrad(dyd, yd, xd, dx.Data, k, float32(a), float32(bb), float32(c0))
		}
	})
	return nil
}
