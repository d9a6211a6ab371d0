package cpu

import "vireo/pkg/kernels"

// resizeCheck is kernels.CheckResize, then x's and y's host data.
func resizeCheck(op string, x, y *kernels.Tensor, p kernels.ResizeParams, xName, yName string) ([]float32, []float32, error) {
	if err := kernels.CheckResize(op, x, y, p, xName, yName); err != nil {
		return nil, nil, err
	}
	xd, err := hostOp(op, xName, x)
	if err != nil {
		return nil, nil, err
	}
	yd, err := hostOp(op, yName, y)
	if err != nil {
		return nil, nil, err
	}
	return xd, yd, nil
}

// Resize implements kernels.LayoutOps (ONNX Resize with scales).
//
// Nearest, any rank: y[I] = x[J], J[i] = nearest(coord(I[i])) clamped
// (kernels.ResizeCoord, kernels.ResizeNearestIndex). Rows mapping to the same input row are
// copied from the previous output row, and a 2x last axis writes pairs.
//
// Linear: bilinear over the last two axes (the others must have scale 1),
// the input coordinate clamped to [0, in-1] as ONNX Runtime does:
//
//	y[.., oh, ow] = sum over (a, b) in {lo,hi}^2 of wH(a)*wW(b)*x[.., a, b]
func (c *CPU) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	xd, yd, err := resizeCheck("resize", x, y, p, "x", "y")
	if err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		c.resizeLinear(yd, xd, x.Shape, y.Shape, p, false)
		return nil
	}
	tabs := kernels.ResizeNearestTables(x.Shape, y.Shape, p)
	if len(x.Shape) == 0 {
		yd[0] = xd[0]
		return nil
	}
	r := len(x.Shape)
	xs := x.Shape.Strides()
	outer, n := splitLast(y.Shape)
	lt := tabs[r-1]
	double := n == 2*x.Shape[r-1]
	for o := 0; double && o < n; o++ {
		double = lt[o] == o/2
	}
	rows := kernels.Shape(outer).Numel()
	c.parallel(rows, rowGrain(n), func(lo, hi int) {
		prev := -1
		iterRows(outer, lo, hi, func(row int, idx []int) {
			out := yd[row*n : (row+1)*n]
			base := 0
			for i, v := range idx {
				base += tabs[i][v] * xs[i]
			}
			if base == prev {
				copy(out, yd[(row-1)*n:row*n])
				return
			}
			prev = base
			in := xd[base : base+x.Shape[r-1]]
			if double {
				out = out[:2*len(in)]
				for i, v := range in {
					out[2*i] = v
					out[2*i+1] = v
				}
				return
			}
			for o, j := range lt {
				out[o] = in[j]
			}
		})
	})
	return nil
}

// ResizeBackward implements kernels.LayoutOps: the adjoint of Resize with
// the same weights, dx = 0 then dx[J] += w*dy[I] for each term of y[I].
func (c *CPU) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	if dx == nil {
		return nil
	}
	dxd, dyd, err := resizeCheck("resize backward", dx, dy, p, "dx", "dy")
	if err != nil {
		return err
	}
	if p.Mode == kernels.ResizeLinear {
		c.resizeLinear(dyd, dxd, dx.Shape, dy.Shape, p, true)
		return nil
	}
	clear(dxd)
	tabs := kernels.ResizeNearestTables(dx.Shape, dy.Shape, p)
	if len(dx.Shape) == 0 {
		dxd[0] = dyd[0]
		return nil
	}
	r := len(dx.Shape)
	xs := dx.Shape.Strides()
	outer, n := splitLast(dy.Shape)
	k := 0 // leading axes whose tables are one-to-one
	for k < len(outer) && dx.Shape[k] == dy.Shape[k] && isIdentity(tabs[k]) {
		k++
	}
	lt := tabs[r-1]
	c.forSlabs(outer, k, n, func(row int, idx []int) {
		base := 0
		for i, v := range idx {
			base += tabs[i][v] * xs[i]
		}
		in := dxd[base : base+dx.Shape[r-1]]
		for o, g := range dyd[row*n : (row+1)*n] {
			in[lt[o]] += g
		}
	})
	return nil
}

// resizeLinear runs bilinear resize (back=false: yd from xd) or its
// adjoint (back=true: xd = 0, then xd += weights*yd), plane by plane.
func (c *CPU) resizeLinear(yd, xd []float32, xs, ys kernels.Shape, p kernels.ResizeParams, back bool) {
	r := len(xs)
	H, W, oH, oW := xs[r-2], xs[r-1], ys[r-2], ys[r-1]
	ah := kernels.NewResizeLinearAxis(p.Coord, p.Scales[r-2], H, oH)
	aw := kernels.NewResizeLinearAxis(p.Coord, p.Scales[r-1], W, oW)
	planes := xs[:r-2].Numel()
	c.parallel(planes, planeGrain(H*W+oH*oW), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp := xd[pl*H*W : (pl+1)*H*W]
			yp := yd[pl*oH*oW : (pl+1)*oH*oW]
			if back {
				clear(xp)
			}
			for oh := range oH {
				r0 := xp[ah.Lo[oh]*W : (ah.Lo[oh]+1)*W]
				r1 := xp[ah.Hi[oh]*W : (ah.Hi[oh]+1)*W]
				wh := ah.W[oh]
				out := yp[oh*oW : (oh+1)*oW]
				for ow := range out {
					l, h, ww := aw.Lo[ow], aw.Hi[ow], aw.W[ow]
					if back {
						g := out[ow]
						g0, g1 := g*(1-wh), g*wh
						r0[l] += g0 * (1 - ww)
						r0[h] += g0 * ww
						r1[l] += g1 * (1 - ww)
						r1[h] += g1 * ww
						continue
					}
					v0 := r0[l]*(1-ww) + r0[h]*ww
					v1 := r1[l]*(1-ww) + r1[h]*ww
					out[ow] = v0*(1-wh) + v1*wh
				}
			}
		}
	})
}
