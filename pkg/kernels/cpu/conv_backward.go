package cpu

import "vireo/pkg/kernels"

// The convolution backward as few, well-shaped GEMMs over blocks of images.
//
// Per image, a ResNet's late layers have tiny grids (4x4, 2x2 positions at
// 64x64 inputs) and large K = C*kH*kW: a GEMM per image then has an inner
// (weight gradient) or outer (input gradient) dimension of 4-16 and streams
// the whole weight matrix once per image, which is memory-bound. Here the
// columns of nb images sit side by side in one K x nb*P matrix, so each
// GEMM spans at least bwMinCols columns.
//
// Determinism: the weight gradient is a sum over images. It is cut into a
// fixed number of parts (contiguous ranges of blocks) that depends only on
// the shapes, each part summed in block order into its own buffer, and the
// parts added in part order; which thread runs a part, and when, does not
// change a bit. The input gradient writes disjoint images, so any schedule
// gives the same result.

// bwColBudget is how many floats one block's column matrix may hold
// (about a core's L2), bwMinCols how many columns a block aims for even
// past that budget, bwMaxParts the most partial sums the weight gradient
// keeps, and bwAllBudget the largest column matrix of a whole batch the
// weight gradient builds at once (floats).
const (
	bwColBudget = 256 * 1024
	bwMinCols   = 128
	bwMaxParts  = 16
	bwAllBudget = 8 << 20
)

// bwParts is the number of partial sums of the weight gradient: at most
// one per task and bwMaxParts, and few enough that adding them up (parts
// x outer x K) costs at most an eighth of building the columns (K x n*P).
// It depends on the shapes only, never on Threads.
func (q *convPlan) bwParts(s bwSplit) int {
	return max(1, min(s.tasks(q.groups), bwMaxParts, q.n*q.p()/(8*q.outer)))
}

// bwSplit is how the backward cuts a convolution's columns: blocks of nb
// whole images (nblk per group) or, when one image's columns exceed the
// budget, chunks of np positions of one image (nch per image; nb == 1).
type bwSplit struct {
	nb, nblk int
	np, nch  int
}

func (q *convPlan) bwSplit() bwSplit {
	P, K := q.p(), q.k()
	if (K*P > bwColBudget && P > bwMinCols) || q.maxChunk > 0 {
		np := max(bwMinCols, bwColBudget/K/gemmAlign*gemmAlign)
		if q.maxChunk > 0 {
			np = q.maxChunk // tests: chunk edges on small shapes
		}
		np = min(np, P)
		return bwSplit{nb: 1, nblk: q.n, np: np, nch: (P + np - 1) / np}
	}
	nb := max(1, bwColBudget/(K*P))
	if nb*P < bwMinCols {
		nb = (bwMinCols + P - 1) / P
	}
	nb = min(nb, q.n)
	return bwSplit{nb: nb, nblk: (q.n + nb - 1) / nb, np: P, nch: 1}
}

// tasks is the number of (group, block, chunk) tasks.
func (s bwSplit) tasks(groups int) int { return groups * s.nblk * s.nch }

// bwTask is one task's place: group g, images [n0, n0+nb), positions
// [p0, p0+w) (all of them when nb > 1), and its column count.
type bwTask struct {
	g, n0, nb, p0, w, cols int
}

func (q *convPlan) bwTask(s bwSplit, t int) bwTask {
	ch, bt := t%s.nch, t/s.nch
	blk, g := bt%s.nblk, bt/s.nblk
	n0 := blk * s.nb
	nb := min(s.nb, q.n-n0)
	p0 := ch * s.np
	w := min(s.np, q.p()-p0)
	cols := w
	if nb > 1 {
		cols = nb * q.p()
	}
	return bwTask{g: g, n0: n0, nb: nb, p0: p0, w: w, cols: cols}
}

// columns returns task k's column matrix (K x k.cols, leading dimension
// ldb), built in col (K*k.cols floats) unless the image itself is the
// matrix (pointwise, one image).
func (q *convPlan) columns(k bwTask, img, col []float32) (b []float32, ldb int) {
	P := q.p()
	pw := q.geo.pointwise()
	if k.nb == 1 {
		io := q.imgOff(k.n0, k.g)
		if pw {
			return img[io+k.p0:], P
		}
		q.geo.im2colLD(img[io:], col, k.p0, k.w, k.w)
		return col, k.w
	}
	if pw {
		gatherRows(img[q.imgOff(k.n0, k.g):], col, k.nb, q.imgSize(), q.geo.c, P, k.cols)
		return col, k.cols
	}
	for i := 0; i < k.nb; i++ {
		q.geo.im2colLD(img[q.imgOff(k.n0+i, k.g):], col[i*P:], 0, P, k.cols)
	}
	return col, k.cols
}

// gridCols returns task k's grid rows (outer x k.cols, leading dimension
// lda): the grid itself for one image, else gathered into buf.
func (q *convPlan) gridCols(k bwTask, grid, buf []float32) (a []float32, lda int) {
	P := q.p()
	if k.nb == 1 {
		return grid[q.gridOff(k.n0, k.g)+k.p0:], P
	}
	gatherRows(grid[q.gridOff(k.n0, k.g):], buf, k.nb, q.gridSize(), q.outer, P, k.cols)
	return buf, k.cols
}

// weightGradCols computes, for every g,
//
//	dwt_g (outer x K) = sum_n grid[n,g] (outer x P) * im2col(img[n,g])^T
//
// bit-reproducibly (see the file comment): each of bwParts parts
// accumulates its blocks in order and the parts are added in order. With
// too few parts to keep the threads busy it builds every image's columns
// at once instead and runs one GEMM per group split over the output.
// Small gradients (wgradSmallOK) go to weightGradSmall.
func (c *CPU) weightGradCols(q *convPlan, dwt, grid, img []float32) {
	if q.wgradSmallOK() {
		c.weightGradSmall(q, dwt, grid, img)
		return
	}
	s := q.bwSplit()
	tasks := s.tasks(q.groups)
	K := q.k()
	parts := q.bwParts(s)
	if parts < 2*c.threads && c.threads > 1 && q.k()*q.n*q.p() <= bwAllBudget {
		c.weightGradAll(q, dwt, grid, img)
		return
	}
	c.partSums(dwt, parts, func() (func(p int, acc []float32), func()) {
		cols := s.nb * s.np
		col := c.getScratch(K * cols)
		var buf *[]float32
		var gb []float32
		if s.nb > 1 {
			buf = c.getScratch(q.outer * cols)
			gb = *buf
		}
		work := func(p int, acc []float32) {
			// A part's first task overwrites its group's block (beta
			// 0); with several groups, blocks of groups the part never
			// visits must read zero.
			var beta float32
			if q.groups > 1 {
				clear(acc)
				beta = 1
			}
			for t := p * tasks / parts; t < (p+1)*tasks/parts; t++ {
				k := q.bwTask(s, t)
				b, ldb := q.columns(k, img, *col)
				a, lda := q.gridCols(k, grid, gb)
				sgemm(false, true, q.outer, K, k.cols, 1, a, lda, b, ldb, beta, acc[k.g*q.outer*K:], K)
				beta = 1
			}
		}
		return work, func() {
			c.putScratch(col)
			if buf != nil {
				c.putScratch(buf)
			}
		}
	})
}

// partSums sets dwt to the sum of parts partial sums, added in part
// order: the threads claim parts in turn, each running the work that
// worker makes once per thread (with its scratch, freed by the release
// worker returns) to write part p's sum into acc, dwt itself for part 0.
// Which thread runs a part, and when, does not change a bit.
func (c *CPU) partSums(dwt []float32, parts int, worker func() (work func(p int, acc []float32), release func())) {
	accs := make([]*[]float32, parts)
	for p := 1; p < parts; p++ {
		accs[p] = c.getScratch(len(dwt))
	}
	c.dynamic(parts, 1, func(claim func() (int, int, bool)) {
		work, release := worker()
		defer release()
		for lo, hi, ok := claim(); ok; lo, hi, ok = claim() {
			for p := lo; p < hi; p++ {
				acc := dwt
				if p > 0 {
					acc = *accs[p]
				}
				work(p, acc)
			}
		}
	})
	c.addParts(dwt, accs)
}

// addParts adds the partial sums accs[1:] to dwt (which holds part 0) in
// part order, whatever the threads, and returns them to the scratch pool.
func (c *CPU) addParts(dwt []float32, accs []*[]float32) {
	if len(accs) < 2 {
		return
	}
	c.parallel(len(dwt), 4096, func(lo, hi int) {
		d := dwt[lo:hi]
		for _, a := range accs[1:] {
			src := (*a)[lo:hi]
			for i := range d {
				d[i] += src[i]
			}
		}
	})
	for _, a := range accs[1:] {
		c.putScratch(a)
	}
}

// wgradSmallMax is the largest weight gradient (outer x K values, one
// group) that weightGradSmall computes (BenchmarkWeightGradSmall, 2
// threads, the Fashion recipe's shapes: the 16 x 9 stem 0.90 -> 0.17 ms,
// the 32 x 16 and 64 x 32 shortcuts 0.46-0.59 -> 0.24 and 0.37 -> 0.25,
// the 32 x 144 3x3/2 conv 1.55-1.64 -> 1.26-1.39; the 128 x 64 shortcut
// over 4x4 grids was a tie, 0.35 against 0.37, so it stays below),
// wgradPartBudget the most floats of dy and columns one of its parts
// covers (about half a core's L2), and wgradMinParts the parts it cuts a
// batch into at least (even loads for the threads).
const (
	wgradSmallMax   = 6144
	wgradPartBudget = 128 * 1024
	wgradMinParts   = 8
)

// wgradSmallOff turns weightGradSmall off (tests compare the two paths).
var wgradSmallOff = false

// wgradSmallOK is whether weightGradSmall takes q's weight gradient: on
// AVX-512 CPUs, one group, a gradient of at most wgradSmallMax values.
func (q *convPlan) wgradSmallOK() bool {
	return gemm512 && !wgradSmallOff && q.groups == 1 && q.outer*q.k() <= wgradSmallMax && q.maxChunk == 0
}

// weightGradSmall is weightGradCols for small gradients: parts of nb
// whole images (nb from the shapes only), each summed by wgradNT straight
// from dy and the image (pointwise) or its columns, the parts added in
// order, so the result does not depend on the threads. Unlike the GEMM
// path it never copies dy, and its sum over positions runs in registers.
func (c *CPU) weightGradSmall(q *convPlan, dwt, grid, img []float32) {
	P, K, M := q.p(), q.k(), q.outer
	nb := max(1, min(q.n, wgradPartBudget/((M+K)*P)))
	parts := max((q.n+nb-1)/nb, min(q.n, wgradMinParts))
	nb = (q.n + parts - 1) / parts
	parts = (q.n + nb - 1) / nb
	pw := q.geo.pointwise()
	c.partSums(dwt, parts, func() (func(p int, acc []float32), func()) {
		var col *[]float32
		if !pw {
			col = c.getScratch(nb * K * P)
		}
		work := func(p int, acc []float32) {
			n0 := p * nb
			cnt := min(nb, q.n-n0)
			b, bs := img[q.imgOff(n0, 0):], q.imgSize()
			if !pw {
				for i := 0; i < cnt; i++ {
					q.geo.im2colLD(img[q.imgOff(n0+i, 0):], (*col)[i*K*P:], 0, P, P)
				}
				b, bs = *col, K*P
			}
			wgradNT(M, K, P, cnt, grid[q.gridOff(n0, 0):], P, q.gridSize(), b, P, bs, 0, acc, K)
		}
		return work, func() {
			if col != nil {
				c.putScratch(col)
			}
		}
	})
}

// weightGradAll is weightGradCols with every image's columns built at
// once (K x n*P per group) and one GEMM per group, split over the output
// by gemm (each thread owns its rows or columns of dwt: deterministic).
func (c *CPU) weightGradAll(q *convPlan, dwt, grid, img []float32) {
	P, K := q.p(), q.k()
	total := q.n * P
	col := c.getScratch(K * total)
	defer c.putScratch(col)
	buf := c.getScratch(q.outer * total)
	defer c.putScratch(buf)
	for g := 0; g < q.groups; g++ {
		q.parallelColumns(c, img, *col, g)
		c.parallel(q.n, 1, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				gatherRows(grid[q.gridOff(n, g):], (*buf)[n*P:], 1, 0, q.outer, P, total)
			}
		})
		c.gemm(false, true, q.outer, K, total, 1, *buf, total, *col, total, 0, dwt[g*q.outer*K:], K)
	}
}

// backwardImageCols computes, for every n and g,
//
//	img[n,g] = col2im(wt_g^T (K x outer) * grid[n,g] (outer x P)) + bias
//
// over blocks of images (one GEMM per block or chunk). Each task owns its
// images, so the schedule does not change the result. With fewer blocks
// than two per thread, the GEMM of all images runs split across threads
// instead and the col2im after it in parallel over images.
func (c *CPU) backwardImageCols(q *convPlan, img, grid, wt, bias []float32) {
	s := q.bwSplit()
	items := q.groups * s.nblk
	if items < 2*c.threads && c.threads > 1 && s.nch == 1 {
		c.backwardImageAll(q, img, grid, wt, bias)
		return
	}
	K := q.k()
	hw := q.geo.h * q.geo.w
	ib := imageBackward{c: c, q: q, img: img, bias: bias}
	c.dynamic(items, 1, func(claim func() (int, int, bool)) {
		cols := s.nb * s.np
		col := c.getScratch(K * cols)
		defer c.putScratch(col)
		var buf *[]float32
		if s.nb > 1 {
			buf = c.getScratch(q.outer * cols)
			defer c.putScratch(buf)
		}
		for lo, hi, ok := claim(); ok; lo, hi, ok = claim() {
			for it := lo; it < hi; it++ {
				for ch := 0; ch < s.nch; ch++ {
					k := q.bwTask(s, it*s.nch+ch)
					if ch == 0 {
						for i := 0; i < k.nb; i++ {
							io := q.imgOff(k.n0+i, k.g)
							clear(img[io : io+q.geo.c*hw])
						}
					}
					var gb []float32
					if buf != nil {
						gb = *buf
					}
					a, lda := q.gridCols(k, grid, gb)
					sgemm(true, false, K, k.cols, q.outer, 1, wt[k.g*q.outer*K:], K, a, lda, 0, *col, k.cols)
					if k.nb == 1 {
						q.geo.col2imLD(*col, img[q.imgOff(k.n0, k.g):], k.p0, k.w, k.cols)
					} else {
						for i := 0; i < k.nb; i++ {
							q.geo.col2imLD((*col)[i*q.p():], img[q.imgOff(k.n0+i, k.g):], 0, q.p(), k.cols)
						}
					}
					if ch == s.nch-1 {
						for i := 0; i < k.nb; i++ {
							ib.addBias(k.n0+i, k.g)
						}
					}
				}
			}
		}
	})
}

// backwardImageAll is backwardImageCols as one GEMM per group over all
// images (split across threads by gemm), then col2im per image in
// parallel.
func (c *CPU) backwardImageAll(q *convPlan, img, grid, wt, bias []float32) {
	P, K := q.p(), q.k()
	total := q.n * P
	col := c.getScratch(K * total)
	defer c.putScratch(col)
	buf := c.getScratch(q.outer * total)
	defer c.putScratch(buf)
	hw := q.geo.h * q.geo.w
	ib := imageBackward{c: c, q: q, img: img, bias: bias}
	for g := 0; g < q.groups; g++ {
		c.parallel(q.n, 1, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				gatherRows(grid[q.gridOff(n, g):], (*buf)[n*P:], 1, 0, q.outer, P, total)
			}
		})
		c.gemm(true, false, K, total, q.outer, 1, wt[g*q.outer*K:], K, *buf, total, 0, *col, total)
		if q.tinyOK() {
			c.parallel(q.geo.c, 1, func(lo, hi int) { q.tinyCol2im(*col, img, g, lo, hi) })
			if bias != nil {
				c.parallel(q.n, 1, func(lo, hi int) {
					for n := lo; n < hi; n++ {
						ib.addBias(n, g)
					}
				})
			}
			continue
		}
		c.parallel(q.n, 1, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				io := q.imgOff(n, g)
				clear(img[io : io+q.geo.c*hw])
				q.geo.col2imLD((*col)[n*P:], img[io:], 0, P, total)
				ib.addBias(n, g)
			}
		})
	}
}

// flipOK reports whether the input gradient can run as a forward
// convolution of dy (backwardImageFlip): stride 1, dilation 1, one group,
// pads below the kernel size, and a grid of at least bwFlipMinP positions
// (below that the forward's per-image GEMMs are too small: at 2x2
// positions it ran at a third of backwardImageCols' rate, at 8x8 and
// 16x16 twice as fast). At 4x4 it was a little faster until the cols path
// ran all images in one GEMM (backwardImageAll): since then cols wins
// there (BenchmarkConvBackwardAB, 2 threads: 256 channels at batch 32
// 4.6-5.1 against 5.1-5.4 ms, 128 at batch 64 3.1-3.4 against 3.8-3.9;
// resnet18's three 4x4 stride-1 convolutions 9.3-11.7 -> 7.8-9.3 ms each
// in bench train --profile).
func (q *convPlan) flipOK() bool {
	g := &q.geo
	pb, pr := q.flipPads()
	return q.groups == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
		g.pt < g.kh && g.pl < g.kw && pb >= 0 && pr >= 0 && q.p() >= bwFlipMinP
}

// flipPads are the flipped convolution's bottom and right pads, which
// make its output h x w (stride 1: oh + (kh-1-pt) + pb - kh + 1 = h).
func (q *convPlan) flipPads() (pb, pr int) {
	g := &q.geo
	return g.h - g.oh + g.pt, g.w - g.ow + g.pl
}

// bwFlipMinP is the smallest grid (positions per image) backwardImageFlip
// takes.
const bwFlipMinP = 17

// backwardImageFlip computes backwardImageCols' result (bias nil) for a
// flipOK plan as the forward convolution of dy with the transposed,
// flipped weights, so no col2im is needed:
//
//	img[n][c][iy][ix] = sum_{m,ki,kj} wt[m][c][ki][kj] * grid[n][m][iy+pt-ki][ix+pl-kj]
//	                  = Conv2D(grid, wf, pads kh-1-pt, kw-1-pl, ...)[n][c][iy][ix]
//	wf[c][m][a][b] = wt[m][c][kh-1-a][kw-1-b]
func (c *CPU) backwardImageFlip(q *convPlan, img, grid, wt []float32) error {
	g := &q.geo
	M, C, kk := q.outer, g.c, g.kh*g.kw
	wf := c.getScratch(len(wt))
	defer c.putScratch(wf)
	for m := 0; m < M; m++ {
		for ci := 0; ci < C; ci++ {
			src := wt[(m*C+ci)*kk : (m*C+ci+1)*kk]
			dst := (*wf)[(ci*M+m)*kk : (ci*M+m+1)*kk]
			for t := range src {
				dst[kk-1-t] = src[t]
			}
		}
	}
	pb, pr := q.flipPads()
	p := kernels.ConvParams{Pads: [4]int{g.kh - 1 - g.pt, g.kw - 1 - g.pl, pb, pr}}
	x := &kernels.Tensor{Shape: kernels.Shape{q.n, M, g.oh, g.ow}, Data: grid[:q.n*M*q.p()]}
	w := &kernels.Tensor{Shape: kernels.Shape{C, M, g.kh, g.kw}, Data: (*wf)[:len(wt)]}
	y := &kernels.Tensor{Shape: kernels.Shape{q.n, C, g.h, g.w}, Data: img[:q.n*C*g.h*g.w]}
	return c.Conv2D(y, x, w, nil, p)
}
