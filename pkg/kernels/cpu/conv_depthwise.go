package cpu

// Depthwise convolution (group == C, one input channel per group, mult =
// M/C output channels per input channel) done directly: it is memory-bound,
// and im2col would multiply the traffic by kH*kW for a GEMM with one row.
// q is the Conv2D plan: geo.c == 1, groups == C, outer == mult.

// depthwiseBackward writes dx (the adjoint of depthwiseForward's taps) and
// dw[m][ki][kj] = sum_{n,oy,ox} dy[n][m][oy][ox] * x[n][c][iy][ix]; either
// may be nil. Tasks are input channels, so each owns its dx planes and its
// mult rows of dw.
func (c *CPU) depthwiseBackward(q *convPlan, dx, dw, dy, x, w []float32) {
	g := &q.geo
	hw, P, kk := g.h*g.w, q.p(), g.kh*g.kw
	mult := q.outer
	c.parallel(q.groups, 1, func(lo, hi int) {
		for ci := lo; ci < hi; ci++ {
			if dx != nil {
				for n := 0; n < q.n; n++ {
					clear(dx[(n*q.groups+ci)*hw : (n*q.groups+ci+1)*hw])
				}
			}
			if dw != nil {
				clear(dw[ci*mult*kk : (ci+1)*mult*kk])
			}
			for n := 0; n < q.n; n++ {
				xo := (n*q.groups + ci) * hw
				for j := 0; j < mult; j++ {
					m := ci*mult + j
					dyp := dy[(n*q.groups*mult+m)*P : (n*q.groups*mult+m+1)*P]
					wm := w[m*kk : (m+1)*kk]
					for oy := 0; oy < g.oh; oy++ {
						dyrow := dyp[oy*g.ow : (oy+1)*g.ow]
						for ki := 0; ki < g.kh; ki++ {
							iy := oy*g.sh - g.pt + ki*g.dh
							if iy < 0 || iy >= g.h {
								continue
							}
							ro := xo + iy*g.w
							for kj := 0; kj < g.kw; kj++ {
								xoff := kj*g.dw - g.pl
								lo, hi := g.xRange(xoff, 0, g.ow)
								if lo >= hi {
									continue
								}
								if dx != nil {
									wv := wm[ki*g.kw+kj]
									if g.sw == 1 {
										dwAxpy(wv, dyrow[lo:hi], dx[ro+lo+xoff:ro+hi+xoff])
									} else {
										ix := ro + lo*g.sw + xoff
										for ox := lo; ox < hi; ox++ {
											dx[ix] += wv * dyrow[ox]
											ix += g.sw
										}
									}
								}
								if dw != nil {
									var s float32
									if g.sw == 1 {
										s = dwDot(dyrow[lo:hi], x[ro+lo+xoff:ro+hi+xoff])
									} else {
										ix := ro + lo*g.sw + xoff
										for ox := lo; ox < hi; ox++ {
											s += dyrow[ox] * x[ix]
											ix += g.sw
										}
									}
									dw[m*kk+ki*g.kw+kj] += s
								}
							}
						}
					}
				}
			}
		}
	})
}

// dwAxpy does y[i] += a*x[i] (len(y) >= len(x)), unrolled by 4.
func dwAxpy(a float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// dwDot is sum x[i]*y[i], with four partial sums.
func dwDot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
