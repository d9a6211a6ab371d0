package cpu

// im2col and col2im with a leading dimension, for the backward's batched
// column matrices (conv_backward.go): the columns of several images sit
// side by side in one K x ld matrix, image i's at [i*P, (i+1)*P), so one
// GEMM covers all of them. C for the same reason as conv_c.go (Go does
// not vectorise these copies).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_bw_im2col
#cgo nocallback vireo_bw_im2col
#cgo noescape vireo_bw_col2im
#cgo nocallback vireo_bw_col2im
#cgo noescape vireo_bw_gather
#cgo nocallback vireo_bw_gather
#cgo noescape vireo_tiny_im2col
#cgo nocallback vireo_tiny_im2col
#cgo noescape vireo_tiny_col2im
#cgo nocallback vireo_tiny_col2im
#include <string.h>
#include "vireo_rows.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_BW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_BW_CLONES
#endif

typedef struct {
	int c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow;
} vireo_bw_geom;

// vireo_bw_xrange: output columns [lo,hi) within [ox0,ox1) whose image
// column ox*sw+xoff lies in [0,w).
static inline void vireo_bw_xrange(const vireo_bw_geom *g, int xoff, int ox0, int ox1, int *lo, int *hi) {
	int l = 0, h;
	if (xoff < 0) l = (-xoff + g->sw - 1) / g->sw;
	int w1 = g->w - 1 - xoff;
	h = w1 < 0 ? 0 : w1 / g->sw + 1;
	if (l < ox0) l = ox0;
	if (h > ox1) h = ox1;
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

#ifdef VIREO_ROWS_512
// vireo_bw_rows512 is vireo_bw_im2col (back 0) or vireo_bw_col2im (back
// 1: the same additions in the same order) for whole images (p0 0, np
// oh*ow) whose rows vireo_row512 takes (vireo_rows.h). img is only read
// when back is 0, col only when it is 1.
__attribute__((target("avx512f"), always_inline))
static inline void vireo_bw_rows512(const vireo_bw_geom *g, float *img, float *col, long ld, int back) {
	long hw = (long)g->h * g->w, r = 0;
	for (int ci = 0; ci < g->c; ci++) {
		float *src = img + ci * hw;
		for (int ki = 0; ki < g->kh; ki++) {
			for (int kj = 0; kj < g->kw; kj++, r++) {
				float *dst = col + r * ld;
				int xoff = kj * g->dw - g->pl;
				int lo, hi;
				vireo_bw_xrange(g, xoff, 0, g->ow, &lo, &hi);
				__mmask16 m0, m1;
				vireo_row_masks(lo, hi, g->sw, &m0, &m1);
				for (int oy = 0; oy < g->oh; oy++) {
					int iy = oy * g->sh - g->pt + ki * g->dh;
					float *in = iy >= 0 && iy < g->h ? src + (long)iy * g->w + xoff : 0;
					if (!back)
						vireo_row512(dst + (long)oy * g->ow, in, g->ow, g->sw, m0, m1);
					else if (in && hi > lo)
						vireo_row512_add(in, dst + (long)oy * g->ow, g->ow, g->sw, m0, m1);
				}
			}
		}
	}
}

__attribute__((target("avx512f")))
static void vireo_bw_im2col512(const vireo_bw_geom *g, const float *img, float *col, long ld) {
	vireo_bw_rows512(g, (float *)img, col, ld, 0);
}

__attribute__((target("avx512f")))
static void vireo_bw_col2im512(const vireo_bw_geom *g, const float *col, float *img, long ld) {
	vireo_bw_rows512(g, img, (float *)col, ld, 1);
}
#endif

// vireo_bw_im2col: columns [p0,p0+np) of img's column matrix into col
// (row r at col + r*ld).
VIREO_BW_CLONES __attribute__((optimize("no-tree-loop-distribute-patterns")))
void vireo_bw_im2col(const vireo_bw_geom *g, const float *restrict img, float *restrict col, long p0, long np, long ld) {
#ifdef VIREO_ROWS_512
	if (p0 == 0 && np == (long)g->oh * g->ow && vireo_rows_fit(g->ow, g->sw) && vireo_rows_has512()) {
		vireo_bw_im2col512(g, img, col, ld);
		return;
	}
#endif
	long hw = (long)g->h * g->w, r = 0;
	int oyStart = (int)(p0 / g->ow), oxStart = (int)(p0 - (long)oyStart * g->ow);
	for (int ci = 0; ci < g->c; ci++) {
		const float *src = img + ci * hw;
		for (int ki = 0; ki < g->kh; ki++) {
			for (int kj = 0; kj < g->kw; kj++, r++) {
				float *dst = col + r * ld;
				int xoff = kj * g->dw - g->pl;
				int flo, fhi;
				vireo_bw_xrange(g, xoff, 0, g->ow, &flo, &fhi);
				long d = 0;
				int oy = oyStart, ox0 = oxStart;
				while (d < np) {
					int ox1 = g->ow;
					if ((long)(ox1 - ox0) > np - d) ox1 = (int)(ox0 + (np - d));
					float *seg = dst + d - ox0; // seg[ox] for ox in [ox0,ox1)
					d += ox1 - ox0;
					int iy = oy * g->sh - g->pt + ki * g->dh;
					if (iy < 0 || iy >= g->h) {
						for (int i = ox0; i < ox1; i++) seg[i] = 0;
					} else {
						int lo = flo < ox0 ? ox0 : flo, hi = fhi > ox1 ? ox1 : fhi;
						if (hi < lo) hi = lo;
						for (int i = ox0; i < lo; i++) seg[i] = 0;
						for (int i = hi; i < ox1; i++) seg[i] = 0;
						const float *in = src + (long)iy * g->w + xoff;
						if (g->sw == 1) {
#pragma GCC ivdep
							for (int i = lo; i < hi; i++) seg[i] = in[i];
						} else if (g->sw == 2) {
							for (int i = lo; i < hi; i++) seg[i] = in[2 * i];
						} else {
							for (int i = lo; i < hi; i++) seg[i] = in[(long)i * g->sw];
						}
					}
					oy++;
					ox0 = 0;
				}
			}
		}
	}
}

// vireo_bw_col2im: adds columns [p0,p0+np) of col (row r at col + r*ld)
// back into img.
VIREO_BW_CLONES
void vireo_bw_col2im(const vireo_bw_geom *g, const float *restrict col, float *restrict img, long p0, long np, long ld) {
#ifdef VIREO_ROWS_512
	if (p0 == 0 && np == (long)g->oh * g->ow && vireo_rows_fit(g->ow, g->sw) && vireo_rows_has512()) {
		vireo_bw_col2im512(g, col, img, ld);
		return;
	}
#endif
	long hw = (long)g->h * g->w, r = 0;
	for (int ci = 0; ci < g->c; ci++) {
		float *dsti = img + ci * hw;
		for (int ki = 0; ki < g->kh; ki++) {
			for (int kj = 0; kj < g->kw; kj++, r++) {
				const float *src = col + r * ld;
				int xoff = kj * g->dw - g->pl;
				long d = 0;
				for (long p = p0; p < p0 + np;) {
					int oy = (int)(p / g->ow);
					int ox0 = (int)(p - (long)oy * g->ow);
					int ox1 = g->ow;
					if ((long)ox1 > ox0 + (p0 + np - p)) ox1 = (int)(ox0 + (p0 + np - p));
					int len = ox1 - ox0;
					const float *seg = src + d;
					d += len;
					p += len;
					int iy = oy * g->sh - g->pt + ki * g->dh;
					if (iy < 0 || iy >= g->h) continue;
					int lo, hi;
					vireo_bw_xrange(g, xoff, ox0, ox1, &lo, &hi);
					int n = hi - lo;
					if (n <= 0) continue;
					const float *restrict in = seg + (lo - ox0);
					float *restrict out = dsti + (long)iy * g->w + (long)lo * g->sw + xoff;
					if (g->sw == 1) {
						for (int i = 0; i < n; i++) out[i] += in[i];
					} else if (g->sw == 2) {
						for (int i = 0; i < n; i++) out[2 * i] += in[i];
					} else {
						for (int i = 0; i < n; i++) out[(long)i * g->sw] += in[i];
					}
				}
			}
		}
	}
}

// vireo_bw_gather: dst[r*ld + i*p + j] = src[i*stride + r*p + j] for
// rows r < rows, images i < nb, positions j < p.
VIREO_BW_CLONES
void vireo_bw_gather(const float *restrict src, float *restrict dst, int nb, long stride, int rows, long p, long ld) {
	for (int i = 0; i < nb; i++) {
		const float *s = src + (long)i * stride;
		float *d = dst + (long)i * p;
		for (int r = 0; r < rows; r++) memcpy(d + (long)r * ld, s + (long)r * p, (size_t)p * sizeof(float));
	}
}

// vireo_tiny_im2col: the batch's columns of channels [c0,c1) of a tiny
// grid, row by row of the column matrix:
// col[(c*kk+t)*ld + n*P + p] = img[n*istride + c*hw + map[t*P+p]] (0
// where map is -1), for images n < N.
VIREO_BW_CLONES
void vireo_tiny_im2col(const float *img, long istride, long hw, float *col, long ld,
                       long N, long P, long kk, const int *map, long c0, long c1) {
	for (long c = c0; c < c1; c++) {
		const float *plane = img + c * hw;
		for (long t = 0; t < kk; t++) {
			const int *m = map + t * P;
			float *restrict row = col + (c * kk + t) * ld;
			for (long n = 0; n < N; n++) {
				const float *src = plane + n * istride;
				float *restrict d = row + n * P;
				for (long p = 0; p < P; p++) d[p] = m[p] >= 0 ? src[m[p]] : 0.0f;
			}
		}
	}
}

// vireo_tiny_col2im: the adjoint, for channels [c0,c1): clears each
// image's plane c, then adds col[(c*kk+t)*ld + n*P + p] into
// img[n*istride + c*hw + map[t*P+p]] in the order t, p.
VIREO_BW_CLONES
void vireo_tiny_col2im(const float *col, long ld, float *img, long istride, long hw,
                       long N, long P, long kk, const int *map, long c0, long c1) {
	for (long c = c0; c < c1; c++) {
		float *plane = img + c * hw;
		for (long n = 0; n < N; n++) memset(plane + n * istride, 0, (size_t)hw * sizeof(float));
		for (long t = 0; t < kk; t++) {
			const int *m = map + t * P;
			const float *row = col + (c * kk + t) * ld;
			for (long n = 0; n < N; n++) {
				float *dst = plane + n * istride;
				const float *s = row + n * P;
				for (long p = 0; p < P; p++)
					if (m[p] >= 0) dst[m[p]] += s[p];
			}
		}
	}
}
*/
import "C"

import "unsafe"

// tinyMaxP is the largest grid (positions per image) whose columns are
// built and scattered for the whole batch at once, channel by channel
// (tinyIm2col, tinyCol2im), instead of image by image: at 2x2 and 4x4
// positions a row of an image's columns is 4-16 floats, and the per-image
// loops spent their time setting rows up and missing the cache (resnet18's
// 2x2 input gradient: col2im 44% of its time).
const tinyMaxP = 16

// tinyOK reports whether q's columns go through tinyIm2col/tinyCol2im.
func (q *convPlan) tinyOK() bool { return q.p() <= tinyMaxP && !q.geo.pointwise() }

// tapMap returns, for each tap t = ki*kw+kj and output position p, the
// offset in an image plane the tap reads (iy*w+ix), or -1 in the padding.
func (g *convGeom) tapMap() []int32 {
	P, kk := g.oh*g.ow, g.kh*g.kw
	m := make([]int32, kk*P)
	for ki := 0; ki < g.kh; ki++ {
		for kj := 0; kj < g.kw; kj++ {
			t := ki*g.kw + kj
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					iy, ix := oy*g.sh-g.pt+ki*g.dh, ox*g.sw-g.pl+kj*g.dw
					v := int32(-1)
					if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
						v = int32(iy*g.w + ix)
					}
					m[t*P+oy*g.ow+ox] = v
				}
			}
		}
	}
	return m
}

// tapsPtr is q's tap map for C: the one the plan's constructor made
// (withTaps), or for a plan built by hand a fresh one. It never writes
// q: a cached plan is shared by concurrent calls.
func (q *convPlan) tapsPtr() *C.int {
	m := q.taps
	if m == nil {
		m = q.geo.tapMap()
	}
	return (*C.int)(unsafe.Pointer(&m[0]))
}

// tinyDims returns the positions per image, the plane size and the
// column matrix's leading dimension of the tiny-grid paths, after checking
// that img holds group g of every image and col every row (so the C loops
// cannot overrun).
func (q *convPlan) tinyDims(img, col []float32, g int) (P, hw, ld int) {
	P, hw, ld = q.p(), q.geo.h*q.geo.w, q.n*q.p()
	_ = img[q.imgOff(q.n-1, g)+q.geo.c*hw-1]
	_ = col[q.geo.rows()*ld-1]
	return P, hw, ld
}

// tinyIm2col builds the columns of channels [c0,c1) of group g for all
// q.n images (K rows of n*P, image n's at column n*P, as batchColumns):
//
//	col[(c*kk+t)*ld + n*P + p] = img[imgOff(n,g) + c*hw + tap(t,p)] (0 outside)
func (q *convPlan) tinyIm2col(img, col []float32, g, c0, c1 int) {
	if c0 >= c1 {
		return
	}
	P, hw, ld := q.tinyDims(img, col, g)
	C.vireo_tiny_im2col(fptr(img[q.imgOff(0, g):]), C.long(q.imgSize()), C.long(hw), fptr(col), C.long(ld),
		C.long(q.n), C.long(P), C.long(q.geo.kh*q.geo.kw), q.tapsPtr(), C.long(c0), C.long(c1))
}

// tinyCol2im is tinyIm2col's adjoint for channels [c0,c1) of group g:
// each image's plane is cleared, then every inside column value added.
func (q *convPlan) tinyCol2im(col, img []float32, g, c0, c1 int) {
	if c0 >= c1 {
		return
	}
	P, hw, ld := q.tinyDims(img, col, g)
	C.vireo_tiny_col2im(fptr(col), C.long(ld), fptr(img[q.imgOff(0, g):]), C.long(q.imgSize()), C.long(hw),
		C.long(q.n), C.long(P), C.long(q.geo.kh*q.geo.kw), q.tapsPtr(), C.long(c0), C.long(c1))
}

func (g *convGeom) bwGeom() C.vireo_bw_geom {
	return C.vireo_bw_geom{
		c: C.int(g.c), h: C.int(g.h), w: C.int(g.w), kh: C.int(g.kh), kw: C.int(g.kw),
		sh: C.int(g.sh), sw: C.int(g.sw), dh: C.int(g.dh), dw: C.int(g.dw),
		pt: C.int(g.pt), pl: C.int(g.pl), oh: C.int(g.oh), ow: C.int(g.ow),
	}
}

// im2colLD is im2col with col's rows ld apart (ld >= np):
//
//	col[r*ld+p-p0] = img[ci][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw] (0 outside)
//
// for r = (ci*kh+ki)*kw+kj and p in [p0, p0+np), oy, ox = p/ow, p%ow.
func (g *convGeom) im2colLD(img, col []float32, p0, np, ld int) {
	if np == 0 {
		return
	}
	img = img[:g.c*g.h*g.w] // bounds the C loops: panics rather than overrun
	col = col[:(g.rows()-1)*ld+np]
	cg := g.bwGeom()
	C.vireo_bw_im2col(&cg, fptr(img), fptr(col), C.long(p0), C.long(np), C.long(ld))
}

// col2imLD is col2im with col's rows ld apart: the adjoint of im2colLD,
//
//	img[ci][iy][ix] += col[r*ld+p-p0] for every inside (r, p).
func (g *convGeom) col2imLD(col, img []float32, p0, np, ld int) {
	if np == 0 {
		return
	}
	img = img[:g.c*g.h*g.w]
	col = col[:(g.rows()-1)*ld+np]
	cg := g.bwGeom()
	C.vireo_bw_col2im(&cg, fptr(col), fptr(img), C.long(p0), C.long(np), C.long(ld))
}

// gatherRows lays nb images' rows x p blocks (image i at src[i*stride:])
// side by side in dst, a rows x ld matrix (ld >= nb*p):
//
//	dst[r*ld + i*p + j] = src[i*stride + r*p + j]
func gatherRows(src, dst []float32, nb, stride, rows, p, ld int) {
	if nb == 0 || rows == 0 || p == 0 {
		return
	}
	src = src[:(nb-1)*stride+rows*p]
	dst = dst[:(rows-1)*ld+nb*p]
	C.vireo_bw_gather(fptr(src), fptr(dst), C.int(nb), C.long(stride), C.int(rows), C.long(p), C.long(ld))
}
