package cpu

// convPlan is a convolution seen as GEMMs. For batch item n and group g:
// the image tensor (x for Conv2D, y for ConvTranspose2D) holds groups*geo.c
// channels of geo.h x geo.w; the grid tensor (y for Conv2D, x for
// ConvTranspose2D) holds groups*outer channels of geo.oh x geo.ow; the
// weights are groups blocks of outer x K with K = geo.rows() (Conv2D's
// (M,C/g,kH,kW) and ConvTranspose2D's (C,M/g,kH,kW) both have that form).
type convPlan struct {
	n, groups, outer int
	geo              convGeom
	// maxChunk, when positive, caps the positions per task (tests use it
	// to make chunk edges fall mid-row on small shapes).
	maxChunk int
	// shift forces the shifted-GEMM path on (1) or off (-1); 0 lets
	// shiftable decide. For tests.
	shift int
	// wino forces the Winograd path on (1, where the geometry allows it)
	// or off (-1); 0 lets winograd decide. For tests and benchmarks.
	wino int
	// taps is geo.tapMap() when tinyOK (read-only once the plan is made).
	taps []int32
}

// withTaps sets q.taps when q's columns go through the tiny-grid paths
// and returns q.
func (q *convPlan) withTaps() *convPlan {
	if q.tinyOK() {
		q.taps = q.geo.tapMap()
	}
	return q
}

// colBudget is how many floats of im2col columns one chunk may hold: small
// enough to stay in a core's L2 while sgemm packs it.
const colBudget = 128 * 1024

func (q *convPlan) k() int        { return q.geo.rows() }
func (q *convPlan) p() int        { return q.geo.cols() }
func (q *convPlan) imgSize() int  { return q.groups * q.geo.c * q.geo.h * q.geo.w }
func (q *convPlan) gridSize() int { return q.groups * q.outer * q.p() }
func (q *convPlan) imgOff(n, g int) int {
	return n*q.imgSize() + g*q.geo.c*q.geo.h*q.geo.w
}
func (q *convPlan) gridOff(n, g int) int { return n*q.gridSize() + g*q.outer*q.p() }

// chunk returns the number of grid positions per task: what fits the
// column budget (the whole grid for pointwise), cut further when there
// are fewer tasks than threads.
func (q *convPlan) chunk(threads, budget int) int {
	P := q.p()
	np := P
	if !q.geo.pointwise() {
		np = max(gemmAlign, budget/q.k()/gemmAlign*gemmAlign)
	}
	if items := q.n * q.groups; items*((P+np-1)/np) < threads {
		per := (threads + items - 1) / items
		np = ((P+per-1)/per + gemmAlign - 1) / gemmAlign * gemmAlign
	}
	if q.maxChunk > 0 {
		np = min(np, q.maxChunk)
	}
	return min(max(np, 1), P)
}

// colSource fills im2col chunks of img[n,g] for one parallel range. For a
// horizontal stride above 1 it first splits the image's rows by phase
// (once per (n,g); a range's tasks visit each (n,g) in one run), so the
// strided gathers become contiguous copies.
type colSource struct {
	c     *CPU
	q     *convPlan
	img   []float32
	split *[]float32
	key   int // n*groups+g held in split, or -1
}

func newColSource(c *CPU, q *convPlan, img []float32) colSource {
	s := colSource{c: c, q: q, img: img, key: -1}
	if q.geo.sw > 1 {
		s.split = c.getScratch(q.geo.splitLen())
	}
	return s
}

func (s *colSource) fill(n, g int, col []float32, p0, np int) {
	io := s.q.imgOff(n, g)
	if s.split == nil {
		s.q.geo.im2col(s.img[io:], col, p0, np)
		return
	}
	if k := n*s.q.groups + g; k != s.key {
		s.q.geo.splitPhases(s.img[io:], *s.split)
		s.key = k
	}
	s.q.geo.im2colSplit(*s.split, col, p0, np)
}

func (s *colSource) release() {
	if s.split != nil {
		s.c.putScratch(s.split)
	}
}

// forwardCols computes, for every n and g,
//
//	grid[n,g] (outer x P) = wt_g (outer x K) * im2col(img[n,g]) (K x P) + bias
//
// (bias, one per grid channel, may be nil): convForward with no epilogue
// beyond the bias.
func (c *CPU) forwardCols(q *convPlan, grid, img, wt, bias []float32) {
	c.convForward(q, grid, img, wt, bias, convEpi{})
}

// backwardImage computes, for every n and g,
//
//	img[n,g] = col2im(wt_g^T (K x outer) * grid[n,g] (outer x P)) + bias
//
// Chunks of one (n,g) overlap in img, so tasks are whole (n,g) items; with
// fewer items than threads each item's product is split across threads
// instead. bias (one per image channel) may be nil.
func (c *CPU) backwardImage(q *convPlan, img, grid, wt, bias []float32) {
	P, K, np := q.p(), q.k(), q.chunk(c.threads, colBudget)
	items := q.n * q.groups
	if q.shiftable() && (items >= c.threads || c.threads == 1) {
		c.backwardImageShift(q, img, grid, wt, bias)
		return
	}
	body := imageBackward{c: c, q: q, img: img, grid: grid, wt: wt, bias: bias, np: np}
	if q.geo.pointwise() {
		body.nc = (P + np - 1) / np
		parallelFor(c, items*body.nc, 1, imageBackwardPointwise{body})
		if bias != nil {
			parallelFor(c, items, 1, imageBias{body})
		}
		return
	}
	if items >= c.threads || c.threads == 1 {
		parallelFor(c, items, 1, body)
		return
	}
	col := c.getScratch(K * P)
	defer c.putScratch(col)
	for t := 0; t < items; t++ {
		g, n := t%q.groups, t/q.groups
		io, goff := q.imgOff(n, g), q.gridOff(n, g)
		c.gemm(true, false, K, P, q.outer, 1, wt[g*q.outer*K:], K, grid[goff:], P, 0, *col, P)
		clear(img[io : io+q.geo.c*q.geo.h*q.geo.w])
		q.geo.col2im(*col, img[io:], 0, P)
		body.addBias(n, g)
	}
}

// imageBackward is backwardImage's loop over whole (n,g) items, each
// product in column chunks of np positions.
type imageBackward struct {
	c                   *CPU
	q                   *convPlan
	img, grid, wt, bias []float32
	np, nc              int
}

// addBias adds the bias to img[n,g] (nothing when bias is nil).
func (b *imageBackward) addBias(n, g int) {
	if b.bias == nil {
		return
	}
	q := b.q
	hw := q.geo.h * q.geo.w
	io := q.imgOff(n, g)
	for ci := 0; ci < q.geo.c; ci++ {
		bv := b.bias[g*q.geo.c+ci]
		row := b.img[io+ci*hw : io+(ci+1)*hw]
		for i := range row {
			row[i] += bv
		}
	}
}

func (b *imageBackward) run(lo, hi int) {
	q, np := b.q, b.np
	P, K := q.p(), q.k()
	hw := q.geo.h * q.geo.w
	col := b.c.getScratch(K * np)
	defer b.c.putScratch(col)
	for t := lo; t < hi; t++ {
		g, n := t%q.groups, t/q.groups
		io, goff := q.imgOff(n, g), q.gridOff(n, g)
		clear(b.img[io : io+q.geo.c*hw])
		for p0 := 0; p0 < P; p0 += np {
			w := min(np, P-p0)
			sgemm(true, false, K, w, q.outer, 1, b.wt[g*q.outer*K:], K, b.grid[goff+p0:], P, 0, *col, w)
			q.geo.col2im(*col, b.img[io:], p0, w)
		}
		b.addBias(n, g)
	}
}

// imageBackwardPointwise is backwardImage for a pointwise plan: tasks of
// (n, g, chunk), one GEMM each straight into img.
type imageBackwardPointwise struct{ imageBackward }

func (b *imageBackwardPointwise) run(lo, hi int) {
	q, np, nc := b.q, b.np, b.nc
	P, K := q.p(), q.k()
	for t := lo; t < hi; t++ {
		ch, ng := t%nc, t/nc
		g, n := ng%q.groups, ng/q.groups
		p0 := ch * np
		w := min(np, P-p0)
		io, goff := q.imgOff(n, g), q.gridOff(n, g)
		sgemm(true, false, K, w, q.outer, 1, b.wt[g*q.outer*K:], K, b.grid[goff+p0:], P, 0, b.img[io+p0:], P)
	}
}

// imageBias adds the bias to items [lo,hi).
type imageBias struct{ imageBackward }

func (b *imageBias) run(lo, hi int) {
	for t := lo; t < hi; t++ {
		b.addBias(t/b.q.groups, t%b.q.groups)
	}
}

// biasGrad writes db[m] = sum over n and positions of grid[n][m], for a
// grid of n items with ch channels of size positions each.
func (c *CPU) biasGrad(db, grid []float32, n, ch, size int) {
	c.parallel(ch, 8, func(lo, hi int) {
		for m := lo; m < hi; m++ {
			var s float32
			for i := 0; i < n; i++ {
				row := grid[(i*ch+m)*size : (i*ch+m+1)*size]
				var r0, r1, r2, r3 float32
				j := 0
				for ; j+4 <= len(row); j += 4 {
					r0 += row[j]
					r1 += row[j+1]
					r2 += row[j+2]
					r3 += row[j+3]
				}
				for ; j < len(row); j++ {
					r0 += row[j]
				}
				s += (r0 + r1) + (r2 + r3)
			}
			db[m] = s
		}
	})
}
