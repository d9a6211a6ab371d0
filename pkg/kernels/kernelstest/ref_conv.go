package kernelstest

import "vireo/pkg/kernels"

// Plain reference loops for the conv family: direct convolution in float64
// accumulation, never via im2col or GEMM, so they check the backends'
// fast paths independently. Shapes are in the comments; p has defaults
// applied by the callers.

// convIdx returns the input coordinate of output coordinate o at kernel
// tap k: o*stride - pad + k*dilation.
func refConvIdx(o, k, stride, pad, dil int) int { return o*stride - pad + k*dil }

// RefConv2D is the direct convolution. x is (N,C,H,W), w is (M,C/G,kH,kW),
// b is (M) or nil, the result y is (N,M,oH,oW):
//
//	y[n][m][oy][ox] = b[m] + sum_{ci,ki,kj} w[m][ci][ki][kj] * x[n][g*C/G+ci][iy][ix]
//
// with g = m/(M/G), iy = oy*sh-pt+ki*dh, ix = ox*sw-pl+kj*dw, and x = 0
// outside the image.
func RefConv2D(x []float32, xs kernels.Shape, w []float32, ws kernels.Shape, b []float32, p kernels.ConvParams) ([]float32, kernels.Shape) {
	p = p.WithDefaults()
	ys, err := kernels.Conv2DOutShape(xs, ws, p)
	if err != nil {
		panic(err)
	}
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	M, Cg, KH, KW := ws[0], ws[1], ws[2], ws[3]
	OH, OW := ys[2], ys[3]
	Mg := M / p.Group
	y := make([]float32, ys.Numel())
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / Mg
			for oy := 0; oy < OH; oy++ {
				for ox := 0; ox < OW; ox++ {
					var s float64
					if b != nil {
						s = float64(b[m])
					}
					for ci := 0; ci < Cg; ci++ {
						c := g*Cg + ci
						for ki := 0; ki < KH; ki++ {
							iy := refConvIdx(oy, ki, p.Strides[0], p.Pads[0], p.Dilations[0])
							if iy < 0 || iy >= H {
								continue
							}
							for kj := 0; kj < KW; kj++ {
								ix := refConvIdx(ox, kj, p.Strides[1], p.Pads[1], p.Dilations[1])
								if ix < 0 || ix >= W {
									continue
								}
								s += float64(w[((m*Cg+ci)*KH+ki)*KW+kj]) * float64(x[((n*C+c)*H+iy)*W+ix])
							}
						}
					}
					y[((n*M+m)*OH+oy)*OW+ox] = float32(s)
				}
			}
		}
	}
	return y, ys
}

// RefConv2DBackward returns dx (N,C,H,W), dw (M,C/G,kH,kW) and db (M) for
// dy (N,M,oH,oW): the same loop as RefConv2D with each product's
// contribution sent back to its operands.
func RefConv2DBackward(dy, x []float32, xs kernels.Shape, w []float32, ws kernels.Shape, p kernels.ConvParams) (dx, dw, db []float32) {
	p = p.WithDefaults()
	ys, err := kernels.Conv2DOutShape(xs, ws, p)
	if err != nil {
		panic(err)
	}
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	M, Cg, KH, KW := ws[0], ws[1], ws[2], ws[3]
	OH, OW := ys[2], ys[3]
	Mg := M / p.Group
	dx64 := make([]float64, len(x))
	dw64 := make([]float64, len(w))
	db64 := make([]float64, M)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / Mg
			for oy := 0; oy < OH; oy++ {
				for ox := 0; ox < OW; ox++ {
					d := float64(dy[((n*M+m)*OH+oy)*OW+ox])
					db64[m] += d
					for ci := 0; ci < Cg; ci++ {
						c := g*Cg + ci
						for ki := 0; ki < KH; ki++ {
							iy := refConvIdx(oy, ki, p.Strides[0], p.Pads[0], p.Dilations[0])
							if iy < 0 || iy >= H {
								continue
							}
							for kj := 0; kj < KW; kj++ {
								ix := refConvIdx(ox, kj, p.Strides[1], p.Pads[1], p.Dilations[1])
								if ix < 0 || ix >= W {
									continue
								}
								wi := ((m*Cg+ci)*KH+ki)*KW + kj
								xi := ((n*C+c)*H+iy)*W + ix
								dx64[xi] += d * float64(w[wi])
								dw64[wi] += d * float64(x[xi])
							}
						}
					}
				}
			}
		}
	}
	return linconvTo32(dx64), linconvTo32(dw64), linconvTo32(db64)
}

// RefConvTranspose2D is the direct transposed convolution. x is (N,C,H,W),
// w is (C,M/G,kH,kW), b is (M) or nil, the result y is (N,M,oH,oW):
//
//	y[n][g*M/G+mi][iy*sh-pt+ki*dh][ix*sw-pl+kj*dw] += x[n][c][iy][ix] * w[c][mi][ki][kj]
//
// for every c in group g = c/(C/G) (targets outside y are dropped), then
// y[n][m] += b[m].
func RefConvTranspose2D(x []float32, xs kernels.Shape, w []float32, ws kernels.Shape, b []float32, p kernels.ConvTransposeParams) ([]float32, kernels.Shape) {
	p = p.WithDefaults()
	ys, err := kernels.ConvTranspose2DOutShape(xs, ws, p)
	if err != nil {
		panic(err)
	}
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	Mg, KH, KW := ws[1], ws[2], ws[3]
	M, OH, OW := ys[1], ys[2], ys[3]
	Cg := C / p.Group
	y := make([]float64, ys.Numel())
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			g := c / Cg
			for iy := 0; iy < H; iy++ {
				for ix := 0; ix < W; ix++ {
					xv := float64(x[((n*C+c)*H+iy)*W+ix])
					for mi := 0; mi < Mg; mi++ {
						m := g*Mg + mi
						for ki := 0; ki < KH; ki++ {
							oy := refConvIdx(iy, ki, p.Strides[0], p.Pads[0], p.Dilations[0])
							if oy < 0 || oy >= OH {
								continue
							}
							for kj := 0; kj < KW; kj++ {
								ox := refConvIdx(ix, kj, p.Strides[1], p.Pads[1], p.Dilations[1])
								if ox < 0 || ox >= OW {
									continue
								}
								y[((n*M+m)*OH+oy)*OW+ox] += xv * float64(w[((c*Mg+mi)*KH+ki)*KW+kj])
							}
						}
					}
				}
			}
		}
	}
	if b != nil {
		for n := 0; n < N; n++ {
			for m := 0; m < M; m++ {
				for i := 0; i < OH*OW; i++ {
					y[(n*M+m)*OH*OW+i] += float64(b[m])
				}
			}
		}
	}
	return linconvTo32(y), ys
}

// RefConvTranspose2DBackward returns dx (N,C,H,W), dw (C,M/G,kH,kW) and db
// (M) for dy (N,M,oH,oW), from the loop of RefConvTranspose2D.
func RefConvTranspose2DBackward(dy, x []float32, xs kernels.Shape, w []float32, ws kernels.Shape, p kernels.ConvTransposeParams) (dx, dw, db []float32) {
	p = p.WithDefaults()
	ys, err := kernels.ConvTranspose2DOutShape(xs, ws, p)
	if err != nil {
		panic(err)
	}
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	Mg, KH, KW := ws[1], ws[2], ws[3]
	M, OH, OW := ys[1], ys[2], ys[3]
	Cg := C / p.Group
	dx64 := make([]float64, len(x))
	dw64 := make([]float64, len(w))
	db64 := make([]float64, M)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			for i := 0; i < OH*OW; i++ {
				db64[m] += float64(dy[(n*M+m)*OH*OW+i])
			}
		}
		for c := 0; c < C; c++ {
			g := c / Cg
			for iy := 0; iy < H; iy++ {
				for ix := 0; ix < W; ix++ {
					xi := ((n*C+c)*H+iy)*W + ix
					for mi := 0; mi < Mg; mi++ {
						m := g*Mg + mi
						for ki := 0; ki < KH; ki++ {
							oy := refConvIdx(iy, ki, p.Strides[0], p.Pads[0], p.Dilations[0])
							if oy < 0 || oy >= OH {
								continue
							}
							for kj := 0; kj < KW; kj++ {
								ox := refConvIdx(ix, kj, p.Strides[1], p.Pads[1], p.Dilations[1])
								if ox < 0 || ox >= OW {
									continue
								}
								d := float64(dy[((n*M+m)*OH+oy)*OW+ox])
								wi := ((c*Mg+mi)*KH+ki)*KW + kj
								dx64[xi] += d * float64(w[wi])
								dw64[wi] += d * float64(x[xi])
							}
						}
					}
				}
			}
		}
	}
	return linconvTo32(dx64), linconvTo32(dw64), linconvTo32(db64)
}

func linconvTo32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
