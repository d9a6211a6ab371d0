package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// bplan is a broadcast of operands a and b to c's shape with adjacent axes
// of the same broadcast pattern merged. shape holds the merged extents of
// c; sa and sb are the operands' strides along them (0 where broadcast).
// The last merged axis is the inner row: its strides are 0 or 1.
type bplan struct {
	shape, sa, sb []int
	rows, rowLen  int
}

// planBroadcast checks that a and b broadcast to c and merges axes.
func planBroadcast(op string, c, a, b kernels.Shape) (bplan, error) {
	want, err := kernels.BroadcastShape(a, b)
	if err != nil {
		return bplan{}, fmt.Errorf("%s: %w", op, err)
	}
	if !want.Equal(c) {
		return bplan{}, fmt.Errorf("%w: %s: c is %v (want %v, the broadcast of %v and %v)", kernels.ErrShape, op, c, want, a, b)
	}
	r := len(c)
	var p bplan
	fa, fb := -1, -1 // previous axis's flags
	for i := range r {
		if c[i] == 1 {
			continue
		}
		ia := 0
		if j := i - (r - len(a)); j >= 0 && a[j] != 1 {
			ia = 1
		}
		ib := 0
		if j := i - (r - len(b)); j >= 0 && b[j] != 1 {
			ib = 1
		}
		if len(p.shape) > 0 && ia == fa && ib == fb {
			p.shape[len(p.shape)-1] *= c[i]
			continue
		}
		p.shape = append(p.shape, c[i])
		p.sa = append(p.sa, ia)
		p.sb = append(p.sb, ib)
		fa, fb = ia, ib
	}
	if len(p.shape) == 0 {
		p.shape, p.sa, p.sb = []int{1}, []int{1}, []int{1}
	}
	// Flags to strides, innermost first.
	ka, kb := 1, 1
	for i := len(p.shape) - 1; i >= 0; i-- {
		if p.sa[i] == 1 {
			p.sa[i] = ka
			ka *= p.shape[i]
		}
		if p.sb[i] == 1 {
			p.sb[i] = kb
			kb *= p.shape[i]
		}
	}
	p.rowLen = p.shape[len(p.shape)-1]
	p.rows = c.Numel() / max(1, p.rowLen)
	if c.Numel() == 0 {
		p.rows = 0
	}
	return p, nil
}

// offsets returns the operands' offsets of row r.
func (p *bplan) offsets(r int) (oa, ob int) {
	for i := len(p.shape) - 2; i >= 0; i-- {
		d := p.shape[i]
		q := r % d
		r /= d
		oa += q * p.sa[i]
		ob += q * p.sb[i]
	}
	return oa, ob
}

// forEachRow runs fn over rows (or, for one long row, over pieces of it):
// fn gets c's range [lo,hi) and the operands' offsets at lo.
func (c *CPU) forEachRow(p *bplan, fn func(lo, hi, oa, ob int)) {
	const grain = 16384
	la, lb := p.sa[len(p.sa)-1], p.sb[len(p.sb)-1]
	if p.rows == 1 {
		c.parallel(p.rowLen, grain, func(lo, hi int) { fn(lo, hi, lo*la, lo*lb) })
		return
	}
	c.parallel(p.rows, max(1, grain/max(1, p.rowLen)), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			oa, ob := p.offsets(r)
			fn(r*p.rowLen, (r+1)*p.rowLen, oa, ob)
		}
	})
}

// rowBody is the body of forEachRowFor: row handles c's range [lo,hi)
// with the operands' offsets oa, ob at lo.
type rowBody interface{ row(lo, hi, oa, ob int) }

// forEachRowFor is forEachRow for a body given as a struct whose pointer
// has a row method: allocation-free like parallelFor.
func forEachRowFor[T any, P interface {
	*T
	rowBody
}](c *CPU, p *bplan, body T) {
	const grain = 16384
	if p.rows == 1 {
		parallelFor(c, p.rowLen, grain, oneRow[T, P]{body: body, la: p.sa[len(p.sa)-1], lb: p.sb[len(p.sb)-1]})
		return
	}
	parallelFor(c, p.rows, max(1, grain/max(1, p.rowLen)), manyRows[T, P]{body: body, p: p})
}

// oneRow runs a row body over pieces [lo,hi) of one long row.
type oneRow[T any, P interface {
	*T
	rowBody
}] struct {
	body   T
	la, lb int
}

func (r *oneRow[T, P]) run(lo, hi int) { P(&r.body).row(lo, hi, lo*r.la, lo*r.lb) }

// manyRows runs a row body over rows [r0,r1).
type manyRows[T any, P interface {
	*T
	rowBody
}] struct {
	body T
	p    *bplan
}

func (m *manyRows[T, P]) run(r0, r1 int) {
	for r := r0; r < r1; r++ {
		oa, ob := m.p.offsets(r)
		P(&m.body).row(r*m.p.rowLen, (r+1)*m.p.rowLen, oa, ob)
	}
}

// bcastRank is the highest rank whose broadcast plans are cached.
const bcastRank = 8

// bcastKey identifies a broadcast in the backend's plan cache.
type bcastKey struct {
	ra, rb, rc int
	a, b, c    [bcastRank]int
}

// broadcastPlan is planBroadcast computed once per shapes and cached (the
// plan is read-only).
func (c *CPU) broadcastPlan(op string, cs, as, bs kernels.Shape) (*bplan, error) {
	ok := len(as) <= bcastRank && len(bs) <= bcastRank && len(cs) <= bcastRank
	var k bcastKey
	if ok {
		k.ra, k.rb, k.rc = len(as), len(bs), len(cs)
		copy(k.a[:], as)
		copy(k.b[:], bs)
		copy(k.c[:], cs)
		if p, hit := c.plans.bcast.get(k); hit {
			return p, nil
		}
	}
	p, err := planBroadcast(op, cs, as, bs)
	if err != nil {
		return nil, err
	}
	if ok {
		c.plans.bcast.put(k, &p)
	}
	return &p, nil
}

// colBlock is the number of adjacent columns one task walks together in
// the column-wise reductions (sumAxes, Softmax and ArgMax along a non-last
// axis).
const colBlock = 512

// broadcastAxes marks, over the axes of out, those along which x (aligned
// at the last axis) was broadcast: missing or 1 in x where out is not 1.
func broadcastAxes(x, out kernels.Shape) []bool {
	red := make([]bool, len(out))
	off := len(out) - len(x)
	for i, d := range out {
		red[i] = d != 1 && (i < off || x[i-off] == 1)
	}
	return red
}

// sumAxes writes dst = scale * (src summed over the axes of shape where red
// is true), or with src2 (same size as src, else nil) the sum of the
// products src*src2; dst is in the row-major order of the kept axes. Adjacent axes
// of the same kind are merged (extent-1 axes dropped) and the sum runs in
// float64 per output element, in an order fixed by the shape alone. When
// the last merged axis is kept, outputs are columns: a task adds whole
// rows of up to colBlock columns; when it is reduced, a task sums
// contiguous runs.
func (c *CPU) sumAxes(dst, src, src2 []float32, shape kernels.Shape, red []bool, scale float64) {
	if len(dst) == 0 {
		return
	}
	if len(src) == 0 { // a reduced axis is empty: sums are 0
		for i := range dst {
			dst[i] = float32(0 * scale)
		}
		return
	}
	var ext []int
	var isRed []bool
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if k := len(ext) - 1; k >= 0 && isRed[k] == red[i] {
			ext[k] *= d
			continue
		}
		ext, isRed = append(ext, d), append(isRed, red[i])
	}
	st := kernels.Shape(ext).Strides()
	var kExt, kSt, rExt, rSt []int // outer groups (all but the last)
	for i := range len(ext) - 1 {
		if isRed[i] {
			rExt, rSt = append(rExt, ext[i]), append(rSt, st[i])
		} else {
			kExt, kSt = append(kExt, ext[i]), append(kSt, st[i])
		}
	}
	last := len(ext) - 1
	switch {
	case last < 0 || (last == 0 && !isRed[0]): // nothing reduced
		s := float32(scale)
		c.parallel(len(dst), 32768, func(lo, hi int) {
			d := dst[lo:hi]
			switch {
			case src2 != nil:
				s2 := src2[lo:hi]
				for i, v := range src[lo:hi] {
					d[i] = s * (v * s2[i])
				}
			case s == 1:
				copy(d, src[lo:hi])
			default:
				for i, v := range src[lo:hi] {
					d[i] = s * v
				}
			}
		})
	case !isRed[last]: // outputs are columns of rows of length inner
		inner := ext[last]
		nb := (inner + colBlock - 1) / colBlock
		M, R := len(dst)/inner, kernels.Shape(rExt).Numel()
		c.parallel(M*nb, max(1, 16384/(R*min(inner, colBlock))), func(lo, hi int) {
			acc := make([]float64, min(inner, colBlock))
			for u := lo; u < hi; u++ {
				m, j0 := u/nb, (u%nb)*colBlock
				w := min(colBlock, inner-j0)
				a := acc[:w]
				clear(a)
				base := offsetOf(m, kExt, kSt) + j0
				eachOffset(rExt, rSt, base, func(off int) {
					if src2 != nil {
						s2 := src2[off : off+w]
						for j, v := range src[off : off+w] {
							a[j] += float64(v) * float64(s2[j])
						}
						return
					}
					for j, v := range src[off : off+w] {
						a[j] += float64(v)
					}
				})
				out := dst[m*inner+j0 : m*inner+j0+w]
				for j, v := range a {
					out[j] = float32(scale * v)
				}
			}
		})
	default: // the innermost merged axis is reduced: contiguous runs
		run := ext[last]
		R := kernels.Shape(rExt).Numel()
		c.parallel(len(dst), max(1, 16384/(R*run)), func(lo, hi int) {
			for m := lo; m < hi; m++ {
				var s float64
				eachOffset(rExt, rSt, offsetOf(m, kExt, kSt), func(off int) {
					if src2 != nil {
						s += dotRun(src[off:off+run], src2[off:off+run])
						return
					}
					s += sumRun(src[off : off+run])
				})
				dst[m] = float32(scale * s)
			}
		})
	}
}

// offsetOf is the offset of flat index i over extents ext with strides st.
func offsetOf(i int, ext, st []int) int {
	off := 0
	for k := len(ext) - 1; k >= 0; k-- {
		off += (i % ext[k]) * st[k]
		i /= ext[k]
	}
	return off
}

// eachOffset calls fn(base + sum idx[k]*st[k]) for every index idx over
// ext, row-major (once with base when ext is empty).
func eachOffset(ext, st []int, base int, fn func(off int)) {
	idx := make([]int, len(ext))
	off := base
	for {
		fn(off)
		k := len(ext) - 1
		for ; k >= 0; k-- {
			idx[k]++
			off += st[k]
			if idx[k] < ext[k] {
				break
			}
			off -= idx[k] * st[k]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

// sumRun is the float64 sum of s with four accumulators.
func sumRun(s []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += float64(s[i])
		a1 += float64(s[i+1])
		a2 += float64(s[i+2])
		a3 += float64(s[i+3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// dotRun is the float64 sum of s[i]*t[i] (len(t) >= len(s)) with four
// accumulators.
func dotRun(s, t []float32) float64 {
	t = t[:len(s)]
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += float64(s[i]) * float64(t[i])
		a1 += float64(s[i+1]) * float64(t[i+1])
		a2 += float64(s[i+2]) * float64(t[i+2])
		a3 += float64(s[i+3]) * float64(t[i+3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i]) * float64(t[i])
	}
	return (a0 + a1) + (a2 + a3)
}
