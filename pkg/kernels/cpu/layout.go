package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// Layout kernels (Concat, Split, Slice, Transpose, BroadcastTo,
// DepthToSpace; Pad in pad.go, Resize in resize.go) walk their output a row
// at a time: a row is a run along the last axis, and the outer index of the
// row (all other axes) picks where it comes from in the input.

// rowGrain is the number of rows of rowLen elements worth a parallel chunk.
func rowGrain(rowLen int) int { return max(1, 16384/max(1, rowLen)) }

// iterRows calls fn for rows lo..hi-1 of an array whose outer extents are
// outer (row r has multi-index idx, outer-major). fn must not keep idx.
func iterRows(outer []int, lo, hi int, fn func(r int, idx []int)) {
	idx := make([]int, len(outer))
	rem := lo
	for i := len(outer) - 1; i >= 0; i-- {
		if outer[i] > 0 {
			idx[i] = rem % outer[i]
			rem /= outer[i]
		}
	}
	for r := lo; r < hi; r++ {
		fn(r, idx)
		for i := len(outer) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outer[i] {
				break
			}
			idx[i] = 0
		}
	}
}

// forRows runs fn over all rows of outer in parallel chunks.
func (c *CPU) forRows(outer []int, rowLen int, fn func(r int, idx []int)) {
	rows := kernels.Shape(outer).Numel()
	c.parallel(rows, rowGrain(rowLen), func(lo, hi int) { iterRows(outer, lo, hi, fn) })
}

// forSlabs runs fn over all rows of outer, in parallel only across the
// first k outer axes: rows that differ in those axes may run at once, rows
// that share them run in order on one goroutine (for scatter-adds whose
// targets are disjoint only across those axes).
func (c *CPU) forSlabs(outer []int, k, rowLen int, fn func(r int, idx []int)) {
	slabs := kernels.Shape(outer[:k]).Numel()
	per := kernels.Shape(outer[k:]).Numel()
	if per == 0 {
		return
	}
	c.parallel(slabs, max(1, rowGrain(rowLen)/per), func(lo, hi int) {
		iterRows(outer, lo*per, hi*per, fn)
	})
}

// splitLast splits s into its outer extents and its last extent (a scalar
// is one row of one element).
func splitLast(s kernels.Shape) ([]int, int) {
	if len(s) == 0 {
		return nil, 1
	}
	return s[:len(s)-1], s[len(s)-1]
}

// Concat implements kernels.LayoutOps: y is xs joined along axis (negative
// counts from the end).
//
//	for o in outer, for each x in order: copy x[o, :, inner] to the next
//	x.Shape[axis]*inner values of y[o]
func (c *CPU) Concat(y *kernels.Tensor, xs []*kernels.Tensor, axis int) error {
	return c.concatSplit("concat", y, xs, axis, false)
}

// Split implements kernels.LayoutOps: the inverse of Concat.
func (c *CPU) Split(ys []*kernels.Tensor, x *kernels.Tensor, axis int) error {
	return c.concatSplit("split", x, ys, axis, true)
}

// concatSplit copies parts into whole (Concat) or whole into parts (Split).
func (c *CPU) concatSplit(op string, whole *kernels.Tensor, parts []*kernels.Tensor, axis int, split bool) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: %s: no parts (want >= 1)", kernels.ErrShape, op)
	}
	body := concatRows{split: split, n: len(parts)}
	if len(parts) > len(body.data) {
		body.more = make([][]float32, len(parts))
	}
	for i, t := range parts {
		d, ok := hostData(t)
		if !ok {
			_, err := host(fmt.Sprintf("%s: part %d", op, i), t)
			return err
		}
		body.setPart(i, d)
	}
	k, cacheable := concatKeyOf(parts, axis, split)
	q, hit := c.plans.concat.get(k)
	if !cacheable || !hit {
		var err error
		if q, err = planConcat(op, parts, axis); err != nil {
			return err
		}
		if cacheable {
			c.plans.concat.put(k, q)
		}
	}
	if whole == nil || !whole.Shape.Equal(q.whole) {
		return kernels.CheckShape(op+": whole", whole, q.whole)
	}
	wd, err := hostOp(op, "whole", whole)
	if err != nil {
		return err
	}
	body.whole, body.q = wd, q
	parallelFor(c, q.outer*body.n, rowGrain(max(1, q.row/body.n)), body)
	return nil
}

// concatPlan is a checked Concat/Split geometry: the whole's shape, and
// per part its elements per outer index and its offset in a whole row.
type concatPlan struct {
	whole        kernels.Shape
	outer, row   int
	chunk, start []int
}

// concatParts is the most parts (of rank at most bcastRank) whose plans
// are cached.
const concatParts = 4

// concatKey identifies a Concat/Split in the backend's plan cache.
type concatKey struct {
	split   bool
	axis, n int
	rank    [concatParts]int
	shape   [concatParts][bcastRank]int
}

func concatKeyOf(parts []*kernels.Tensor, axis int, split bool) (k concatKey, ok bool) {
	if len(parts) > concatParts {
		return k, false
	}
	k.split, k.axis, k.n = split, axis, len(parts)
	for i, t := range parts {
		if len(t.Shape) > bcastRank {
			return k, false
		}
		k.rank[i] = len(t.Shape)
		copy(k.shape[i][:], t.Shape)
	}
	return k, true
}

// planConcat checks the parts' shapes and plans the copy.
func planConcat(op string, parts []*kernels.Tensor, axis int) (*concatPlan, error) {
	shapes := make([]kernels.Shape, len(parts))
	for i, t := range parts {
		shapes[i] = t.Shape
	}
	ws, err := kernels.ConcatOutShape(shapes, axis)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	a := axis
	if a < 0 {
		a += len(ws)
	}
	inner := ws[a+1:].Numel()
	q := &concatPlan{whole: ws, outer: ws[:a].Numel(), chunk: make([]int, len(parts)), start: make([]int, len(parts))}
	for i, s := range shapes {
		q.chunk[i], q.start[i] = s[a]*inner, q.row
		q.row += q.chunk[i]
	}
	return q, nil
}

// concatRows copies units [lo,hi) of (outer index, part).
type concatRows struct {
	q     *concatPlan
	whole []float32
	data  [concatParts][]float32
	more  [][]float32 // all parts' data when there are more than concatParts
	n     int
	split bool
}

func (b *concatRows) setPart(i int, d []float32) {
	if b.more != nil {
		b.more[i] = d
		return
	}
	b.data[i] = d
}

func (b *concatRows) part(i int) []float32 {
	if b.more != nil {
		return b.more[i]
	}
	return b.data[i]
}

func (b *concatRows) run(lo, hi int) {
	q, n, row := b.q, b.n, b.q.row
	for u := lo; u < hi; u++ {
		o, i := u/n, u%n
		w := b.whole[o*row+q.start[i] : o*row+q.start[i]+q.chunk[i]]
		p := b.part(i)[o*q.chunk[i] : (o+1)*q.chunk[i]]
		if b.split {
			copy(p, w)
		} else {
			copy(w, p)
		}
	}
}

// Slice implements kernels.LayoutOps for normalised p (see
// kernels.CheckSlice): y[o] = x[start + o*step] on every axis.
func (c *CPU) Slice(y, x *kernels.Tensor, p kernels.SliceParams) error {
	return c.slice("slice", y, x, p, false)
}

// SliceBackward implements kernels.LayoutOps: dx is zero except
// dx[start + o*step] = dy[o].
func (c *CPU) SliceBackward(dx, dy *kernels.Tensor, p kernels.SliceParams) error {
	if dx == nil {
		return nil
	}
	return c.slice("slice backward", dy, dx, p, true)
}

// slice gathers small (the slice) from big, or with back scatters small
// into a zeroed big.
func (c *CPU) slice(op string, small, big *kernels.Tensor, p kernels.SliceParams, back bool) error {
	bigName, smallName := "x", "y"
	if back {
		bigName, smallName = "dx", "dy"
	}
	bd, err := hostOp(op, bigName, big)
	if err != nil {
		return err
	}
	ss, err := kernels.SliceOutShape(big.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+smallName, small, ss); err != nil {
		return err
	}
	sd, err := hostOp(op, smallName, small)
	if err != nil {
		return err
	}
	if back {
		clear(bd)
	}
	if len(sd) == 0 {
		return nil
	}
	if len(ss) == 0 {
		if back {
			bd[0] = sd[0]
		} else {
			sd[0] = bd[0]
		}
		return nil
	}
	st := big.Shape.Strides()
	outer, n := splitLast(ss)
	last := len(ss) - 1
	step, lastStride := p.Steps[last], st[last]
	c.forRows(outer, n, func(r int, idx []int) {
		base := p.Starts[last] * lastStride
		for i, v := range idx {
			base += (p.Starts[i] + v*p.Steps[i]) * st[i]
		}
		srow := sd[r*n : (r+1)*n]
		if step == 1 {
			if back {
				copy(bd[base:base+n], srow)
			} else {
				copy(srow, bd[base:base+n])
			}
			return
		}
		for o := range srow {
			if back {
				bd[base+o*step] = srow[o]
			} else {
				srow[o] = bd[base+o*step]
			}
		}
	})
	return nil
}

// Transpose implements kernels.LayoutOps: y[i0,...] = x at the index whose
// axis perm[k] is i_k (an empty perm reverses the axes).
//
//	for each y index I: y[I] = x[J] with J[perm[k]] = I[k]
//
// Axes of extent 1 are dropped and input axes that stay adjacent are
// merged first; then a perm that keeps the last axis copies rows, one that
// swaps the last two (NCHW<->NHWC become this) runs a tiled batched 2-D
// transpose, and any other gathers along the output's last axis.
func (c *CPU) Transpose(y, x *kernels.Tensor, perm []int) error {
	xd, err := host("transpose: x", x)
	if err != nil {
		return err
	}
	if len(perm) == 0 {
		perm = kernels.ReversePerm(len(x.Shape))
	}
	ysh, err := kernels.TransposeOutShape(x.Shape, perm)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("transpose: y", y, ysh); err != nil {
		return err
	}
	yd, err := host("transpose: y", y)
	if err != nil {
		return err
	}
	if len(xd) == 0 {
		return nil
	}
	rs, rp := reducePerm(x.Shape, perm)
	k := len(rp)
	switch {
	case k <= 1 || rp[k-1] == k-1 && isIdentity(rp):
		c.parallel(len(xd), 16384, func(lo, hi int) { copy(yd[lo:hi], xd[lo:hi]) })
		return nil
	case isIdentity(rp[:k-2]) && rp[k-2] == k-1 && rp[k-1] == k-2:
		c.transpose2D(yd, xd, kernels.Shape(rs[:k-2]).Numel(), rs[k-2], rs[k-1])
		return nil
	}
	xs := kernels.Shape(rs).Strides()
	ys := make(kernels.Shape, k)
	for i, a := range rp {
		ys[i] = rs[a]
	}
	outer, n := splitLast(ys)
	inStride := xs[rp[k-1]]
	c.forRows(outer, n, func(r int, idx []int) {
		base := 0
		for i, v := range idx {
			base += v * xs[rp[i]]
		}
		row := yd[r*n : (r+1)*n]
		if inStride == 1 {
			copy(row, xd[base:base+n])
			return
		}
		for o := range row {
			row[o] = xd[base+o*inStride]
		}
	})
	return nil
}

// reducePerm drops extent-1 axes of x and merges runs of input axes that
// perm keeps adjacent and in order; it returns the reduced input shape and
// the reduced perm (the same transpose on the same memory).
func reducePerm(x kernels.Shape, perm []int) ([]int, []int) {
	keep := make([]int, 0, len(perm)) // perm without extent-1 axes
	for _, a := range perm {
		if x[a] != 1 {
			keep = append(keep, a)
		}
	}
	// Groups of consecutive input axes, in output order.
	var groups [][2]int // [first input axis, last input axis]
	for _, a := range keep {
		if g := len(groups) - 1; g >= 0 && nextKept(x, groups[g][1]) == a {
			groups[g][1] = a
			continue
		}
		groups = append(groups, [2]int{a, a})
	}
	// Number the groups by input order.
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ { // insertion sort by first axis
		for j := i; j > 0 && groups[order[j]][0] < groups[order[j-1]][0]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	shape := make([]int, len(groups))
	rank := make([]int, len(groups))
	for r, g := range order {
		rank[g] = r
		e := 1
		for a := groups[g][0]; a <= groups[g][1]; a++ {
			e *= x[a]
		}
		shape[r] = e
	}
	return shape, rank
}

// nextKept is the next input axis after a whose extent is not 1, or -1.
func nextKept(x kernels.Shape, a int) int {
	for b := a + 1; b < len(x); b++ {
		if x[b] != 1 {
			return b
		}
	}
	return -1
}

func isIdentity(p []int) bool {
	for i, v := range p {
		if v != i {
			return false
		}
	}
	return true
}

const tile = 32

// transpose2D writes y[b][j][i] = x[b][i][j] for batch b, x (rows,cols),
// in tiles of 32x32 so both sides stay in cache lines.
func (c *CPU) transpose2D(y, x []float32, batch, rows, cols int) {
	tr := (rows + tile - 1) / tile
	c.parallel(batch*tr, max(1, 8192/(tile*cols)), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, i0 := u/tr, (u%tr)*tile
			xb := x[b*rows*cols : (b+1)*rows*cols]
			yb := y[b*rows*cols : (b+1)*rows*cols]
			i1 := min(i0+tile, rows)
			for j0 := 0; j0 < cols; j0 += tile {
				j1 := min(j0+tile, cols)
				for j := j0; j < j1; j++ {
					dst := yb[j*rows+i0 : j*rows+i1]
					src := xb[i0*cols+j:]
					for i := range dst {
						dst[i] = src[i*cols]
					}
				}
			}
		}
	})
}

// BroadcastTo implements kernels.LayoutOps: x is aligned to y's trailing
// axes and each of its extents must equal y's or be 1 (NumPy rules).
//
//	for each y index I: y[I] = x[J] with J[k] = I[k+off] or 0 where x is 1
func (c *CPU) BroadcastTo(y, x *kernels.Tensor) error {
	xd, err := host("broadcastto: x", x)
	if err != nil {
		return err
	}
	yd, err := host("broadcastto: y", y)
	if err != nil {
		return err
	}
	var k bcastKey // a: x's shape, c: y's
	cacheable := len(x.Shape) <= bcastRank && len(y.Shape) <= bcastRank
	if cacheable {
		k.ra, k.rc = len(x.Shape), len(y.Shape)
		copy(k.a[:], x.Shape)
		copy(k.c[:], y.Shape)
	}
	q, hit := c.plans.bcastTo.get(k)
	if !cacheable || !hit {
		if q, err = planBroadcastTo(y.Shape, x.Shape); err != nil {
			return err
		}
		if cacheable {
			c.plans.bcastTo.put(k, q)
		}
	}
	if len(yd) == 0 {
		return nil
	}
	parallelFor(c, kernels.Shape(q.outer).Numel(), rowGrain(q.n), broadcastRows{q: q, x: xd, y: yd})
	return nil
}

// broadcastToPlan is a checked BroadcastTo: x's stride per y axis (0 where
// broadcast), y's outer extents and row length, and the row's x stride.
type broadcastToPlan struct {
	st, outer []int
	n, ls     int
}

func planBroadcastTo(ysh, xsh kernels.Shape) (*broadcastToPlan, error) {
	if len(xsh) > len(ysh) {
		return nil, fmt.Errorf("%w: broadcastto: x %v has higher rank than y %v", kernels.ErrShape, xsh, ysh)
	}
	off := len(ysh) - len(xsh)
	xst := xsh.Strides()
	st := make([]int, len(ysh)) // x's stride per y axis, 0 where broadcast
	for i, d := range xsh {
		switch {
		case d == ysh[off+i]:
			st[off+i] = xst[i]
		case d == 1:
		default:
			return nil, fmt.Errorf("%w: broadcastto: x %v cannot broadcast to y %v (axis %d: got %d, want 1 or %d)", kernels.ErrShape, xsh, ysh, off+i, d, ysh[off+i])
		}
	}
	q := &broadcastToPlan{st: st}
	q.outer, q.n = splitLast(ysh)
	if len(st) > 0 {
		q.ls = st[len(st)-1]
	}
	return q, nil
}

// broadcastRows is BroadcastTo's loop over rows [lo,hi) of y (iterRows
// without a closure; the multi-index lives on the stack up to bcastRank
// outer axes).
type broadcastRows struct {
	q    *broadcastToPlan
	x, y []float32
}

func (b *broadcastRows) run(lo, hi int) {
	outer, st, n, ls := b.q.outer, b.q.st, b.q.n, b.q.ls
	var buf [bcastRank]int
	var idx []int
	if len(outer) <= len(buf) {
		idx = buf[:len(outer)]
	} else {
		idx = make([]int, len(outer))
	}
	rem := lo
	for i := len(outer) - 1; i >= 0; i-- {
		if outer[i] > 0 {
			idx[i] = rem % outer[i]
			rem /= outer[i]
		}
	}
	for r := lo; r < hi; r++ {
		base := 0
		for i, v := range idx {
			base += v * st[i]
		}
		row := b.y[r*n : (r+1)*n]
		if ls == 0 {
			v := b.x[base]
			for o := range row {
				row[o] = v
			}
		} else {
			copy(row, b.x[base:base+n])
		}
		for i := len(outer) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outer[i] {
				break
			}
			idx[i] = 0
		}
	}
}

// DepthToSpace implements kernels.LayoutOps on x (N,C,H,W), y
// (N,C/b^2,H*b,W*b):
//
//	y[n,c,h*b+i,w*b+j] = x[n,ch,h,w], ch = (i*b+j)*C/b^2 + c (DCR)
//	                                  ch = c*b^2 + i*b + j   (CRD)
func (c *CPU) DepthToSpace(y, x *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return c.depthToSpace("depthtospace", y, x, p, false)
}

// DepthToSpaceBackward implements kernels.LayoutOps: the inverse
// permutation, dx[n,ch,h,w] = dy[n,c,h*b+i,w*b+j].
func (c *CPU) DepthToSpaceBackward(dx, dy *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	if dx == nil {
		return nil
	}
	return c.depthToSpace("depthtospace backward", dy, dx, p, true)
}

func (c *CPU) depthToSpace(op string, sp, dp *kernels.Tensor, p kernels.DepthToSpaceParams, back bool) error {
	dName, sName := "x", "y"
	if back {
		dName, sName = "dx", "dy"
	}
	dd, err := hostOp(op, dName, dp)
	if err != nil {
		return err
	}
	var k d2sKey
	cacheable := len(dp.Shape) == 4
	if cacheable {
		k.p = p
		copy(k.x[:], dp.Shape)
	}
	ss, hit := c.plans.d2s.get(k)
	if !cacheable || !hit {
		if ss, err = kernels.DepthToSpaceOutShape(dp.Shape, p); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if cacheable {
			c.plans.d2s.put(k, ss)
		}
	}
	if sp == nil || !sp.Shape.Equal(ss) {
		return kernels.CheckShape(op+": "+sName, sp, ss)
	}
	sd, err := hostOp(op, sName, sp)
	if err != nil {
		return err
	}
	b := p.Blocksize
	N, C, H, W := dp.Shape[0], dp.Shape[1], dp.Shape[2], dp.Shape[3]
	oc, ow := C/(b*b), W*b
	parallelFor(c, N*oc*H, rowGrain(b*ow), d2sRows{dd: dd, sd: sd, b: b, C: C, H: H, W: W, crd: p.CRD, back: back})
	return nil
}

// d2sKey identifies a DepthToSpace in the backend's plan cache.
type d2sKey struct {
	x [4]int
	p kernels.DepthToSpaceParams
}

// d2sRows is depthToSpace's loop over units [lo,hi) of (n, c, h); its run is
// in C (layout_c.go).
type d2sRows struct {
	dd, sd     []float32
	b, C, H, W int
	crd, back  bool
}
