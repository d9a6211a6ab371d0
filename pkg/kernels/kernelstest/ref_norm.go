package kernelstest

import "math"

// Plain float64 reference loops for the norm family, straight from the
// NormOps contract. x is (N,C,S...) flattened to (N,C,S); per-channel
// values are (C).

// bnEach calls fn(k, i) for every element i of x in channel k.
func bnEach(n, c, s int, fn func(k, i int)) {
	for b := 0; b < n; b++ {
		for k := 0; k < c; k++ {
			for j := 0; j < s; j++ {
				fn(k, (b*c+k)*s+j)
			}
		}
	}
}

// refBatchNormInference: y = scale*(x-mean)/sqrt(var+eps) + bias.
func refBatchNormInference(x []float32, n, c, s int, scale, bias, mean, variance []float32, eps float32) []float32 {
	y := make([]float32, len(x))
	bnEach(n, c, s, func(k, i int) {
		y[i] = float32(float64(scale[k])*(float64(x[i])-float64(mean[k]))/math.Sqrt(float64(variance[k])+float64(eps)) + float64(bias[k]))
	})
	return y
}

// refBNTrain is the training-mode forward's outputs.
type refBNTrain struct {
	y                    []float32
	runMean, runVar      []float32 // updated running statistics
	saveMean, saveInvStd []float32
}

// refBatchNormTraining normalises with the batch mean and biased variance
// and updates the running statistics with the unbiased variance:
// running = running*momentum + batch*(1-momentum).
func refBatchNormTraining(x []float32, n, c, s int, scale, bias, runMean, runVar []float32, eps, momentum float32) refBNTrain {
	m := float64(n * s)
	mean, sq := make([]float64, c), make([]float64, c)
	bnEach(n, c, s, func(k, i int) { mean[k] += float64(x[i]) / m })
	bnEach(n, c, s, func(k, i int) { d := float64(x[i]) - mean[k]; sq[k] += d * d })
	out := refBNTrain{y: make([]float32, len(x)), runMean: make([]float32, c), runVar: make([]float32, c),
		saveMean: make([]float32, c), saveInvStd: make([]float32, c)}
	inv := make([]float64, c)
	mo := float64(momentum)
	for k := range c {
		inv[k] = 1 / math.Sqrt(sq[k]/m+float64(eps))
		out.saveMean[k], out.saveInvStd[k] = float32(mean[k]), float32(inv[k])
		out.runMean[k] = float32(float64(runMean[k])*mo + mean[k]*(1-mo))
		out.runVar[k] = float32(float64(runVar[k])*mo + sq[k]/(m-1)*(1-mo))
	}
	bnEach(n, c, s, func(k, i int) {
		out.y[i] = float32(float64(scale[k])*(float64(x[i])-mean[k])*inv[k] + float64(bias[k]))
	})
	return out
}

// refBatchNormBackward differentiates the training-mode forward through
// the batch statistics. With xhat = (x-mean)*invstd, M values per channel:
//
//	dbias = sum dy, dscale = sum dy*xhat,
//	dxhat = dy*scale,
//	dvar  = sum dxhat*(x-mean) * -1/2 * invstd^3,
//	dmean = -invstd * sum dxhat + dvar * -2/M * sum (x-mean),
//	dx    = dxhat*invstd + dvar*2(x-mean)/M + dmean/M
//
// (the textbook chain rule, term by term, not the folded formula).
func refBatchNormBackward(dy, x []float32, n, c, s int, scale, saveMean, saveInvStd []float32) (dx, dscale, dbias []float32) {
	m := float64(n * s)
	db, ds, dvar, sdxh, sxm := make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)
	bnEach(n, c, s, func(k, i int) {
		xm := float64(x[i]) - float64(saveMean[k])
		inv := float64(saveInvStd[k])
		g := float64(dy[i])
		db[k] += g
		ds[k] += g * xm * inv
		dxh := g * float64(scale[k])
		dvar[k] += dxh * xm * -0.5 * inv * inv * inv
		sdxh[k] += dxh
		sxm[k] += xm
	})
	dx, dscale, dbias = make([]float32, len(x)), make([]float32, c), make([]float32, c)
	dmean := make([]float64, c)
	for k := range c {
		dmean[k] = -float64(saveInvStd[k])*sdxh[k] + dvar[k]*-2/m*sxm[k]
		dscale[k], dbias[k] = float32(ds[k]), float32(db[k])
	}
	bnEach(n, c, s, func(k, i int) {
		xm := float64(x[i]) - float64(saveMean[k])
		dx[i] = float32(float64(dy[i])*float64(scale[k])*float64(saveInvStd[k]) + dvar[k]*2*xm/m + dmean[k]/m)
	})
	return dx, dscale, dbias
}
