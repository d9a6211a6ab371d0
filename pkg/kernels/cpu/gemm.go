package cpu

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// gemmParallelFlops is the size (m*n*k) from which a GEMM is split across
// threads; below it the hand-off costs more than it saves.
const gemmParallelFlops = 96 * 96 * 96

// gemmAlign keeps chunk edges on multiples of the sgemm micro-kernel's
// register block so no chunk ends in a slow partial block.
const gemmAlign = 16

// gemm is sgemm split across the backend's threads: by rows of C (M) when
// m >= n, else by columns (N); each chunk is one single-threaded sgemm call
// (on AVX-512, A transposed and B not go to gemmAVX512 instead). It equals
// the plain loop in sgemm's comment.
func (c *CPU) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	if gemm512 && !gemmOpenBLASOnly && transA && !transB && lda == m && alpha == 1 && (beta == 0 || beta == 1) && k > 0 && m > 0 && n >= 4*gemmNNBlock {
		c.gemmAVX512(m, n, k, a, b, ldb, beta, cc, ldc)
		return
	}
	if c.threads == 1 || m*n*k < gemmParallelFlops {
		sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
		return
	}
	body := gemmChunks{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: cc, ldc: ldc}
	if m >= n {
		parallelFor(c, (m+gemmAlign-1)/gemmAlign, 1, gemmRows{body})
		return
	}
	parallelFor(c, (n+gemmAlign-1)/gemmAlign, 1, gemmCols{body})
}

// gemmChunks are gemm's operands; gemmRows and gemmCols run blocks
// [lo,hi) of gemmAlign rows or columns of C.
type gemmChunks struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

type gemmRows struct{ gemmChunks }

func (g *gemmRows) run(lo, hi int) {
	i0, i1 := lo*gemmAlign, min(hi*gemmAlign, g.m)
	aoff := i0 * g.lda
	if g.transA {
		aoff = i0
	}
	sgemm(g.transA, g.transB, i1-i0, g.n, g.k, g.alpha, g.a[aoff:], g.lda, g.b, g.ldb, g.beta, g.c[i0*g.ldc:], g.ldc)
}

type gemmCols struct{ gemmChunks }

func (g *gemmCols) run(lo, hi int) {
	j0, j1 := lo*gemmAlign, min(hi*gemmAlign, g.n)
	boff := j0
	if g.transB {
		boff = j0 * g.ldb
	}
	sgemm(g.transA, g.transB, g.m, j1-j0, g.k, g.alpha, g.a, g.lda, g.b[boff:], g.ldb, g.beta, g.c[j0:], g.ldc)
}

// scratchPool keeps float32 work buffers (padded planes, im2col columns,
// per-thread partial sums) for a backend's kernels, one free list per
// power-of-two size class so a request never gets a buffer too small for
// it. It is a plain mutex-guarded free list, not a sync.Pool: a sync.Pool
// may miss (a Put on one P, the next Get on another; a GC empties it),
// and each miss allocates a large buffer, so steady-state calls would not
// be allocation-free. It holds at most the most buffers of each class in
// use at once (about Threads per kernel), until the backend is dropped.
type scratchPool struct {
	mu   sync.Mutex
	free [64][]*[]float32
}

// getScratch returns a buffer of n elements (contents undefined) with
// capacity the next power of two; give it back with putScratch.
func (c *CPU) getScratch(n int) *[]float32 {
	class := bits.Len(uint(max(n, 1) - 1))
	s := &c.scratch
	s.mu.Lock()
	if l := s.free[class]; len(l) > 0 {
		p := l[len(l)-1]
		l[len(l)-1] = nil
		s.free[class] = l[:len(l)-1]
		s.mu.Unlock()
		*p = (*p)[:n]
		return p
	}
	s.mu.Unlock()
	b := make([]float32, n, 1<<class)
	return &b
}

func (c *CPU) putScratch(p *[]float32) {
	class := bits.Len(uint(cap(*p)) - 1)
	s := &c.scratch
	s.mu.Lock()
	s.free[class] = append(s.free[class], p)
	s.mu.Unlock()
}

// dynamic runs fn on up to Threads goroutines (the caller's included);
// each fn call claims blocks of blk indices of [0,n) until none are left.
// Unlike parallel's fixed split it keeps every thread busy when another
// process takes a core away for a while; fn sets up its per-thread
// scratch once and reuses it across its claims.
func (c *CPU) dynamic(n, blk int, fn func(claim func() (lo, hi int, ok bool))) {
	if n <= 0 {
		return
	}
	blk = max(blk, 1)
	var next atomic.Int64
	claim := func() (int, int, bool) {
		lo := int(next.Add(int64(blk))) - blk
		if lo >= n {
			return 0, 0, false
		}
		return lo, min(lo+blk, n), true
	}
	c.parallel(min(c.threads, (n+blk-1)/blk), 1, func(_, _ int) { fn(claim) })
}

// taskBlock is the claim size for n tasks grouped in items of per tasks:
// whole items when there are enough to share out, else single tasks.
func (c *CPU) taskBlock(items, per int) int {
	if items >= 2*c.threads {
		return per
	}
	return 1
}

// gemmOpenBLASOnly turns gemmAVX512 off (tests compare the two paths).
var gemmOpenBLASOnly = false

// gemmNNBlock is the column block of gemmAVX512's threads (a multiple of
// vireo_gemm512's 32-column panels).
const gemmNNBlock = 64

// gemmAVX512 is gemm for A transposed, B not, alpha 1 and beta 0 or 1 on
// AVX-512 CPUs (the convolutions' input gradient, dcol = W^T dY), through
// gemmNN, our kernel: A (k x m, lda) is transposed into scratch, then the
// columns of C are split across the threads in blocks of gemmNNBlock.
// BenchmarkGemmTransA, resnet18's stride-2 shapes at batch 32, 2 threads:
// against OpenBLAS's 256-bit Haswell kernels (AMD machine, quiet) 230-237
// and 165-191 GFLOP/s against 137-138 and 134-136; against its AVX-512
// SkylakeX kernels (Intel machine) a tie on m576 n2048 (157-160 against
// 148-177) and a loss on m1152 n512 (128 against 180), while whole
// resnet18 training steps stayed as fast or faster through this path
// (326-351 ms against 337-396, three interleaved pairs), so it is kept for
// both. Plain A x B is left to OpenBLAS.
func (c *CPU) gemmAVX512(m, n, k int, a []float32, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	t := c.getScratch(m * k)
	defer c.putScratch(t)
	c.transpose2D(*t, a[:k*m], 1, k, m)
	parallelFor(c, (n+gemmNNBlock-1)/gemmNNBlock, max(1, gemmParallelFlops/(m*k*gemmNNBlock)),
		gemmNNCols{c: c, m: m, n: n, k: k, a: *t, lda: k, b: b, ldb: ldb, beta: beta, cc: cc, ldc: ldc})
}

// gemmNNCols runs gemmNN on column blocks [lo, hi) of gemmNNBlock.
type gemmNNCols struct {
	c             *CPU
	m, n, k       int
	a, b, cc      []float32
	lda, ldb, ldc int
	beta          float32
}

func (g *gemmNNCols) run(lo, hi int) {
	j0, j1 := lo*gemmNNBlock, min(hi*gemmNNBlock, g.n)
	panel := g.c.getScratch(gemmPanel(g.k))
	defer g.c.putScratch(panel)
	gemmNN(g.m, j1-j0, g.k, g.a, g.lda, g.b[j0:], g.ldb, g.beta, g.cc[j0:], g.ldc, *panel)
}
