package cpu

import "vireo/pkg/kernels"

// padBlocks is Pad for the common case of constant padding (pads >= 0) on
// one axis j only, such as the channel padding of a residual: each of the
// prod(x[:j]) outer items of y is then pb*B constants, the item's
// x[j]*B values of x as one contiguous copy, and pe*B constants, with B =
// prod(x[j+1:]). It reports false, doing nothing, for any other padding
// (or bad shapes, which Pad's general path reports).
func (c *CPU) padBlocks(y, x *kernels.Tensor, p kernels.PadParams) bool {
	r := len(x.Shape)
	if p.Mode != kernels.PadConstant || r == 0 || len(p.Pads) != 2*r {
		return false
	}
	j := -1
	for i := range r {
		b, e := p.Pads[i], p.Pads[r+i]
		if b < 0 || e < 0 {
			return false
		}
		if b != 0 || e != 0 {
			if j >= 0 {
				return false
			}
			j = i
		}
	}
	if j < 0 {
		return false
	}
	ys, err := kernels.PadOutShape(x.Shape, p)
	if err != nil || !y.Shape.Equal(ys) {
		return false
	}
	xd, ok1 := hostData(x)
	yd, ok2 := hostData(y)
	if !ok1 || !ok2 || len(xd) != x.Shape.Numel() || len(yd) != ys.Numel() {
		return false
	}
	inner := 1
	for _, d := range x.Shape[j+1:] {
		inner *= d
	}
	outer := 1
	for _, d := range x.Shape[:j] {
		outer *= d
	}
	pb, px, pe := p.Pads[j]*inner, x.Shape[j]*inner, p.Pads[r+j]*inner
	// Copies run at memory speed: split only past ~1 MB of output.
	parallelFor(c, outer, max(1, (1<<18)/max(1, pb+px+pe)), padBlockRows{x: xd, y: yd, pb: pb, px: px, pe: pe, v: p.Value})
	return true
}

// padBlockRows is padBlocks' loop over outer items [lo,hi).
type padBlockRows struct {
	x, y       []float32
	pb, px, pe int
	v          float32
}

func (b *padBlockRows) run(lo, hi int) {
	n := b.pb + b.px + b.pe
	for o := lo; o < hi; o++ {
		row := b.y[o*n : (o+1)*n]
		fillConst(row[:b.pb], b.v)
		copy(row[b.pb:b.pb+b.px], b.x[o*b.px:(o+1)*b.px])
		fillConst(row[b.pb+b.px:], b.v)
	}
}

func fillConst(s []float32, v float32) {
	if v == 0 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = v
	}
}
