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
