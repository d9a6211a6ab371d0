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

// bnStats computes per-channel batch mean and biased variance in float64
// (two passes: the mean, then squared deviations, so a large offset does
// not cancel digits), parallel over channels.
func (c *CPU) bnStats(xd []float32, n, ch, s int, mean, varc []float64) {
	c.parallel(ch, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			var sum float64
			for i := range n {
				sum += sum64(xd[(i*ch+k)*s : (i*ch+k+1)*s])
			}
			m := sum / float64(n*s)
			var sq float64
			for i := range n {
				sq += sqDev64(xd[(i*ch+k)*s:(i*ch+k+1)*s], m)
			}
			mean[k], varc[k] = m, sq/float64(n*s)
		}
	})
}

// sum64 is sum(x) in float64, with four accumulators so the adds do not
// wait on each other.
func sum64(x []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a0 += float64(x[i])
		a1 += float64(x[i+1])
		a2 += float64(x[i+2])
		a3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		a0 += float64(x[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// sqDev64 is sum((x-m)^2) in float64, four accumulators.
func sqDev64(x []float32, m float64) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := float64(x[i])-m, float64(x[i+1])-m, float64(x[i+2])-m, float64(x[i+3])-m
		a0 += d0 * d0
		a1 += d1 * d1
		a2 += d2 * d2
		a3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - m
		a0 += d * d
	}
	return (a0 + a1) + (a2 + a3)
}

// dotDev64 returns sum(g) and sum(g*(x-m)) in float64, two accumulators
// each.
func dotDev64(g, x []float32, m float64) (sg, sgx float64) {
	var g0, g1, p0, p1 float64
	x = x[:len(g)]
	i := 0
	for ; i+2 <= len(g); i += 2 {
		a, b := float64(g[i]), float64(g[i+1])
		g0 += a
		g1 += b
		p0 += a * (float64(x[i]) - m)
		p1 += b * (float64(x[i+1]) - m)
	}
	for ; i < len(g); i++ {
		g0 += float64(g[i])
		p0 += float64(g[i]) * (float64(x[i]) - m)
	}
	return g0 + g1, p0 + p1
}

// BatchNormTraining implements kernels.NormOps: normalise with the batch
// mean and biased variance, save mean and 1/sqrt(var+eps), and update the
// running statistics with the unbiased variance (ONNX/PyTorch).
func (c *CPU) BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	d, err := sameSize("batchnorm training", []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	n, ch, s, err := bnGeom("batchnorm training", x, scale, bias, runMean, runVar, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || bias == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: batchnorm training: scale, bias, saveMean and saveInvStd are required", kernels.ErrShape)
	}
	if n*s < 2 {
		return fmt.Errorf("%w: batchnorm training: %d values per channel in x %v (want >= 2)", kernels.ErrShape, n*s, x.Shape)
	}
	xd, yd := d[0], d[1]
	mean, varc := make([]float64, ch), make([]float64, ch)
	c.bnStats(xd, n, ch, s, mean, varc)
	m := float64(n * s)
	for k := range ch {
		inv := 1 / math.Sqrt(varc[k]+float64(eps))
		saveMean.Data[k], saveInvStd.Data[k] = float32(mean[k]), float32(inv)
		if runMean != nil {
			runMean.Data[k] = runMean.Data[k]*momentum + float32(mean[k])*(1-momentum)
		}
		if runVar != nil {
			runVar.Data[k] = runVar.Data[k]*momentum + float32(varc[k]*m/(m-1))*(1-momentum)
		}
	}
	sc, bi, sm, si := scale.Data, bias.Data, saveMean.Data, saveInvStd.Data
	c.parallel(n*ch, planeGrain(s), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			k := p % ch
			a := sc[k] * si[k]
			b := bi[k] - sm[k]*a
			xs, ys := xd[p*s:(p+1)*s], yd[p*s:(p+1)*s]
			for i, v := range xs {
				ys[i] = v*a + b
			}
		}
	})
	return nil
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
	d, err := sameSize("batchnorm backward", []string{"x", "dy"}, x, dy)
	if err != nil {
		return err
	}
	n, ch, s, err := bnGeom("batchnorm backward", x, dscale, dbias, scale, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: batchnorm backward: scale, saveMean and saveInvStd are required", kernels.ErrShape)
	}
	if dx != nil {
		if _, err := sameSize("batchnorm backward", []string{"x", "dx"}, x, dx); err != nil {
			return err
		}
	}
	xd, dyd := d[0], d[1]
	m := float64(n * s)
	c.parallel(ch, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			mu, inv := float64(saveMean.Data[k]), float64(saveInvStd.Data[k])
			var sdy, sdyx float64
			for i := range n {
				off := (i*ch + k) * s
				g, gx := dotDev64(dyd[off:off+s], xd[off:off+s], mu)
				sdy += g
				sdyx += gx
			}
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
			a32, b32, c32 := float32(a), float32(bb), float32(c0)
			for i := range n {
				off := (i*ch + k) * s
				g, xs, o := dyd[off:off+s], xd[off:off+s], dx.Data[off:off+s]
				xs, o = xs[:len(g)], o[:len(g)]
				for j, v := range xs {
					o[j] = a32*g[j] + b32*v + c32
				}
			}
		}
	})
	return nil
}
