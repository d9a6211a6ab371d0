package cpu

import (
	"fmt"
	"unsafe"

	"vireo/pkg/kernels"
)

// FusedActOK implements kernels.FusedConvOps: the activations the fused
// epilogue computes in C (Relu, LeakyRelu, Sigmoid, HardSigmoid,
// HardSwish, Clip, and none).
func (c *CPU) FusedActOK(k kernels.ActKind) bool {
	_, ok := actCode(kernels.Act{Kind: k})
	return ok
}

// FusedAffineOK implements kernels.FusedAffineOps: the epilogue applies
// Act.Affine's scale and shift after the activation.
func (c *CPU) FusedAffineOK() bool { return true }

// Conv2DFused implements kernels.FusedConvOps:
//
//	y = act((conv(x, w) + b) + res)          (then *act.Scale + act.Shift if act.Affine)
//
// equal to Conv2D, then Binary(OpAdd) with res, then Activation (then a
// scalar Mul and Add, up to one rounding: the last two may be one FMA). The
// epilogue runs on each task's block of y right after its GEMM (or its
// depthwise planes), while the block is in cache: the same paths as
// Conv2D (depthwise direct kernel, shifted GEMMs, im2col or plain GEMMs
// for pointwise kernels, the latter cut into L2-sized column chunks).
func (c *CPU) Conv2DFused(y, x, w, b, res *kernels.Tensor, p kernels.ConvParams, act kernels.Act) error {
	const op = "conv2d_fused"
	code, ok := actCode(act)
	if !ok {
		return fmt.Errorf("%w: %s: activation kind %d", kernels.ErrUnsupported, op, act.Kind)
	}
	e, err := c.conv2DEntry(op, x, w, p)
	if err != nil {
		return err
	}
	q := e.q
	if err := kernels.CheckShape(op+": y", y, e.out); err != nil {
		return err
	}
	if b != nil {
		if err := kernels.CheckShape(op+": b", b, e.bias); err != nil {
			return err
		}
	}
	if res != nil {
		if err := kernels.CheckShape(op+": res", res, e.out); err != nil {
			return err
		}
	}
	d, err := convOperands(op, []string{"y", "x", "w", "b", "res"}, y, x, w, b, res)
	if err != nil {
		return err
	}
	if overlaps(d[0], d[1]) || overlaps(d[0], d[4]) {
		return fmt.Errorf("%w: %s: y shares storage with x or res", kernels.ErrParam, op)
	}
	c.convForward(q, d[0], d[1], d[2], d[3], convEpi{res: d[4], code: code, act: act})
	return nil
}

// convForward is the inference convolution y = epilogue(conv(x, w) + b)
// (Conv2D with an identity epilogue, Conv2DFused).
func (c *CPU) convForward(q *convPlan, y, x, w, b []float32, ep convEpi) {
	switch {
	case q.depthwise():
		c.depthwiseFused(q, y, x, w, b, ep)
	case q.forwardAllFits():
		c.forwardAll(q, y, x, w, b, ep)
	case q.winograd():
		c.winoFused(q, y, x, w, b, ep)
	case q.shiftable():
		c.shiftFused(q, y, x, w, b, ep)
	default:
		c.colsFused(q, y, x, w, b, ep)
	}
}

// fwdAllMaxP is the largest grid (positions per image) whose forward
// builds every image's columns at once (forwardAll).
var fwdAllMaxP = 16

// forwardAllFits reports whether q's forward runs as forwardAll: several
// images, a grid of at most fwdAllMaxP positions, and a batch's columns
// within bwAllBudget.
func (q *convPlan) forwardAllFits() bool {
	return q.n > 1 && q.p() <= fwdAllMaxP && q.k()*q.n*q.p() <= bwAllBudget && q.maxChunk == 0
}

// forwardAll is the forward of a convolution whose grid is too small for
// GEMMs per image (a ResNet's last layers: 2x2 or 4x4 positions at 64x64
// inputs, where each image's GEMM has 4-16 columns and streams the whole
// weight matrix once per image, memory-bound): every image's columns side
// by side (K x n*P per group, as weightGradAll builds them), one GEMM per
// group split over the threads by gemm, then each image's rows copied to
// its grid with the epilogue.
func (c *CPU) forwardAll(q *convPlan, grid, img, wt, bias []float32, ep convEpi) {
	P, K := q.p(), q.k()
	total := q.n * P
	col := c.getScratch(K * total)
	defer c.putScratch(col)
	buf := c.getScratch(q.outer * total)
	defer c.putScratch(buf)
	for g := 0; g < q.groups; g++ {
		q.parallelColumns(c, img, *col, g)
		c.gemm(false, false, q.outer, total, K, 1, wt[g*q.outer*K:], K, *col, total, 0, *buf, total)
		var bs []float32
		if bias != nil {
			bs = bias[g*q.outer:]
		}
		parallelFor(c, q.n, 1, fwdAllOut{q: q, grid: grid, buf: *buf, bias: bs, g: g, ep: ep})
	}
}

// fwdAllCols builds images [lo,hi)'s columns of group g side by side in
// col (rows n*P floats long).
type fwdAllCols struct {
	q        *convPlan
	img, col []float32
	g        int
}

func (b *fwdAllCols) run(lo, hi int) { b.q.batchColumns(b.img, b.col, b.g, lo, hi) }

// tinyCols builds channels [lo,hi)'s rows of group g's batch columns
// (tinyIm2col).
type tinyCols struct {
	q        *convPlan
	img, col []float32
	g        int
}

func (b *tinyCols) run(lo, hi int) { b.q.tinyIm2col(b.img, b.col, b.g, lo, hi) }

// parallelColumns builds group g's columns for the whole batch in col
// (batchColumns' layout) on c's threads: by channels for a tiny grid,
// else by images.
func (q *convPlan) parallelColumns(c *CPU, img, col []float32, g int) {
	if q.tinyOK() {
		parallelFor(c, q.geo.c, 1, tinyCols{q: q, img: img, col: col, g: g})
		return
	}
	parallelFor(c, q.n, 1, fwdAllCols{q: q, img: img, col: col, g: g})
}

// batchColumns builds images [lo,hi)'s columns of group g in col, the
// batch's side by side (K rows of n*P floats; image n's at column n*P).
func (q *convPlan) batchColumns(img, col []float32, g, lo, hi int) {
	P := q.p()
	total := q.n * P
	for n := lo; n < hi; n++ {
		if q.geo.pointwise() {
			gatherRows(img[q.imgOff(n, g):], col[n*P:], 1, 0, q.geo.c, P, total)
		} else {
			q.geo.im2colLD(img[q.imgOff(n, g):], col[n*P:], 0, P, total)
		}
	}
}

// fwdAllOut copies images [lo,hi)'s rows of group g from buf to their
// grids and applies the epilogue.
type fwdAllOut struct {
	q               *convPlan
	grid, buf, bias []float32
	g               int
	ep              convEpi
}

func (b *fwdAllOut) run(lo, hi int) {
	q := b.q
	P := q.p()
	total := q.n * P
	for n := lo; n < hi; n++ {
		goff := q.gridOff(n, b.g)
		for m := 0; m < q.outer; m++ {
			copy(b.grid[goff+m*P:goff+(m+1)*P], b.buf[m*total+n*P:])
		}
		b.ep.apply(b.grid, goff, q.outer, P, P, b.bias)
	}
}

// convParallelFlops is the work (multiply-adds x 2) below which a
// convolution runs on one thread: handing tasks to the other workers
// costs a goroutine wake-up each (several microseconds, far more on a
// loaded machine, where the joined goroutine may also resume on another
// core with cold caches), more than such a convolution gains (~60 us of
// work). The small tensors of models like BlazeFace are mostly below it.
const convParallelFlops = 8e6

// flops is the convolution's multiply-add count x 2.
func (q *convPlan) flops() float64 {
	return 2 * float64(q.n*q.groups*q.outer) * float64(q.k()) * float64(q.p())
}

// convBlock is the task block for dynamicFor over items*nc tasks: all of
// them at once (one thread) for a small convolution, else taskBlock.
func (c *CPU) convBlock(q *convPlan, items, nc int) int {
	if q.flops() < convParallelFlops {
		return items * nc
	}
	return c.taskBlock(items, nc)
}

// overlaps reports whether two non-empty slices share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(4*len(b)) && b0 < a0+uintptr(4*len(a))
}

// convEpi is the part of the epilogue after the bias: the residual (y's
// layout, or nil) and the activation.
type convEpi struct {
	res  []float32
	code int32
	act  kernels.Act
}

// apply runs the epilogue on rows x cols of y starting at off (row
// stride ld), with the bias rows given (or nil).
func (e *convEpi) apply(y []float32, off, rows, cols, ld int, bias []float32) {
	var res []float32
	if e.res != nil {
		res = e.res[off:]
	}
	if bias == nil && res == nil && e.act.Kind == kernels.ActIdentity && !e.act.Affine {
		return
	}
	epilogue(y[off:], rows, cols, ld, bias, res, ld, e.code, e.act)
}

// depthwiseFused is depthwiseForward (bias added by the direct kernel)
// with the residual and activation applied to each task's planes.
func (c *CPU) depthwiseFused(q *convPlan, y, x, w, b []float32, ep convEpi) {
	g := &q.geo
	planes := q.n * q.groups * q.outer
	x = x[:q.n*q.groups*g.h*g.w]
	y = y[:planes*q.p()]
	w = w[:q.groups*q.outer*g.kh*g.kw]
	var bp = fptr(nil)
	if b != nil {
		bp = fptr(b[:q.groups*q.outer])
	}
	hp := (g.oh-1)*g.sh + (g.kh-1)*g.dh + 1
	wp := (g.ow-1)*g.sw + (g.kw-1)*g.dw + 1
	inner := depthwiseFwd{c: c, cg: g.cgeom(), groups: q.groups, outer: q.outer, x: x, w: w, y: y, bp: bp, padLen: hp * wp}
	grain := 4
	if q.flops() < convParallelFlops/2 { // direct kernel: fewer flops per second
		grain = planes
	}
	parallelFor(c, planes, grain, depthwiseFusedRun{inner: inner, ep: ep, p: q.p()})
}

// depthwiseFusedRun is depthwiseFused's loop over output planes [lo,hi).
type depthwiseFusedRun struct {
	inner depthwiseFwd
	ep    convEpi
	p     int
}

func (b *depthwiseFusedRun) run(lo, hi int) {
	if b.ep.res == nil && b.ep.act.Kind == kernels.ActIdentity && !b.ep.act.Affine {
		b.inner.run(lo, hi)
		return
	}
	// The epilogue follows each input channel's planes (outer of them
	// share one padded input) while they are still in cache: on one
	// thread the whole range is every plane of the tensor (4.9 MB for
	// PP-OCRv4 det's first depthwise convolution).
	for t := lo; t < hi; {
		end := min(hi, (t/b.inner.outer+1)*b.inner.outer)
		b.inner.run(t, end)
		b.ep.apply(b.inner.y, t*b.p, end-t, b.p, b.p, nil)
		t = end
	}
}

// colsFused is the im2col forward with the epilogue: tasks of (n, g,
// chunk of positions); pointwise kernels are cut into column chunks too,
// so each GEMM's output block is still in cache for the epilogue.
func (c *CPU) colsFused(q *convPlan, grid, img, wt, bias []float32, ep convEpi) {
	P := q.p()
	var np int
	if q.geo.pointwise() {
		np = max(gemmAlign, colBudget/(q.k()+q.outer)/gemmAlign*gemmAlign)
		if items := q.n * q.groups; items*((P+np-1)/np) < c.threads {
			per := (c.threads + items - 1) / items
			np = ((P+per-1)/per + gemmAlign - 1) / gemmAlign * gemmAlign
		}
		np = min(max(np, 1), P)
	} else {
		np = q.chunk(c.threads, colBudget)
	}
	nc := (P + np - 1) / np
	items := q.n * q.groups
	dynamicFor(c, items*nc, c.convBlock(q, items, nc), colsFusedWork{c: c, q: q, grid: grid, img: img, wt: wt, bias: bias, np: np, nc: nc, ep: ep})
}

// colsFusedWork is colsFused's per-thread loop over claimed tasks.
type colsFusedWork struct {
	c                   *CPU
	q                   *convPlan
	grid, img, wt, bias []float32
	np, nc              int
	ep                  convEpi
}

func (b *colsFusedWork) work(cl *claimer) {
	q, grid, img, wt, np, nc := b.q, b.grid, b.img, b.wt, b.np, b.nc
	P, K := q.p(), q.k()
	pw := q.geo.pointwise()
	panel := b.c.getScratch(gemmPanel(K))
	defer b.c.putScratch(panel)
	var col *[]float32
	var src colSource
	if !pw {
		col = b.c.getScratch(K * np)
		defer b.c.putScratch(col)
		src = newColSource(b.c, q, img)
		defer src.release()
	}
	for lo, hi, ok := cl.claim(); ok; lo, hi, ok = cl.claim() {
		for t := lo; t < hi; t++ {
			ch, ng := t%nc, t/nc
			g, n := ng%q.groups, ng/q.groups
			p0 := ch * np
			w := min(np, P-p0)
			io, goff := q.imgOff(n, g), q.gridOff(n, g)
			a := wt[g*q.outer*K:]
			if pw {
				gemmNN(q.outer, w, K, a, K, img[io+p0:], P, 0, grid[goff+p0:], P, *panel)
			} else {
				src.fill(n, g, *col, p0, w)
				gemmNN(q.outer, w, K, a, K, *col, w, 0, grid[goff+p0:], P, *panel)
			}
			var bs []float32
			if b.bias != nil {
				bs = b.bias[g*q.outer:]
			}
			b.ep.apply(grid, goff+p0, q.outer, w, P, bs)
		}
	}
}

// shiftFused is the shifted-GEMM forward (conv_shift.go) with the
// epilogue applied to each task's cropped block.
func (c *CPU) shiftFused(q *convPlan, grid, img, wt, bias []float32, ep convEpi) {
	l := q.shiftLayout()
	var taps []float32
	if !gemm512 || q.geo.kh*q.geo.kw > maxTaps { // per-tap GEMMs want (kh*kw x outer x c) weights
		t := c.getScratch(len(wt))
		defer c.putScratch(t)
		q.tapWeights(wt, *t)
		taps = *t
	} else { // one GEMM over channels x taps wants each group's weights packed
		t := c.getScratch(q.groups * q.outer * q.k())
		defer c.putScratch(t)
		K := q.k()
		for gr := 0; gr < q.groups; gr++ {
			gemmPackA(q.outer, K, wt[gr*q.outer*K:], K, (*t)[gr*q.outer*K:])
		}
		taps = *t
	}
	cw := q.shiftChunk(c.threads, l.np)
	nc := (l.np + cw - 1) / cw
	items := q.n * q.groups
	// One image and group (batch 1, the serving case): pad its planes
	// once, split over the threads by channel, instead of every thread
	// padding all of them for its share of the positions.
	var shared []float32
	if items == 1 && c.chunks(items*nc, c.convBlock(q, items, nc)) > 1 {
		sp := c.getScratch(q.geo.c * l.cstride)
		defer c.putScratch(sp)
		shared = *sp
		parallelFor(c, q.geo.c, max(1, q.geo.c/c.threads), padChannels{q: q, l: l, img: img[q.imgOff(0, 0):], dst: shared})
	}
	dynamicFor(c, items*nc, c.convBlock(q, items, nc), shiftFusedWork{c: c, q: q, l: l, grid: grid, img: img, wt: wt, taps: taps, bias: bias, cw: cw, nc: nc, ep: ep, shared: shared})
}

// padChannels pads channels [lo,hi) of one image's planes (padPlane over
// a range of channels: each channel's phase planes are independent).
type padChannels struct {
	q        *convPlan
	l        shiftLayout
	img, dst []float32
}

func (b *padChannels) run(lo, hi int) {
	g := b.q.geo
	hw := g.h * g.w
	sub := *b.q
	sub.geo.c = hi - lo
	sub.padPlane(b.img[lo*hw:], b.dst[lo*b.l.cstride:], &b.l)
}

// shiftFusedWork is shiftFused's per-thread loop over claimed tasks
// (taps: the weights per tap, or packed for gemmOffs with AVX-512).
type shiftFusedWork struct {
	c                         *CPU
	q                         *convPlan
	l                         shiftLayout
	grid, img, wt, taps, bias []float32
	cw, nc                    int
	ep                        convEpi
	// shared, when set, is the one image's planes already padded.
	shared []float32
}

func (b *shiftFusedWork) work(cl *claimer) {
	q, grid, img, cw, nc := b.q, b.grid, b.img, b.cw, b.nc
	g := &q.geo
	l := &b.l
	wp, np := l.wq, l.np
	kk := g.kh * g.kw
	P := q.p()
	var pad *[]float32
	if b.shared != nil {
		pad = &b.shared
	} else {
		pad = b.c.getScratch(g.c * l.cstride)
		defer b.c.putScratch(pad)
	}
	ybuf := b.c.getScratch(q.outer * cw)
	defer b.c.putScratch(ybuf)
	// With AVX-512, one GEMM over taps x channels (K = c*kh*kw, the
	// weights' own layout, packed by gemmPackA into b.taps) whose B rows
	// are the shifted views of the padded planes, packed straight from
	// them: no per-tap partial sums.
	allTaps := gemm512 && kk <= maxTaps
	K := g.c
	var toff [maxTaps]int64
	if allTaps {
		K = g.c * kk
		for tap := 0; tap < kk; tap++ {
			toff[tap] = int64(l.off(g, tap))
		}
	}
	panel := b.c.getScratch(gemmPanel(K))
	defer b.c.putScratch(panel)
	// crop maps a position of the padded-width grid to the first output
	// position at or after it.
	crop := func(p int) int {
		oy, ox := p/wp, p%wp
		return oy*g.ow + min(ox, g.ow)
	}
	key := -1
	for lo, hi, ok := cl.claim(); ok; lo, hi, ok = cl.claim() {
		for t := lo; t < hi; t++ {
			ch, ng := t%nc, t/nc
			gr, n := ng%q.groups, ng/q.groups
			if ng != key && b.shared == nil {
				q.padPlane(img[q.imgOff(n, gr):], *pad, l)
				key = ng
			}
			p0 := ch * cw
			w := min(cw, np-p0)
			if allTaps {
				gemmOffs(q.outer, w, g.c, b.taps[gr*q.outer*K:], (*pad)[p0:], toff[:kk], l.cstride, *ybuf, w, *panel)
			} else {
				for tap := 0; tap < kk; tap++ {
					off := l.off(g, tap)
					beta := float32(1)
					if tap == 0 {
						beta = 0
					}
					gemmNN(q.outer, w, g.c, b.taps[(gr*kk+tap)*q.outer*g.c:], g.c,
						(*pad)[off+p0:], l.cstride, beta, *ybuf, w, *panel)
				}
			}
			// Crop: positions p in [p0,p0+w) with ox = p%wp < ow.
			goff := q.gridOff(n, gr)
			cropRows(*ybuf, w, grid[goff:], P, q.outer, p0, wp, g.ow)
			q0, q1 := crop(p0), crop(p0+w)
			var bs []float32
			if b.bias != nil {
				bs = b.bias[gr*q.outer:]
			}
			b.ep.apply(grid, goff+q0, q.outer, q1-q0, P, bs)
		}
	}
}
