package cpu

// The memory-bound inner loops of the convolutions (im2col, col2im, the
// direct depthwise kernel) in C, so the compiler vectorises them: Go does
// not, and these loops move ~10x more bytes than they compute on. Each
// function is built for AVX-512, AVX2+FMA and baseline x86-64 and the
// loader picks one for the CPU (GCC target_clones). The plain loops they
// equal are in the comments of their Go wrappers.

/*
#cgo CFLAGS: -O3
// None of these keeps a pointer past its return or calls back into Go, so
// a geometry on the caller's stack stays there (no allocation per call).
#cgo noescape vireo_im2col
#cgo nocallback vireo_im2col
#cgo noescape vireo_split_phases
#cgo nocallback vireo_split_phases
#cgo noescape vireo_dw_fwd
#cgo nocallback vireo_dw_fwd
#cgo noescape vireo_phase_pad
#cgo nocallback vireo_phase_pad
#cgo noescape vireo_crop
#cgo nocallback vireo_crop
#cgo noescape vireo_dw_bwd
#cgo nocallback vireo_dw_bwd
#include <string.h>
#include "vireo_rows.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_CLONES
#endif

typedef struct {
	int c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow;
} vireo_geom;

// vireo_xrange: output columns [lo,hi) within [ox0,ox1) whose image column
// ox*sw+xoff lies in [0,w).
static inline void vireo_xrange(const vireo_geom *g, int xoff, int ox0, int ox1, int *lo, int *hi) {
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

// vireo_copy is an inlined copy: the segments are short (one output row,
// often 14-56 values), where a memcpy call costs more than the copy.
static inline __attribute__((always_inline)) void vireo_copy(float *restrict out, const float *restrict in, int n) {
#pragma GCC ivdep
	for (int i = 0; i < n; i++) out[i] = in[i];
}

// vireo_im2col: see the Go wrapper. The chunk [p0,p0+np) covers output
// rows oy0.. in turn (the first and last possibly partial); per kernel
// column kj the valid span of a full row is computed once.
VIREO_CLONES __attribute__((optimize("no-tree-loop-distribute-patterns")))
void vireo_im2col(const vireo_geom *g, const float *restrict img, float *restrict col, long p0, long np, int split) {
	// With split, img rows are stored phase by phase (see
	// vireo_split_phases): rows of rw = sw*wq values.
	int wq = (g->w + g->sw - 1) / g->sw;
	long rw = split ? (long)g->sw * wq : g->w;
	long hw = (long)g->h * rw, r = 0;
	int oyStart = (int)(p0 / g->ow), oxStart = (int)(p0 - (long)oyStart * g->ow);
	for (int ci = 0; ci < g->c; ci++) {
		const float *src = img + ci * hw;
		for (int ki = 0; ki < g->kh; ki++) {
			for (int kj = 0; kj < g->kw; kj++, r++) {
				float *dst = col + r * np;
				int xoff = kj * g->dw - g->pl;
				int flo, fhi;
				vireo_xrange(g, xoff, 0, g->ow, &flo, &fhi);
				// Offset of output column ox's source in a stored row:
				// ox*sw + xoff, or with split ph*wq + ox + base.
				int ph = ((xoff % g->sw) + g->sw) % g->sw;
				long sh0 = split ? (long)ph * wq + (xoff - ph) / g->sw : xoff;
				int step = split ? 1 : g->sw;
				long d = 0;
				int oy = oyStart, ox0 = oxStart;
				while (d < np) {
					int ox1 = g->ow;
					if ((long)(ox1 - ox0) > np - d) ox1 = (int)(ox0 + (np - d));
					int len = ox1 - ox0;
					float *seg = dst + d - ox0; // seg[ox] for ox in [ox0,ox1)
					d += len;
					int iy = oy * g->sh - g->pt + ki * g->dh;
					if (iy < 0 || iy >= g->h) {
						for (int i = ox0; i < ox1; i++) seg[i] = 0;
					} else {
						int lo = flo < ox0 ? ox0 : flo, hi = fhi > ox1 ? ox1 : fhi;
						if (hi < lo) hi = lo;
						for (int i = ox0; i < lo; i++) seg[i] = 0;
						for (int i = hi; i < ox1; i++) seg[i] = 0;
						const float *in = src + (long)iy * rw + sh0;
						if (step == 1) {
							vireo_copy(seg + lo, in + lo, hi - lo);
						} else if (step == 2) {
							for (int i = lo; i < hi; i++) seg[i] = in[2 * i];
						} else {
							for (int i = lo; i < hi; i++) seg[i] = in[(long)i * step];
						}
					}
					oy++;
					ox0 = 0;
				}
			}
		}
	}
}

// vireo_split_phases copies img (c x h x w) into dst (c x h x sw*wq, wq =
// ceil(w/sw)) with each row's columns grouped by phase:
// dst[ci][iy][ph*wq+j] = img[ci][iy][j*sw+ph] (0 past the row's end), so
// a strided im2col becomes contiguous copies.
VIREO_CLONES
void vireo_split_phases(const vireo_geom *g, const float *restrict img, float *restrict dst) {
	int sw = g->sw, wq = (g->w + sw - 1) / sw;
	long rows = (long)g->c * g->h;
	for (long r = 0; r < rows; r++) {
		const float *restrict in = img + r * g->w;
		float *restrict out = dst + r * sw * wq;
		if (sw == 2 && (g->w & 1) == 0) {
			for (int j = 0; j < wq; j++) {
				out[j] = in[2 * j];
				out[wq + j] = in[2 * j + 1];
			}
			continue;
		}
		for (int ph = 0; ph < sw; ph++) {
			for (int j = 0; j < wq; j++) {
				int ix = j * sw + ph;
				out[ph * wq + j] = ix < g->w ? in[ix] : 0.0f;
			}
		}
	}
}

// vireo_dw_fwd: output planes t in [t0,t1) of a depthwise convolution,
// t = n*chans*mult + m, input channel m/mult. Each input plane is first
// copied into pad, a zero-bordered (hp x wp) plane, so the taps need no
// bounds checks; 3x3 (stride 1 or 2) and 5x5 stride-1 kernels then
// compute each output row in one pass with all their taps.
VIREO_CLONES
void vireo_dw_fwd(const vireo_geom *g, int chans, int mult, const float *x, const float *w, const float *b, float *y, float *pad, long t0, long t1) {
	long hw = (long)g->h * g->w, P = (long)g->oh * g->ow;
	int kk = g->kh * g->kw, M = chans * mult;
	int hp = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1;
	int wp = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
	int fast3 = g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1;
	int fast3s2 = g->kh == 3 && g->kw == 3 && g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1;
	int fast5 = g->kh == 5 && g->kw == 5 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1;
	long loaded = -1;
	for (long t = t0; t < t1; t++) {
		int m = (int)(t % M);
		long n = t / M;
		long xplane = n * chans + m / mult;
		if (xplane != loaded) {
			// Every plane has the same border: zero the whole padded
			// plane once, then copy only the rows and columns holding x.
			if (loaded < 0) memset(pad, 0, (size_t)hp * wp * sizeof(float));
			const float *xp = x + xplane * hw;
			int lo = g->pl, hi = g->pl + g->w; // pad columns holding x
			if (hi > wp) hi = wp;
			if (lo > hi) lo = hi;
			for (int py = 0; py < hp; py++) {
				int iy = py - g->pt;
				if (iy < 0 || iy >= g->h) continue;
				memcpy(pad + (long)py * wp + lo, xp + (long)iy * g->w, (size_t)(hi - lo) * sizeof(float));
			}
			loaded = xplane;
		}
		float *yp = y + t * P;
		const float *wm = w + (long)m * kk;
		float bv = b ? b[m] : 0.0f;
		if (fast3) {
			float w0 = wm[0], w1 = wm[1], w2 = wm[2], w3 = wm[3], w4 = wm[4], w5 = wm[5], w6 = wm[6], w7 = wm[7], w8 = wm[8];
			for (int oy = 0; oy < g->oh; oy++) {
				const float *restrict r0 = pad + (long)oy * wp;
				const float *restrict r1 = r0 + wp;
				const float *restrict r2 = r1 + wp;
				float *restrict yrow = yp + (long)oy * g->ow;
				for (int ox = 0; ox < g->ow; ox++) {
					yrow[ox] = bv + w0 * r0[ox] + w1 * r0[ox + 1] + w2 * r0[ox + 2]
						+ w3 * r1[ox] + w4 * r1[ox + 1] + w5 * r1[ox + 2]
						+ w6 * r2[ox] + w7 * r2[ox + 1] + w8 * r2[ox + 2];
				}
			}
			continue;
		}
		if (fast3s2) {
			float w0 = wm[0], w1 = wm[1], w2 = wm[2], w3 = wm[3], w4 = wm[4], w5 = wm[5], w6 = wm[6], w7 = wm[7], w8 = wm[8];
			for (int oy = 0; oy < g->oh; oy++) {
				const float *restrict r0 = pad + (long)(2 * oy) * wp;
				const float *restrict r1 = r0 + wp;
				const float *restrict r2 = r1 + wp;
				float *restrict yrow = yp + (long)oy * g->ow;
				for (int ox = 0; ox < g->ow; ox++) {
					yrow[ox] = bv + w0 * r0[2 * ox] + w1 * r0[2 * ox + 1] + w2 * r0[2 * ox + 2]
						+ w3 * r1[2 * ox] + w4 * r1[2 * ox + 1] + w5 * r1[2 * ox + 2]
						+ w6 * r2[2 * ox] + w7 * r2[2 * ox + 1] + w8 * r2[2 * ox + 2];
				}
			}
			continue;
		}
		if (fast5) {
			// All 25 taps per output row in one pass (the generic loop
			// below makes 25 passes, each loading and storing the row: on
			// the short rows of late stages that is mostly loop overhead).
			float wl[25];
			for (int i = 0; i < 25; i++) wl[i] = wm[i];
			for (int oy = 0; oy < g->oh; oy++) {
				const float *restrict r0 = pad + (long)oy * wp;
				const float *restrict r1 = r0 + wp;
				const float *restrict r2 = r1 + wp;
				const float *restrict r3 = r2 + wp;
				const float *restrict r4 = r3 + wp;
				float *restrict yrow = yp + (long)oy * g->ow;
				for (int ox = 0; ox < g->ow; ox++) {
					float a0 = bv + wl[0] * r0[ox] + wl[1] * r0[ox + 1] + wl[2] * r0[ox + 2] + wl[3] * r0[ox + 3] + wl[4] * r0[ox + 4];
					float a1 = wl[5] * r1[ox] + wl[6] * r1[ox + 1] + wl[7] * r1[ox + 2] + wl[8] * r1[ox + 3] + wl[9] * r1[ox + 4];
					float a2 = wl[10] * r2[ox] + wl[11] * r2[ox + 1] + wl[12] * r2[ox + 2] + wl[13] * r2[ox + 3] + wl[14] * r2[ox + 4];
					float a3 = wl[15] * r3[ox] + wl[16] * r3[ox + 1] + wl[17] * r3[ox + 2] + wl[18] * r3[ox + 3] + wl[19] * r3[ox + 4];
					float a4 = wl[20] * r4[ox] + wl[21] * r4[ox + 1] + wl[22] * r4[ox + 2] + wl[23] * r4[ox + 3] + wl[24] * r4[ox + 4];
					yrow[ox] = (a0 + a1) + (a2 + a3) + a4;
				}
			}
			continue;
		}
		for (int oy = 0; oy < g->oh; oy++) {
			float *restrict yrow = yp + (long)oy * g->ow;
			for (int i = 0; i < g->ow; i++) yrow[i] = bv;
			for (int ki = 0; ki < g->kh; ki++) {
				const float *prow = pad + (long)(oy * g->sh + ki * g->dh) * wp;
				for (int kj = 0; kj < g->kw; kj++) {
					float wv = wm[ki * g->kw + kj];
					const float *restrict in = prow + kj * g->dw;
					if (g->sw == 1) {
						for (int i = 0; i < g->ow; i++) yrow[i] += wv * in[i];
					} else if (g->sw == 2) {
						for (int i = 0; i < g->ow; i++) yrow[i] += wv * in[2 * i];
					} else {
						for (int i = 0; i < g->ow; i++) yrow[i] += wv * in[(long)i * g->sw];
					}
				}
			}
		}
	}
}
// vireo_phase_cols: the columns [lo,hi) of phase b's rows that lie
// inside the image, 0 <= xq*sw + b - pl < w, clipped to [0,wq).
static inline void vireo_phase_cols(const vireo_geom *g, int b, int wq, int *lo, int *hi) {
	int off = b - g->pl;
	int l = off < 0 ? (-off + g->sw - 1) / g->sw : 0;
	int h = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->sw + 1;
	if (l > wq) l = wq;
	if (h > wq) h = wq;
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

#ifdef VIREO_ROWS_512
// vireo_phase_pad512 is vireo_phase_pad for rows vireo_row512 takes.
__attribute__((target("avx512f")))
static void vireo_phase_pad512(const vireo_geom *g, int hq, int wq, const float *restrict img, float *restrict dst) {
	long plane = (long)hq * wq, cstride = (long)g->sh * g->sw * plane;
	__mmask16 m0[2], m1[2];
	for (int b = 0; b < g->sw; b++) {
		int lo, hi;
		vireo_phase_cols(g, b, wq, &lo, &hi);
		vireo_row_masks(lo, hi, g->sw, &m0[b], &m1[b]);
	}
	for (int ci = 0; ci < g->c; ci++) {
		const float *src = img + (long)ci * g->h * g->w;
		for (int a = 0; a < g->sh; a++) {
			for (int yq = 0; yq < hq; yq++) {
				int iy = yq * g->sh + a - g->pt;
				for (int b = 0; b < g->sw; b++) {
					float *out = dst + ci * cstride + (long)(a * g->sw + b) * plane + (long)yq * wq;
					const float *in = iy >= 0 && iy < g->h ? src + (long)iy * g->w + b - g->pl : 0;
					vireo_row512(out, in, wq, g->sw, m0[b], m1[b]);
				}
			}
		}
	}
}
#endif

// vireo_crop: see cropRows. One division per call, not per row: a
// row is a handful of floats on small inputs.
VIREO_CLONES
void vireo_crop(const float *restrict src, long w, float *restrict dst, long P, int outer, long p0, int wp, int ow) {
	long oy0 = p0 / wp;
	int ox0 = (int)(p0 - oy0 * wp);
	for (int m = 0; m < outer; m++) {
		const float *s = src + (long)m * w;
		float *d = dst + (long)m * P;
		long oy = oy0, left = w;
		int ox = ox0;
		while (left > 0) {
			long n = wp - ox < left ? wp - ox : left;
			if (ox < ow) {
				long seg = ow - ox < n ? ow - ox : n;
				float *dd = d + oy * ow + ox;
				for (long i = 0; i < seg; i++) dd[i] = s[i];
			}
			s += n;
			left -= n;
			oy++;
			ox = 0;
		}
	}
}

// vireo_phase_pad: see padPlane. Planes of one channel: sh*sw of hq x wq.
VIREO_CLONES
void vireo_phase_pad(const vireo_geom *g, int hq, int wq, const float *restrict img, float *restrict dst) {
#ifdef VIREO_ROWS_512
	if (vireo_rows_fit(wq, g->sw) && vireo_rows_has512()) {
		vireo_phase_pad512(g, hq, wq, img, dst);
		return;
	}
#endif
	long plane = (long)hq * wq, cstride = (long)g->sh * g->sw * plane;
	for (int ci = 0; ci < g->c; ci++) {
		const float *src = img + (long)ci * g->h * g->w;
		for (int a = 0; a < g->sh; a++) {
			for (int yq = 0; yq < hq; yq++) {
				int iy = yq * g->sh + a - g->pt;
				for (int b = 0; b < g->sw; b++) {
					float *restrict out = dst + ci * cstride + (long)(a * g->sw + b) * plane + (long)yq * wq;
					if (iy < 0 || iy >= g->h) {
						for (int i = 0; i < wq; i++) out[i] = 0;
						continue;
					}
					int off = b - g->pl, lo, hi;
					vireo_phase_cols(g, b, wq, &lo, &hi);
					for (int i = 0; i < lo; i++) out[i] = 0;
					for (int i = hi; i < wq; i++) out[i] = 0;
					const float *in = src + (long)iy * g->w + off;
					if (g->sw == 1) {
						for (int i = lo; i < hi; i++) out[i] = in[i];
					} else if (g->sw == 2) {
						for (int i = lo; i < hi; i++) out[i] = in[2 * i];
					} else {
						for (int i = lo; i < hi; i++) out[i] = in[(long)i * g->sw];
					}
				}
			}
		}
	}
}
// vireo_dot: sum a[i]*b[i] with 16 partial sums (vectorisable without
// -ffast-math).
static inline float vireo_dot(const float *restrict a, const float *restrict b, int n) {
	float acc[16] = {0};
	int i = 0;
	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
	float s = 0;
	for (; i < n; i++) s += a[i] * b[i];
	for (int k = 0; k < 16; k++) s += acc[k];
	return s;
}

// vireo_dw_bwd: input channels [c0,c1) of a depthwise convolution's
// backward, on zero-bordered hp x wp planes (xpad, dxpad: scratch). dx and
// dw may be NULL.
VIREO_CLONES
void vireo_dw_bwd(const vireo_geom *g, int chans, int mult, int nb, const float *x, const float *w, const float *dy,
		float *dx, float *dw, float *xpad, float *dxpad, float *dypad, int c0, int c1) {
	long hw = (long)g->h * g->w, P = (long)g->oh * g->ow;
	int kk = g->kh * g->kw;
	int hp = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1;
	int wp = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
	for (int ci = c0; ci < c1; ci++) {
		if (dw) memset(dw + (long)ci * mult * kk, 0, (size_t)mult * kk * sizeof(float));
		for (int n = 0; n < nb; n++) {
			const float *xp = x + ((long)n * chans + ci) * hw;
			if (dw) {
				for (int py = 0; py < hp; py++) {
					float *prow = xpad + (long)py * wp;
					int iy = py - g->pt;
					memset(prow, 0, (size_t)wp * sizeof(float));
					if (iy < 0 || iy >= g->h) continue;
					int lo = g->pl < wp ? g->pl : wp;
					int hi = g->pl + g->w < wp ? g->pl + g->w : wp;
					if (hi > lo) memcpy(prow + lo, xp + (long)iy * g->w, (size_t)(hi - lo) * sizeof(float));
				}
			}
			if (dx) memset(dxpad, 0, (size_t)hp * wp * sizeof(float));
			for (int j = 0; j < mult; j++) {
				int m = ci * mult + j;
				const float *dyp = dy + ((long)n * chans * mult + m) * P;
				const float *wm = w + (long)m * kk;
				float *dwm = dw ? dw + (long)m * kk : 0;
				if (g->sh == 1 && g->sw == 1) {
					// dy on the padded-width grid (zeros past ow): each tap is
					// then one long dot (dw) and one long axpy (dx) over the
					// plane, shifted by the tap's offset.
					for (int oy = 0; oy < g->oh; oy++) {
						memcpy(dypad + (long)oy * wp, dyp + (long)oy * g->ow, (size_t)g->ow * sizeof(float));
						for (int i = g->ow; i < wp; i++) dypad[(long)oy * wp + i] = 0;
					}
					int np = (g->oh - 1) * wp + g->ow;
					for (int tap = 0; tap < kk; tap++) {
						long off = (long)(tap / g->kw) * g->dh * wp + (tap % g->kw) * g->dw;
						if (dw) dwm[tap] += vireo_dot(dypad, xpad + off, np);
						if (dx) {
							float wv = wm[tap];
							float *restrict out = dxpad + off;
							const float *restrict in = dypad;
							for (int i = 0; i < np; i++) out[i] += wv * in[i];
						}
					}
					continue;
				}
				for (int oy = 0; oy < g->oh; oy++) {
					const float *restrict dyrow = dyp + (long)oy * g->ow;
					for (int ki = 0; ki < g->kh; ki++) {
						long ro = (long)(oy * g->sh + ki * g->dh) * wp;
						for (int kj = 0; kj < g->kw; kj++) {
							int co = kj * g->dw;
							if (dx) {
								float wv = wm[ki * g->kw + kj];
								float *restrict out = dxpad + ro + co;
								if (g->sw == 1) {
									for (int i = 0; i < g->ow; i++) out[i] += wv * dyrow[i];
								} else {
									for (int i = 0; i < g->ow; i++) out[(long)i * g->sw] += wv * dyrow[i];
								}
							}
							if (dw) {
								const float *in = xpad + ro + co;
								float s;
								if (g->sw == 1) {
									s = vireo_dot(dyrow, in, g->ow);
								} else {
									s = 0;
									for (int i = 0; i < g->ow; i++) s += dyrow[i] * in[(long)i * g->sw];
								}
								dwm[ki * g->kw + kj] += s;
							}
						}
					}
				}
			}
			if (dx) {
				float *dxp = dx + ((long)n * chans + ci) * hw;
				for (int iy = 0; iy < g->h; iy++) {
					float *drow = dxp + (long)iy * g->w;
					int py = iy + g->pt;
					int ncols = wp - g->pl;
					if (ncols > g->w) ncols = g->w;
					if (py >= hp || ncols <= 0) {
						memset(drow, 0, (size_t)g->w * sizeof(float));
						continue;
					}
					memcpy(drow, dxpad + (long)py * wp + g->pl, (size_t)ncols * sizeof(float));
					if (ncols < g->w) memset(drow + ncols, 0, (size_t)(g->w - ncols) * sizeof(float));
				}
			}
		}
	}
}
*/
import "C"

import "unsafe"

func (g *convGeom) cgeom() C.vireo_geom {
	return C.vireo_geom{
		c: C.int(g.c), h: C.int(g.h), w: C.int(g.w), kh: C.int(g.kh), kw: C.int(g.kw),
		sh: C.int(g.sh), sw: C.int(g.sw), dh: C.int(g.dh), dw: C.int(g.dw),
		pt: C.int(g.pt), pl: C.int(g.pl), oh: C.int(g.oh), ow: C.int(g.ow),
	}
}

func fptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// im2col writes columns [p0, p0+np) of img's column matrix into col, a
// rows() x np row-major matrix (C, vectorised). It equals
//
//	for r, (ci,ki,kj) := range rows; for p := p0; p < p0+np; p++ {
//		oy, ox := p/ow, p%ow
//		iy, ix := oy*sh-pt+ki*dh, ox*sw-pl+kj*dw
//		col[r*np+p-p0] = img[ci][iy][ix] if inside, else 0
//	}
func (g *convGeom) im2col(img, col []float32, p0, np int) {
	img = img[:g.c*g.h*g.w] // bounds the C loop: panics rather than overrun
	col = col[:g.rows()*np]
	if np == 0 {
		return
	}
	cg := g.cgeom()
	C.vireo_im2col(&cg, fptr(img), fptr(col), C.long(p0), C.long(np), 0)
}

// splitLen is the size of splitPhases' output.
func (g *convGeom) splitLen() int { return g.c * g.h * g.sw * ((g.w + g.sw - 1) / g.sw) }

// splitPhases copies img into dst (splitLen values) with each row's
// columns grouped by phase modulo the stride (C):
//
//	dst[ci][iy][ph*wq+j] = img[ci][iy][j*sw+ph]   (0 past the row), wq = ceil(w/sw)
//
// so that im2colSplit's strided reads become contiguous copies.
func (g *convGeom) splitPhases(img, dst []float32) {
	img = img[:g.c*g.h*g.w]
	dst = dst[:g.splitLen()]
	cg := g.cgeom()
	C.vireo_split_phases(&cg, fptr(img), fptr(dst))
}

// im2colSplit is im2col reading splitPhases' output instead of the image.
func (g *convGeom) im2colSplit(split, col []float32, p0, np int) {
	split = split[:g.splitLen()]
	col = col[:g.rows()*np]
	if np == 0 {
		return
	}
	cg := g.cgeom()
	C.vireo_im2col(&cg, fptr(split), fptr(col), C.long(p0), C.long(np), 1)
}

// col2im adds columns [p0, p0+np) of col (rows() x np) back into img: the
// adjoint of im2col (C, vectorised),
//
//	img[ci][iy][ix] += col[r*np+p-p0]   for every inside (r,p) as above.
func (g *convGeom) col2im(col, img []float32, p0, np int) {
	g.col2imLD(col, img, p0, np, np)
}

// Depthwise convolution (group == C, one input channel per group, mult =
// M/C output channels per input channel) is done directly: it is
// memory-bound, and im2col would multiply the traffic by kH*kW for GEMMs
// with one row. q is the Conv2D plan: geo.c == 1, groups == C, outer ==
// mult.

// depthwiseForward computes, for output channel m = c*mult+j,
//
//	y[n][m][oy][ox] = b[m] + sum_{ki,kj} w[m][0][ki][kj] *
//	                  x[n][c][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw]
//
// on a zero-bordered copy of each input plane, all nine taps of a 3x3
// stride-1 kernel in one vectorised pass per output row (C), in parallel
// over output planes.
func (c *CPU) depthwiseForward(q *convPlan, y, x, w, b []float32) {
	g := &q.geo
	planes := q.n * q.groups * q.outer
	x = x[:q.n*q.groups*g.h*g.w]
	y = y[:planes*q.p()]
	w = w[:q.groups*q.outer*g.kh*g.kw]
	var bp *C.float
	if b != nil {
		bp = fptr(b[:q.groups*q.outer])
	}
	hp := (g.oh-1)*g.sh + (g.kh-1)*g.dh + 1
	wp := (g.ow-1)*g.sw + (g.kw-1)*g.dw + 1
	parallelFor(c, planes, 4, depthwiseFwd{c: c, cg: g.cgeom(), groups: q.groups, outer: q.outer, x: x, w: w, y: y, bp: bp, padLen: hp * wp})
}

// depthwiseFwd is depthwiseForward's loop over output planes [lo,hi).
type depthwiseFwd struct {
	c             *CPU
	cg            C.vireo_geom
	groups, outer int
	x, w, y       []float32
	bp            *C.float
	padLen        int
}

func (b *depthwiseFwd) run(lo, hi int) {
	pad := b.c.getScratch(b.padLen)
	defer b.c.putScratch(pad)
	cgl := b.cg
	C.vireo_dw_fwd(&cgl, C.int(b.groups), C.int(b.outer), fptr(b.x), fptr(b.w), b.bp, fptr(b.y), fptr(*pad), C.long(lo), C.long(hi))
}

// padPlane writes img[n,g] (c x h x w) into dst (c x cstride) as the
// zero-bordered phase planes of l (C, vectorised):
//
//	dst[ci][a][b][yq][xq] = img[ci][yq*sh+a-pt][xq*sw+b-pl]   (0 outside)
func (q *convPlan) padPlane(img, dst []float32, l *shiftLayout) {
	g := &q.geo
	img = img[:g.c*g.h*g.w]
	dst = dst[:g.c*l.cstride]
	cg := g.cgeom()
	C.vireo_phase_pad(&cg, C.int(l.hq), C.int(l.wq), fptr(img), fptr(dst))
}

// cropRows copies the output positions of a block of the shifted GEMMs'
// padded-width grid (outer rows of w positions from p0, src row m at
// src[m*w:]) into the dense grid (dst row m at dst[m*P:]), in C:
//
//	for m < outer, p in [p0,p0+w) with ox = p%wp < ow:
//		dst[m*P + (p/wp)*ow + ox] = src[m*w + p-p0]
func cropRows(src []float32, w int, dst []float32, P, outer, p0, wp, ow int) {
	if outer == 0 || w == 0 {
		return
	}
	_ = src[outer*w-1]
	last := p0 + w - 1 // the last position's output, if any, bounds dst
	_ = dst[(outer-1)*P+(last/wp)*ow+min(last%wp, ow-1)]
	C.vireo_crop(fptr(src), C.long(w), fptr(dst), C.long(P), C.int(outer), C.long(p0), C.int(wp), C.int(ow))
}

// depthwiseBackward writes dx (the adjoint of depthwiseForward's taps,
// scattered into a zero-bordered plane then cropped) and
//
//	dw[m][ki][kj] = sum_{n,oy,ox} dy[n][m][oy][ox] * x[n][c][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw]
//
// (vectorised dot products on a zero-bordered copy of x); either may be
// nil. Tasks are input channels, so each owns its dx planes and its mult
// rows of dw (C).
func (c *CPU) depthwiseBackward(q *convPlan, dx, dw, dy, x, w []float32) {
	g := &q.geo
	hp := (g.oh-1)*g.sh + (g.kh-1)*g.dh + 1
	wp := (g.ow-1)*g.sw + (g.kw-1)*g.dw + 1
	x = x[:q.n*q.groups*g.h*g.w]
	dy = dy[:q.n*q.groups*q.outer*q.p()]
	w = w[:q.groups*q.outer*g.kh*g.kw]
	var dxp, dwp *C.float
	if dx != nil {
		dxp = fptr(dx[:len(x)])
	}
	if dw != nil {
		dwp = fptr(dw[:len(w)])
	}
	cg := g.cgeom()
	c.dynamic(q.groups, 1, func(claim func() (int, int, bool)) {
		xpad := c.getScratch(hp * wp)
		defer c.putScratch(xpad)
		dxpad := c.getScratch(hp * wp)
		defer c.putScratch(dxpad)
		dypad := c.getScratch(g.oh * wp)
		defer c.putScratch(dypad)
		cgl := cg
		for lo, hi, ok := claim(); ok; lo, hi, ok = claim() {
			C.vireo_dw_bwd(&cgl, C.int(q.groups), C.int(q.outer), C.int(q.n), fptr(x), fptr(w), fptr(dy),
				dxp, dwp, fptr(*xpad), fptr(*dxpad), fptr(*dypad), C.int(lo), C.int(hi))
		}
	})
}
