package cpu

// Stride-1 convolutions as shifted GEMMs, with no im2col. Copy the image
// of one (n,g) into a zero-bordered plane of hp x wp (the padding made
// explicit); then output position (oy,ox), numbered p = oy*wp+ox on the
// padded-width grid, reads tap (ki,kj) at padded index p + ki*dh*wp + kj*dw,
// a constant shift. So for each tap the product W_tap (outer x C/G) times
// the shifted plane (C/G x positions, row stride hp*wp) is a plain sgemm on
// a view of the padded image, and the kH*kW products accumulate into the
// output:
//
//	ypad[m][p] = sum_{ki,kj} sum_c w[m][c][ki][kj] * xpad[c][p + ki*dh*wp + kj*dw]
//	y[m][oy][ox] = ypad[m][oy*wp+ox] + b[m]     for ox < ow
//
// The wp-ow columns per row past ow are computed and dropped: that waste,
// (kW-1)*dW/wp, is the price of skipping im2col (whose copies cost 10-15%
// of a 3x3 conv's time here).

// shiftLayout is where the shifted GEMMs read. With stride s the padded
// plane (hp x wp, hp = (oh-1)*sh + (kh-1)*dh + 1) is split into sh*sw phase
// planes of hq x wq, phase (a,b) holding padded pixels (yq*sh+a, xq*sw+b);
// tap (ki,kj) then reads phase ((ki*dh)%sh, (kj*dw)%sw) shifted by
// ((ki*dh)/sh, (kj*dw)/sw), so strided convolutions are shifted GEMMs too
// (stride 1: one phase, the padded plane itself). Output (oy,ox) is grid
// position p = oy*wq+ox; np = (oh-1)*wq + ow stops before the last row's
// dropped tail, so no tap reads past its phase plane.
type shiftLayout struct {
	hq, wq  int
	plane   int // hq*wq
	cstride int // sh*sw*plane: one channel's phase planes
	np      int
}

func (q *convPlan) shiftLayout() shiftLayout {
	g := &q.geo
	hp := (g.oh-1)*g.sh + (g.kh-1)*g.dh + 1
	wp := (g.ow-1)*g.sw + (g.kw-1)*g.dw + 1
	l := shiftLayout{hq: (hp + g.sh - 1) / g.sh, wq: (wp + g.sw - 1) / g.sw}
	l.plane = l.hq * l.wq
	l.cstride = g.sh * g.sw * l.plane
	l.np = (g.oh-1)*l.wq + g.ow
	return l
}

// off is tap's offset into a channel's phase planes.
func (l *shiftLayout) off(g *convGeom, tap int) int {
	y, x := (tap/g.kw)*g.dh, (tap%g.kw)*g.dw
	return ((y%g.sh)*g.sw+x%g.sw)*l.plane + (y/g.sh)*l.wq + x/g.sw
}

// shiftMinChannels is the fewest channels per group for which the shifted
// GEMMs (inner dimension C/G) beat one im2col GEMM (inner dimension
// C/G*kH*kW): a 3-channel stem convolution stays on im2col.
const shiftMinChannels = 32

// shiftable reports whether the shifted-GEMM path applies: enough
// channels, and not a 1x1 unpadded stride-1 kernel (a plain GEMM).
func (q *convPlan) shiftable() bool {
	if q.shift != 0 {
		return q.shift > 0 && !q.geo.pointwise()
	}
	return q.geo.c >= shiftMinChannels && !q.geo.pointwise()
}

// tapWeights reorders wt (groups x outer x c x kh x kw) into taps
// (groups x kh*kw x outer x c), so each tap's W_tap is a plain matrix.
func (q *convPlan) tapWeights(wt, dst []float32) {
	g := &q.geo
	kk := g.kh * g.kw
	for gr := 0; gr < q.groups; gr++ {
		for m := 0; m < q.outer; m++ {
			for ci := 0; ci < g.c; ci++ {
				src := wt[((gr*q.outer+m)*g.c+ci)*kk:]
				for tap := 0; tap < kk; tap++ {
					dst[((gr*kk+tap)*q.outer+m)*g.c+ci] = src[tap]
				}
			}
		}
	}
}

// shiftChunk is the number of grid positions per task: the output chunk
// and one tap's panel of the plane together fill about colBudget floats.
func (q *convPlan) shiftChunk(threads, np int) int {
	w := max(64, colBudget/(q.outer+q.geo.c)/gemmAlign*gemmAlign)
	// Even chunks: no short remainder chunk at the end of each image.
	if nc := (np + w - 1) / w; nc > 1 {
		w = ((np+nc-1)/nc + gemmAlign - 1) / gemmAlign * gemmAlign
	}
	if items := q.n * q.groups; items*((np+w-1)/w) < threads {
		per := (threads + items - 1) / items
		w = ((np+per-1)/per + gemmAlign - 1) / gemmAlign * gemmAlign
	}
	if q.maxChunk > 0 {
		w = min(w, q.maxChunk)
	}
	return min(max(w, 1), np)
}

// uncrop copies grid positions [p0,p0+w) of the padded-width grid from
// grid (one (n,g): outer x oh*ow) into buf (outer x w), with zeros in the
// dropped columns (ox >= ow), so they add nothing to a gradient.
func (q *convPlan) uncrop(grid, buf []float32, p0, w, wp int) {
	g := &q.geo
	P := q.p()
	for m := 0; m < q.outer; m++ {
		src := grid[m*P : (m+1)*P]
		dst := buf[m*w : (m+1)*w]
		for p := p0; p < p0+w; {
			oy := p / wp
			ox := p - oy*wp
			end := min(p0+w, oy*wp+wp)
			if ox < g.ow {
				seg := min(end, oy*wp+g.ow) - p
				copy(dst[p-p0:p-p0+seg], src[oy*g.ow+ox:])
				clear(dst[p-p0+seg : end-p0])
			} else {
				clear(dst[p-p0 : end-p0])
			}
			p = end
		}
	}
}

// backwardImageShift computes backwardImage's result for a shiftable plan:
//
//	imgpad[c][p + ki*dh*wp + kj*dw] += sum_m w[m][c][ki][kj] * gridpad[m][p]
//	img[c][iy][ix] = imgpad[c][iy+pt][ix+pl] + bias[c]
//
// one accumulating sgemm per tap and chunk into the padded plane (the
// taps' windows overlap, so one task owns a whole (n,g)), then a crop.
func (c *CPU) backwardImageShift(q *convPlan, img, grid, wt, bias []float32) {
	l := q.shiftLayout()
	taps := c.getScratch(len(wt))
	defer c.putScratch(taps)
	q.tapWeights(wt, *taps)
	cw := q.shiftChunk(c.threads, l.np)
	dynamicFor(c, q.n*q.groups, 1, shiftBackwardImage{c: c, q: q, l: l, img: img, grid: grid, taps: *taps, bias: bias, cw: cw})
}

// shiftBackwardImage is backwardImageShift's per-thread loop over claimed
// (n,g) items.
type shiftBackwardImage struct {
	c                     *CPU
	q                     *convPlan
	l                     shiftLayout
	img, grid, taps, bias []float32
	cw                    int
}

func (b *shiftBackwardImage) work(cl *claimer) {
	q, cw := b.q, b.cw
	g := &q.geo
	l := &b.l
	wp, np := l.wq, l.np
	kk := g.kh * g.kw
	pad := b.c.getScratch(g.c * l.cstride)
	defer b.c.putScratch(pad)
	buf := b.c.getScratch(q.outer * cw)
	defer b.c.putScratch(buf)
	for lo, hi, ok := cl.claim(); ok; lo, hi, ok = cl.claim() {
		for t := lo; t < hi; t++ {
			gr, n := t%q.groups, t/q.groups
			clear(*pad)
			gridN := b.grid[q.gridOff(n, gr):]
			for p0 := 0; p0 < np; p0 += cw {
				w := min(cw, np-p0)
				q.uncrop(gridN, *buf, p0, w, wp)
				for tap := 0; tap < kk; tap++ {
					off := l.off(g, tap)
					sgemm(true, false, g.c, w, q.outer, 1, b.taps[(gr*kk+tap)*q.outer*g.c:], g.c, *buf, w, 1, (*pad)[off+p0:], l.cstride)
				}
			}
			q.unpadPlane(*pad, b.img[q.imgOff(n, gr):], b.bias, gr, l)
		}
	}
}

// unpadPlane is padPlane's inverse on the image's pixels:
//
//	img[ci][iy][ix] = src[ci][a][b][yq][xq] + bias[g*c+ci]   (iy+pt = yq*sh+a, ix+pl = xq*sw+b)
//
// with pixels beyond the padded plane (never read by any tap) set to bias.
func (q *convPlan) unpadPlane(src, img, bias []float32, gr int, l *shiftLayout) {
	g := &q.geo
	hp := (g.oh-1)*g.sh + (g.kh-1)*g.dh + 1
	wp := (g.ow-1)*g.sw + (g.kw-1)*g.dw + 1
	ncols := max(0, min(g.w, wp-g.pl))
	for ci := 0; ci < g.c; ci++ {
		var bv float32
		if bias != nil {
			bv = bias[gr*g.c+ci]
		}
		for iy := 0; iy < g.h; iy++ {
			dst := img[(ci*g.h+iy)*g.w : (ci*g.h+iy+1)*g.w]
			py := iy + g.pt
			k := 0
			if py < hp && ncols > 0 {
				a, yq := py%g.sh, py/g.sh
				row := src[ci*l.cstride+yq*l.wq:]
				if g.sw == 1 {
					in := row[a*l.plane+g.pl : a*l.plane+g.pl+ncols]
					for ix, v := range in {
						dst[ix] = v + bv
					}
				} else {
					for ix := 0; ix < ncols; ix++ {
						px := ix + g.pl
						dst[ix] = row[(a*g.sw+px%g.sw)*l.plane+px/g.sw] + bv
					}
				}
				k = ncols
			}
			for i := k; i < len(dst); i++ {
				dst[i] = bv
			}
		}
	}
}
