package cpu

// ConvTranspose2D whose stride equals its kernel (no overlap between the
// kernel's footprints, no pads, no dilation): the 2x2 stride-2 upsampling
// of segmentation heads (PP-OCR's DB head). Each output pixel is written
// once, so instead of a col2im that clears y and accumulates into it,
// a chunk of input rows runs as one GEMM (kernel taps x channels by
// positions, small enough to stay in cache) whose rows are scattered
// straight into y with the bias.

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_ct_scatter
#cgo nocallback vireo_ct_scatter

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_CT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_CT_CLONES
#endif

// vireo_ct_scatter: for m < M, ki < kh, yy < rows, ox < W, kj < kw,
// y[m*ystride + (yy*kh+ki)*W*kw + ox*kw+kj] = col[((m*kh+ki)*kw+kj)*ldc + yy*W+ox] + (b ? b[m] : 0).
VIREO_CT_CLONES
void vireo_ct_scatter(long M, long kh, long kw, long rows, long W, const float *col, long ldc,
		const float *b, float *y, long ystride) {
	for (long m = 0; m < M; m++) {
		const float bm = b ? b[m] : 0.0f;
		for (long ki = 0; ki < kh; ki++) {
			const float *s = col + (m * kh + ki) * kw * ldc;
			for (long yy = 0; yy < rows; yy++) {
				float *restrict d = y + m * ystride + (yy * kh + ki) * W * kw;
				if (kw == 2) {
					const float *restrict s0 = s + yy * W, *restrict s1 = s0 + ldc;
					for (long ox = 0; ox < W; ox++) {
						d[2 * ox] = s0[ox] + bm;
						d[2 * ox + 1] = s1[ox] + bm;
					}
					continue;
				}
				for (long kj = 0; kj < kw; kj++) {
					const float *restrict sk = s + kj * ldc + yy * W;
					for (long ox = 0; ox < W; ox++)
						d[ox * kw + kj] = sk[ox] + bm;
				}
			}
		}
	}
}
*/
import "C"

// disjointOK reports whether ConvTranspose2D can run as convTransposeDisjoint:
// one group, stride equal to the kernel, no pads or dilation, and y
// exactly the input grid times the stride (no output padding).
func (q *convPlan) disjointOK() bool {
	g := &q.geo
	return q.groups == 1 && g.kh == g.sh && g.kw == g.sw && g.dh == 1 && g.dw == 1 &&
		g.pt == 0 && g.pl == 0 && g.h == g.oh*g.sh && g.w == g.ow*g.sw
}

// convTransposeDisjoint computes ConvTranspose2D for a disjointOK plan:
// y is the image (geo.c channels of h x w), x the grid (outer channels of
// oh x ow), wt (outer x c*kh*kw). Tasks are chunks of input rows of one
// image: col = wt^T * x[rows] (gemmNN), then vireo_ct_scatter into y.
func (c *CPU) convTransposeDisjoint(q *convPlan, y, x, wt, bias []float32) {
	g := &q.geo
	K, P := q.k(), q.p()
	wT := c.getScratch(K * q.outer)
	defer c.putScratch(wT)
	for i := 0; i < q.outer; i++ {
		for k := 0; k < K; k++ {
			(*wT)[k*q.outer+i] = wt[i*K+k]
		}
	}
	rows := max(1, colBudget/(K*g.ow))
	if nc := (g.oh + rows - 1) / rows; q.n*nc < c.threads {
		per := (c.threads + q.n - 1) / q.n
		rows = max(1, (g.oh+per-1)/per)
	}
	nc := (g.oh + rows - 1) / rows
	grain := 1
	if q.flops() < convParallelFlops {
		grain = q.n * nc
	}
	parallelFor(c, q.n*nc, grain, ctDisjoint{c: c, q: q, y: y, x: x, wT: *wT, bias: bias, rows: rows, nc: nc, K: K, P: P})
}

// ctDisjoint is convTransposeDisjoint's loop body over (image, chunk of
// input rows) tasks, a struct so the workers get it without allocating.
type ctDisjoint struct {
	c              *CPU
	q              *convPlan
	y, x, wT, bias []float32
	rows, nc, K, P int
}

func (b *ctDisjoint) run(lo, hi int) {
	c, q, g := b.c, b.q, &b.q.geo
	K, P, rows, nc := b.K, b.P, b.rows, b.nc
	plane := g.h * g.w
	col := c.getScratch(K * rows * g.ow)
	defer c.putScratch(col)
	panel := c.getScratch(gemmPanel(q.outer))
	defer c.putScratch(panel)
	for t := lo; t < hi; t++ {
		n, r0 := t/nc, (t%nc)*rows
		rr := min(rows, g.oh-r0)
		cols := rr * g.ow
		gemmNN(K, cols, q.outer, b.wT, q.outer, b.x[n*q.outer*P+r0*g.ow:], P, 0, *col, cols, *panel)
		dst := b.y[n*g.c*plane+r0*g.sh*g.w:]
		_ = dst[(g.c-1)*plane+rr*g.sh*g.w-1]
		var bp *C.float
		if b.bias != nil {
			bp = fptr(b.bias[:g.c])
		}
		C.vireo_ct_scatter(C.long(g.c), C.long(g.kh), C.long(g.kw), C.long(rr), C.long(g.ow),
			fptr(*col), C.long(cols), bp, fptr(dst), C.long(plane))
	}
}
