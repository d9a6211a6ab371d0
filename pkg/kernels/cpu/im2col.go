package cpu

// convGeom maps one group of an image to its columns: the image has c
// channels of h x w; a kh x kw kernel with strides (sh,sw), dilations
// (dh,dw) and top/left pads (pt,pl) visits oh x ow positions. Column row
// r = (ci*kh+ki)*kw+kj, column p = oy*ow+ox holds
//
//	img[ci][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw]   (0 outside the image)
//
// Conv2D uses it with x as the image and y's grid as the positions;
// ConvTranspose2D with y as the image and x's grid as the positions.
type convGeom struct {
	c, h, w int
	kh, kw  int
	sh, sw  int
	dh, dw  int
	pt, pl  int
	oh, ow  int
}

func (g *convGeom) rows() int { return g.c * g.kh * g.kw }
func (g *convGeom) cols() int { return g.oh * g.ow }

// pointwise reports whether the columns are the image itself (1x1 kernel,
// stride 1, no padding, same grid), so no im2col is needed.
func (g *convGeom) pointwise() bool {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w
}

// xRange returns the output columns [lo,hi) within [ox0,ox1) whose image
// column ox*sw+xoff lies inside [0,w).
func (g *convGeom) xRange(xoff, ox0, ox1 int) (lo, hi int) {
	// ox*sw + xoff >= 0  <=>  ox >= ceil(-xoff/sw)
	lo = 0
	if xoff < 0 {
		lo = (-xoff + g.sw - 1) / g.sw
	}
	// ox*sw + xoff <= w-1  <=>  ox <= floor((w-1-xoff)/sw)
	if w1 := g.w - 1 - xoff; w1 < 0 {
		hi = 0
	} else {
		hi = w1/g.sw + 1
	}
	lo, hi = max(lo, ox0), min(hi, ox1)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// im2col writes columns [p0, p0+np) of img's column matrix into col, a
// rows() x np row-major matrix. It equals
//
//	for r, (ci,ki,kj) := range rows; for p := p0; p < p0+np; p++ {
//		oy, ox := p/ow, p%ow
//		iy, ix := oy*sh-pt+ki*dh, ox*sw-pl+kj*dw
//		col[r*np+p-p0] = img[ci][iy][ix] if inside, else 0
//	}
//
// done row segment by row segment (a copy when the stride is 1).
func (g *convGeom) im2col(img, col []float32, p0, np int) {
	hw := g.h * g.w
	r := 0
	for ci := 0; ci < g.c; ci++ {
		src := img[ci*hw : (ci+1)*hw]
		for ki := 0; ki < g.kh; ki++ {
			for kj := 0; kj < g.kw; kj++ {
				dst := col[r*np : (r+1)*np]
				r++
				xoff := kj*g.dw - g.pl
				d := 0
				for p := p0; p < p0+np; {
					oy := p / g.ow
					ox0 := p - oy*g.ow
					ox1 := min(g.ow, ox0+p0+np-p)
					seg := dst[d : d+ox1-ox0]
					d += ox1 - ox0
					p += ox1 - ox0
					iy := oy*g.sh - g.pt + ki*g.dh
					if iy < 0 || iy >= g.h {
						clear(seg)
						continue
					}
					row := src[iy*g.w : (iy+1)*g.w]
					lo, hi := g.xRange(xoff, ox0, ox1)
					clear(seg[:lo-ox0])
					clear(seg[hi-ox0:])
					if g.sw == 1 {
						copy(seg[lo-ox0:hi-ox0], row[lo+xoff:hi+xoff])
						continue
					}
					out := seg[lo-ox0 : hi-ox0]
					ix := lo*g.sw + xoff
					for i := range out {
						out[i] = row[ix]
						ix += g.sw
					}
				}
			}
		}
	}
}

// col2im adds columns [p0, p0+np) of col (rows() x np) back into img: the
// adjoint of im2col,
//
//	img[ci][iy][ix] += col[r*np+p-p0]   for every inside (r,p) as above.
func (g *convGeom) col2im(col, img []float32, p0, np int) {
	hw := g.h * g.w
	r := 0
	for ci := 0; ci < g.c; ci++ {
		dstImg := img[ci*hw : (ci+1)*hw]
		for ki := 0; ki < g.kh; ki++ {
			for kj := 0; kj < g.kw; kj++ {
				src := col[r*np : (r+1)*np]
				r++
				xoff := kj*g.dw - g.pl
				d := 0
				for p := p0; p < p0+np; {
					oy := p / g.ow
					ox0 := p - oy*g.ow
					ox1 := min(g.ow, ox0+p0+np-p)
					seg := src[d : d+ox1-ox0]
					d += ox1 - ox0
					p += ox1 - ox0
					iy := oy*g.sh - g.pt + ki*g.dh
					if iy < 0 || iy >= g.h {
						continue
					}
					row := dstImg[iy*g.w : (iy+1)*g.w]
					lo, hi := g.xRange(xoff, ox0, ox1)
					in := seg[lo-ox0 : hi-ox0]
					if g.sw == 1 {
						out := row[lo+xoff : hi+xoff]
						for i, v := range in {
							out[i] += v
						}
						continue
					}
					ix := lo*g.sw + xoff
					for _, v := range in {
						row[ix] += v
						ix += g.sw
					}
				}
			}
		}
	}
}
