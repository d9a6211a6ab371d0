package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// poolAxis is the window geometry along one spatial axis: output o reads
// input positions o*s - pb + k*d for k in [0, K), those in [0, in) being
// real elements and those in [-pb, in+pe) counting for count_include_pad.
type poolAxis struct {
	in, out, k, s, d, pb, pe int
	// valid[o] and padded[o] count the taps of window o that land in the
	// input and in the padded input.
	valid, padded []int
	// lo[k], hi[k]: outputs o in [lo, hi) have tap k inside the input.
	lo, hi []int
}

func newPoolAxis(in, out, k, s, d, pb, pe int) *poolAxis {
	a := &poolAxis{in: in, out: out, k: k, s: s, d: d, pb: pb, pe: pe,
		valid: make([]int, out), padded: make([]int, out), lo: make([]int, k), hi: make([]int, k)}
	for o := range out {
		for t := range k {
			pos := o*s - pb + t*d
			if pos >= 0 && pos < in {
				a.valid[o]++
			}
			if pos >= -pb && pos < in+pe {
				a.padded[o]++
			}
		}
	}
	for t := range k {
		off := t*d - pb
		lo := 0
		if off < 0 {
			lo = (-off + s - 1) / s
		}
		hi := 0
		if in-off > 0 {
			hi = (in - off + s - 1) / s
		}
		a.lo[t], a.hi[t] = min(lo, out), max(min(hi, out), min(lo, out))
	}
	return a
}

// poolGeom checks x against p and returns p with defaults, the two axes
// and the output shape.
func poolGeom(op string, x kernels.Shape, p kernels.PoolParams) (kernels.PoolParams, *poolAxis, *poolAxis, kernels.Shape, error) {
	p = p.WithDefaults()
	ys, err := kernels.Pool2DOutShape(x, p)
	if err != nil {
		return p, nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	ah := newPoolAxis(x[2], ys[2], p.Kernel[0], p.Strides[0], p.Dilations[0], p.Pads[0], p.Pads[2])
	aw := newPoolAxis(x[3], ys[3], p.Kernel[1], p.Strides[1], p.Dilations[1], p.Pads[1], p.Pads[3])
	return p, ah, aw, ys, nil
}

// poolKey identifies a Pool2D geometry in the backend's plan cache.
type poolKey struct {
	x [4]int
	p kernels.PoolParams
}

// poolEntry is a cached poolGeom result (read-only).
type poolEntry struct {
	p      kernels.PoolParams
	ah, aw *poolAxis
	ys     kernels.Shape
}

// poolGeomCached is poolGeom computed once per geometry and cached.
func (c *CPU) poolGeomCached(op string, x kernels.Shape, p kernels.PoolParams) (kernels.PoolParams, *poolAxis, *poolAxis, kernels.Shape, error) {
	k := poolKey{p: p}
	cacheable := len(x) == 4
	if cacheable {
		copy(k.x[:], x)
		if e, hit := c.plans.pool.get(k); hit {
			return e.p, e.ah, e.aw, e.ys, nil
		}
	}
	p, ah, aw, ys, err := poolGeom(op, x, p)
	if err == nil && cacheable {
		c.plans.pool.put(k, &poolEntry{p: p, ah: ah, aw: aw, ys: ys})
	}
	return p, ah, aw, ys, err
}

// divisor is the average pool's denominator for output (oh, ow): the taps
// on real elements, or with count_include_pad those inside the padded input.
func poolDivisor(p kernels.PoolParams, ah, aw *poolAxis, oh, ow int) float32 {
	if p.CountIncludePad {
		return float32(ah.padded[oh] * aw.padded[ow])
	}
	return float32(ah.valid[oh] * aw.valid[ow])
}

// planeGrain is how many planes of the given size make a parallel chunk
// worth its hand-off.
func planeGrain(elems int) int { return max(1, 32768/max(1, elems)) }

// Pool2D implements kernels.PoolOps: ONNX MaxPool / AveragePool on x
// (N,C,H,W) into y (N,C,oH,oW). It equals the plain loop
//
//	for n, c, oh, ow: acc = -inf (max) or 0 (avg)
//	  for kh, kw: ih = oh*sH - pT + kh*dH; iw = ow*sW - pL + kw*dW
//	    if 0 <= ih < H && 0 <= iw < W: acc = max(acc, x) or acc += x
//	  y = acc (max; -MaxFloat32 if no tap is inside x, as ONNX Runtime) or
//	  acc / divisor (avg, see poolDivisor; 0 if the divisor is 0)
//
// computed a row of outputs at a time: for each (kh, kw) the outputs whose
// tap lies inside x form one range, so the inner loop has no bounds tests.
func (c *CPU) Pool2D(y, x *kernels.Tensor, p kernels.PoolParams) error {
	xd, err := host("pool2d: x", x)
	if err != nil {
		return err
	}
	p, ah, aw, ys, err := c.poolGeomCached("pool2d", x.Shape, p)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("pool2d: y", y, ys); err != nil {
		return err
	}
	yd, err := host("pool2d: y", y)
	if err != nil {
		return err
	}
	if maxPool2(p, ah, aw) {
		// ~1 ns per input element: split only past ~256K of them.
		parallelFor(c, ys[0]*ys[1], max(1, (1<<18)/max(1, ah.in*aw.in)), maxPool2Planes{x: xd, y: yd, h: ah.in, w: aw.in, oh: ah.out, ow: aw.out})
		return nil
	}
	if maxPool3s2(p, ah, aw) {
		parallelFor(c, ys[0]*ys[1], max(1, (1<<18)/max(1, ah.in*aw.in)), maxPool3s2Planes{x: xd, y: yd, ah: ah, aw: aw})
		return nil
	}
	parallelFor(c, ys[0]*ys[1], planeGrain(ah.in*aw.in+ah.out*aw.out), poolPlanes{x: xd, y: yd, p: p, ah: ah, aw: aw})
	return nil
}

// maxPool3s2 reports whether p is a 3x3 stride-2 max pool with top and
// left padding of at most 1 whose windows each have a tap inside the
// input (ResNet's stem pool): done by maxPool3s2C.
func maxPool3s2(p kernels.PoolParams, ah, aw *poolAxis) bool {
	inside := func(a *poolAxis) bool { return a.pb <= 1 && a.out > 0 && 2*(a.out-1)-a.pb < a.in }
	return p.Kind == kernels.PoolMax && p.Kernel == [2]int{3, 3} && p.Strides == [2]int{2, 2} &&
		p.Dilations == [2]int{1, 1} && inside(ah) && inside(aw) && aw.in <= pool3MaxW
}

// maxPool3s2Planes is Pool2D's loop over planes [lo,hi) for maxPool3s2.
type maxPool3s2Planes struct {
	x, y   []float32
	ah, aw *poolAxis
}

func (b *maxPool3s2Planes) run(lo, hi int) {
	h, w, oh, ow := b.ah.in, b.aw.in, b.ah.out, b.aw.out
	maxPool3s2C(b.y[lo*oh*ow:hi*oh*ow], b.x[lo*h*w:hi*h*w], hi-lo, h, w, oh, ow, b.ah.pb, b.aw.pb)
}

// maxPool2 reports whether p is a 2x2 stride-2 max pool whose windows all
// lie inside the input (no padding, no dilation, no partial ceil-mode
// window): the common downsampling, done by maxPool2C.
func maxPool2(p kernels.PoolParams, ah, aw *poolAxis) bool {
	return p.Kind == kernels.PoolMax && p.Kernel == [2]int{2, 2} && p.Strides == [2]int{2, 2} &&
		p.Dilations == [2]int{1, 1} && p.Pads == [4]int{} && 2*ah.out <= ah.in && 2*aw.out <= aw.in
}

// maxPool2Planes is Pool2D's loop over planes [lo,hi) for maxPool2.
type maxPool2Planes struct {
	x, y         []float32
	h, w, oh, ow int
}

func (b *maxPool2Planes) run(lo, hi int) {
	maxPool2C(b.y[lo*b.oh*b.ow:hi*b.oh*b.ow], b.x[lo*b.h*b.w:hi*b.h*b.w], hi-lo, b.h, b.w, b.oh, b.ow)
}

// poolPlanes is Pool2D's loop over planes [lo,hi).
type poolPlanes struct {
	x, y   []float32
	p      kernels.PoolParams
	ah, aw *poolAxis
}

func (b *poolPlanes) run(lo, hi int) {
	p, ah, aw := b.p, b.ah, b.aw
	H, W, oH, oW := ah.in, aw.in, ah.out, aw.out
	for pl := lo; pl < hi; pl++ {
		xp := b.x[pl*H*W : (pl+1)*H*W]
		yp := b.y[pl*oH*oW : (pl+1)*oH*oW]
		for oh := range oH {
			acc := yp[oh*oW : (oh+1)*oW]
			if p.Kind == kernels.PoolMax {
				poolMaxRow(acc, xp, ah, aw, oh)
			} else {
				poolSumRow(acc, xp, ah, aw, oh)
				for ow := range acc {
					if dv := poolDivisor(p, ah, aw, oh, ow); dv > 0 {
						acc[ow] /= dv
					} else {
						acc[ow] = 0
					}
				}
			}
		}
	}
}

// poolMaxRow writes the max over each window of output row oh into acc.
func poolMaxRow(acc, xp []float32, ah, aw *poolAxis, oh int) {
	W, sw := aw.in, aw.s
	for i := range acc {
		acc[i] = float32(math.Inf(-1))
	}
	for kh := range ah.k {
		ih := oh*ah.s - ah.pb + kh*ah.d
		if ih < 0 || ih >= ah.in {
			continue
		}
		row := xp[ih*W : (ih+1)*W]
		for kw := range aw.k {
			off := kw*aw.d - aw.pb
			lo, hi := aw.lo[kw], aw.hi[kw]
			if lo >= hi {
				continue
			}
			dst := acc[lo:hi]
			src := row[lo*sw+off:]
			switch sw {
			case 1:
				src = src[:len(dst)]
				for i, v := range src {
					dst[i] = max(dst[i], v)
				}
			case 2:
				src = src[:2*len(dst)-1]
				for i := range dst {
					dst[i] = max(dst[i], src[2*i])
				}
			default:
				for i := range dst {
					dst[i] = max(dst[i], src[i*sw])
				}
			}
		}
	}
	if ah.valid[oh] == 0 {
		for i := range acc {
			acc[i] = -math.MaxFloat32
		}
		return
	}
	for ow := range acc {
		if aw.valid[ow] == 0 {
			acc[ow] = -math.MaxFloat32
		}
	}
}

// poolSumRow writes the sum over each window of output row oh into acc.
func poolSumRow(acc, xp []float32, ah, aw *poolAxis, oh int) {
	W, sw := aw.in, aw.s
	clear(acc)
	for kh := range ah.k {
		ih := oh*ah.s - ah.pb + kh*ah.d
		if ih < 0 || ih >= ah.in {
			continue
		}
		row := xp[ih*W : (ih+1)*W]
		for kw := range aw.k {
			off := kw*aw.d - aw.pb
			lo, hi := aw.lo[kw], aw.hi[kw]
			if lo >= hi {
				continue
			}
			dst := acc[lo:hi]
			src := row[lo*sw+off:]
			if sw == 1 {
				src = src[:len(dst)]
				for i, v := range src {
					dst[i] += v
				}
				continue
			}
			for i := range dst {
				dst[i] += src[i*sw]
			}
		}
	}
}

// Pool2DBackward implements kernels.PoolOps. dx is overwritten. Max: each
// dy goes to the first maximum of its window (taps scanned row by row);
// average: dy/divisor goes to every real element of the window. y is not
// needed and may be nil; x may be nil for average pooling.
//
//	dx = 0
//	for n, c, oh, ow: max: dx[argmax window] += dy
//	                  avg: for each tap inside x: dx[tap] += dy/divisor
func (c *CPU) Pool2DBackward(dx, dy, x, y *kernels.Tensor, p kernels.PoolParams) error {
	if dx == nil {
		return nil
	}
	dxd, err := host("pool2d backward: dx", dx)
	if err != nil {
		return err
	}
	p, ah, aw, ys, err := c.poolGeomCached("pool2d backward", dx.Shape, p)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("pool2d backward: dy", dy, ys); err != nil {
		return err
	}
	dyd, err := host("pool2d backward: dy", dy)
	if err != nil {
		return err
	}
	if y != nil {
		if err := kernels.CheckShape("pool2d backward: y", y, ys); err != nil {
			return err
		}
	}
	var xd []float32
	if x != nil || p.Kind == kernels.PoolMax {
		if err := kernels.CheckShape("pool2d backward: x", x, dx.Shape); err != nil {
			return err
		}
		if xd, err = host("pool2d backward: x", x); err != nil {
			return err
		}
	}
	H, W, oH, oW := ah.in, aw.in, ah.out, aw.out
	c.parallel(ys[0]*ys[1], planeGrain(H*W+oH*oW), func(lo, hi int) {
		g := make([]float32, oW)
		for pl := lo; pl < hi; pl++ {
			dxp := dxd[pl*H*W : (pl+1)*H*W]
			dyp := dyd[pl*oH*oW : (pl+1)*oH*oW]
			clear(dxp)
			if p.Kind == kernels.PoolMax {
				poolMaxBackwardPlane(dxp, dyp, xd[pl*H*W:(pl+1)*H*W], ah, aw)
				continue
			}
			for oh := range oH {
				for ow := range oW {
					g[ow] = 0
					if dv := poolDivisor(p, ah, aw, oh, ow); dv > 0 {
						g[ow] = dyp[oh*oW+ow] / dv
					}
				}
				for kh := range ah.k {
					ih := oh*ah.s - ah.pb + kh*ah.d
					if ih < 0 || ih >= H {
						continue
					}
					row := dxp[ih*W : (ih+1)*W]
					for kw := range aw.k {
						off := kw*aw.d - aw.pb
						for ow := aw.lo[kw]; ow < aw.hi[kw]; ow++ {
							row[ow*aw.s+off] += g[ow]
						}
					}
				}
			}
		}
	})
	return nil
}

// globalGeom checks x (N,C,d1,...) against y and returns N*C and the plane
// size.
func (c *CPU) globalGeom(op string, x, y *kernels.Tensor, yName string) (int, int, error) {
	if x == nil {
		return 0, 0, fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	var k bcastKey // x's shape only
	cacheable := len(x.Shape) <= bcastRank
	if cacheable {
		k.ra = len(x.Shape)
		copy(k.a[:], x.Shape)
	}
	ys, hit := c.plans.global.get(k)
	if !cacheable || !hit {
		var err error
		if ys, err = kernels.GlobalPoolOutShape(x.Shape); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", op, err)
		}
		if cacheable {
			c.plans.global.put(k, ys)
		}
	}
	if y == nil || !y.Shape.Equal(ys) {
		return 0, 0, kernels.CheckShape(op+": "+yName, y, ys)
	}
	return ys.Numel(), x.Numel() / ys.Numel(), nil
}

// GlobalPool implements kernels.PoolOps: y[n,c] = max or mean of x[n,c,...]
// over all spatial positions (a float64 sum for the mean).
func (c *CPU) GlobalPool(y, x *kernels.Tensor, kind kernels.PoolKind) error {
	if kind != kernels.PoolMax && kind != kernels.PoolAvg {
		return fmt.Errorf("%w: globalpool: kind %d", kernels.ErrParam, kind)
	}
	planes, size, err := c.globalGeom("globalpool", x, y, "y")
	if err != nil {
		return err
	}
	xd, err := host("globalpool: x", x)
	if err != nil {
		return err
	}
	yd, err := host("globalpool: y", y)
	if err != nil {
		return err
	}
	parallelFor(c, planes, planeGrain(size), globalPlanes{x: xd, y: yd, size: size, kind: kind})
	return nil
}

// globalPlanes is GlobalPool's loop over planes [lo,hi).
type globalPlanes struct {
	x, y []float32
	size int
	kind kernels.PoolKind
}

func (b *globalPlanes) run(lo, hi int) {
	size := b.size
	for pl := lo; pl < hi; pl++ {
		xp := b.x[pl*size : (pl+1)*size]
		if b.kind == kernels.PoolMax {
			m := xp[0]
			for _, v := range xp[1:] {
				if v > m {
					m = v
				}
			}
			b.y[pl] = m
			continue
		}
		var s [1]float64
		planeSumsC(s[:], xp, size)
		b.y[pl] = float32(s[0] / float64(size))
	}
}

// GlobalPoolBackward implements kernels.PoolOps: max sends dy to the first
// maximum of each plane, average spreads dy/size over it. dx is overwritten.
func (c *CPU) GlobalPoolBackward(dx, dy, x, y *kernels.Tensor, kind kernels.PoolKind) error {
	if kind != kernels.PoolMax && kind != kernels.PoolAvg {
		return fmt.Errorf("%w: globalpool backward: kind %d", kernels.ErrParam, kind)
	}
	if dx == nil {
		return nil
	}
	planes, size, err := c.globalGeom("globalpool backward", dx, dy, "dy")
	if err != nil {
		return err
	}
	dxd, err := host("globalpool backward: dx", dx)
	if err != nil {
		return err
	}
	dyd, err := host("globalpool backward: dy", dy)
	if err != nil {
		return err
	}
	var xd []float32
	if kind == kernels.PoolMax {
		if err := kernels.CheckShape("globalpool backward: x", x, dx.Shape); err != nil {
			return err
		}
		if xd, err = host("globalpool backward: x", x); err != nil {
			return err
		}
	}
	c.parallel(planes, planeGrain(size), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dxp := dxd[pl*size : (pl+1)*size]
			if kind == kernels.PoolAvg {
				g := dyd[pl] / float32(size)
				for i := range dxp {
					dxp[i] = g
				}
				continue
			}
			clear(dxp)
			xp := xd[pl*size : (pl+1)*size]
			at := 0
			for i, v := range xp {
				if v > xp[at] {
					at = i
				}
			}
			dxp[at] = dyd[pl]
		}
	})
	return nil
}
