package cpu

// A small-matrix SGEMM for the convolution forward paths, C = A*B (or
// C += A*B), all row-major, for the shapes convolutions give: M (output
// channels) and K (input channels, or taps x channels) from 8 to a few
// hundred, N (positions) long. On AVX-512 it beats OpenBLAS here, whose
// kernels this machine must run as Haswell (OPENBLAS_CORETYPE, 256-bit):
// B is packed 32 columns at a time into a contiguous panel that stays in
// L1 while 8x32 tiles of C (16 zmm accumulators) run over all of K.
// Without AVX-512 the callers use OpenBLAS (gemmNN).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_gemm512
#cgo nocallback vireo_gemm512
#cgo noescape vireo_gemm512_offs
#cgo nocallback vireo_gemm512_offs
#cgo noescape vireo_pack_a
#cgo nocallback vireo_pack_a
#include <string.h>

// vireo_pack_a is gemmPackA: row tiles of 8 (the last mr = m%8 rows), each
// k-major, ap[i*k + p*mr + r] = a[(i+r)*lda + p]. Full tiles have a
// constant mr, so the inner loop is unrolled.
static void vireo_pack_a(long m, long k, const float *a, long lda, float *ap) {
	for (long i = 0; i < m; i += 8) {
		long mr = m - i < 8 ? m - i : 8;
		float *t = ap + i * k;
		const float *s = a + i * lda;
		if (mr == 8) {
			for (long p = 0; p < k; p++)
				for (int r = 0; r < 8; r++)
					t[p * 8 + r] = s[r * lda + p];
		} else {
			for (long p = 0; p < k; p++)
				for (long r = 0; r < mr; r++)
					t[p * mr + r] = s[r * lda + p];
		}
	}
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define VIREO_HAVE_GEMM512 1

#define VG_TARGET __attribute__((target("avx512f,fma")))

// vg_tile: C[0:mr, 0:32] (=|+=) A[0:mr, 0:K] * bp (K x 32 packed), with
// A's element (r,k) at a[r*rs + k*ks] (row-major: rs = lda, ks = 1;
// packed: rs = 1, ks = mr, one stream for the broadcasts); masks m0/m1
// select the valid columns of C. Always inlined with constant mr and
// strides, so each caller gets its own specialised loop.
VG_TARGET static inline __attribute__((always_inline))
void vg_tile(const int mr, long K, const float *restrict a, long rs, long ks, const float *restrict bp,
		float *restrict c, long ldc, __mmask16 m0, __mmask16 m1, int acc) {
	__m512 c0[8], c1[8];
	for (int r = 0; r < mr; r++) {
		c0[r] = _mm512_setzero_ps();
		c1[r] = _mm512_setzero_ps();
	}
	for (long k = 0; k < K; k++) {
		__m512 b0 = _mm512_loadu_ps(bp + k * 32);
		__m512 b1 = _mm512_loadu_ps(bp + k * 32 + 16);
		for (int r = 0; r < mr; r++) {
			__m512 av = _mm512_set1_ps(a[r * rs + k * ks]);
			c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
			c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
		}
	}
	for (int r = 0; r < mr; r++) {
		float *cr = c + r * ldc;
		if (acc) {
			c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
			c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
		}
		_mm512_mask_storeu_ps(cr, m0, c0[r]);
		_mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
	}
}

static inline __mmask16 vg_mask(long n) {
	if (n <= 0) return 0;
	if (n >= 16) return (__mmask16)0xFFFF;
	return (__mmask16)((1u << n) - 1);
}

// vireo_gemm512: C (M x N, ldc) = or += A (M x K, lda) * B (K x N, ldb);
// bp is scratch of K*32 floats.
VG_TARGET
void vireo_gemm512(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
		float *C, long ldc, int acc, float *bp) {
	for (long n0 = 0; n0 < N; n0 += 32) {
		long nw = N - n0 < 32 ? N - n0 : 32;
		__mmask16 m0 = vg_mask(nw), m1 = vg_mask(nw - 16);
		for (long k = 0; k < K; k++) {
			const float *src = B + k * ldb + n0;
			_mm512_storeu_ps(bp + k * 32, _mm512_maskz_loadu_ps(m0, src));
			_mm512_storeu_ps(bp + k * 32 + 16, _mm512_maskz_loadu_ps(m1, src + 16));
		}
		long i = 0;
		for (; i + 8 <= M; i += 8)
			vg_tile(8, K, A + i * lda, lda, 1, bp, C + i * ldc + n0, ldc, m0, m1, acc);
		const float *a = A + i * lda;
		float *c = C + i * ldc + n0;
		switch (M - i) {
		case 7: vg_tile(7, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 6: vg_tile(6, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 5: vg_tile(5, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 4: vg_tile(4, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 3: vg_tile(3, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 2: vg_tile(2, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		case 1: vg_tile(1, K, a, lda, 1, bp, c, ldc, m0, m1, acc); break;
		}
	}
}

// vireo_gemm512_offs: C (M x N, ldc) = A * B with K = chans*kk, where A
// comes packed (gemmPackA's layout) and row k = ci*kk+tap of B is base +
// ci*cstride + toff[tap] (N values): a convolution's shifted views of
// padded planes as one GEMM over channels x taps, packed straight from
// the planes. K runs in blocks of cb channels, so that the packed panel
// (cb*kk x 32, in bp) stays in L1 while every row tile runs over it; the
// blocks after the first add to C (a fixed order: the same sums whatever
// the threads).
VG_TARGET
void vireo_gemm512_offs(long M, long N, long chans, const float *AP, const float *base, const long *toff, long kk,
		long cstride, float *C, long ldc, float *bp, long cb) {
	long K = chans * kk;
	for (long c0 = 0; c0 < chans; c0 += cb) {
		long cn = chans - c0 < cb ? chans - c0 : cb;
		long kb = cn * kk;
		int acc = c0 > 0;
		for (long n0 = 0; n0 < N; n0 += 32) {
			long nw = N - n0 < 32 ? N - n0 : 32;
			__mmask16 m0 = vg_mask(nw), m1 = vg_mask(nw - 16);
			float *p = bp;
			for (long ci = 0; ci < cn; ci++) {
				const float *plane = base + (c0 + ci) * cstride + n0;
				for (long t = 0; t < kk; t++, p += 32) {
					const float *src = plane + toff[t];
					_mm512_storeu_ps(p, _mm512_maskz_loadu_ps(m0, src));
					_mm512_storeu_ps(p + 16, _mm512_maskz_loadu_ps(m1, src + 16));
				}
			}
			long i = 0;
			for (; i + 8 <= M; i += 8)
				vg_tile(8, kb, AP + i * K + c0 * kk * 8, 1, 8, bp, C + i * ldc + n0, ldc, m0, m1, acc);
			const float *a = AP + i * K + c0 * kk * (M - i);
			float *c = C + i * ldc + n0;
			switch (M - i) {
			case 7: vg_tile(7, kb, a, 1, 7, bp, c, ldc, m0, m1, acc); break;
			case 6: vg_tile(6, kb, a, 1, 6, bp, c, ldc, m0, m1, acc); break;
			case 5: vg_tile(5, kb, a, 1, 5, bp, c, ldc, m0, m1, acc); break;
			case 4: vg_tile(4, kb, a, 1, 4, bp, c, ldc, m0, m1, acc); break;
			case 3: vg_tile(3, kb, a, 1, 3, bp, c, ldc, m0, m1, acc); break;
			case 2: vg_tile(2, kb, a, 1, 2, bp, c, ldc, m0, m1, acc); break;
			case 1: vg_tile(1, kb, a, 1, 1, bp, c, ldc, m0, m1, acc); break;
			}
		}
	}
}

static int vireo_gemm512_ok(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}
#else
#define VIREO_HAVE_GEMM512 0
static void vireo_gemm512(long M, long N, long K, const float *A, long lda, const float *B, long ldb,
		float *C, long ldc, int acc, float *bp) {}
static void vireo_gemm512_offs(long M, long N, long chans, const float *AP, const float *base, const long *toff, long kk,
		long cstride, float *C, long ldc, float *bp, long cb) {}
static int vireo_gemm512_ok(void) { return 0; }
#endif
*/
import "C"

import "unsafe"

// gemm512 is whether vireo_gemm512 runs on this CPU (read-only after init).
var gemm512 = C.vireo_gemm512_ok() != 0

// gemmPanel is the scratch gemmNN needs for an inner dimension k (floats).
func gemmPanel(k int) int { return k * 32 }

// gemmNN is sgemm(false, false, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
// for beta 0 or 1, through vireo_gemm512 where the CPU has AVX-512 (panel
// holds gemmPanel(k) floats), else OpenBLAS. It equals the plain loop
//
//	for i < m, j < n: c[i*ldc+j] = beta*c[i*ldc+j] + sum_p a[i*lda+p]*b[p*ldb+j]
func gemmNN(m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, panel []float32) {
	if m == 0 || n == 0 {
		return
	}
	if !gemm512 || k == 0 || (beta != 0 && beta != 1) || len(panel) < gemmPanel(k) {
		sgemm(false, false, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Bounds, once: the C code trusts them.
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	acc := 0
	if beta == 1 {
		acc = 1
	}
	C.vireo_gemm512(C.long(m), C.long(n), C.long(k), gptr(a), C.long(lda), gptr(b), C.long(ldb),
		gptr(c), C.long(ldc), C.int(acc), gptr(panel))
}

// maxTaps is the most kernel taps gemmOffs takes (7x7 and below).
const maxTaps = 64

// offsPanelRows is the most B rows (channels x taps) of gemmOffs's packed
// panel: 160 x 32 floats (20 KB) stay in L1 beside the packed A rows. With
// the whole K in one panel (864 rows for 96 channels x 9 taps, 110 KB)
// the 8x32 tiles streamed it from L2: PP-OCRv4 det's 96->24 3x3
// convolutions ran at ~100 GFLOP/s, ~145 with the blocks.
const offsPanelRows = 160

// gemmPackA packs the m x k matrix a (row stride lda) into ap (m*k
// floats) for gemmOffs: row tiles of 8 (the last one mr = m%8 rows), each
// stored k-major, ap[i*k + p*mr + r] = a[(i+r)*lda + p]. In C: the Go loop
// took 2.1 ms for resnet18's widest 3x3 weights (512 x 4608), the C one
// 0.4-0.5 ms (BenchmarkPackA), once per forward pass of each such layer.
func gemmPackA(m, k int, a []float32, lda int, ap []float32) {
	if m == 0 || k == 0 {
		return
	}
	// Bounds, once: the C code trusts them.
	_ = a[(m-1)*lda+k-1]
	_ = ap[m*k-1]
	C.vireo_pack_a(C.long(m), C.long(k), gptr(a), C.long(lda), gptr(ap))
}

// gemmOffs is, for gemm512 CPUs only, with K = chans*len(toff) and ap
// the m x K weights packed by gemmPackA,
//
//	for i < m, j < n: c[i*ldc+j] = sum_{ci, t} a[i*K+ci*len(toff)+t] * base[ci*cstride+toff[t]+j]
//
// (panel holds gemmPanel(K) floats; len(toff) <= maxTaps; the last row
// of B is bounds-checked, the offsets grow with ci and the caller's
// geometry keeps every tap's rows in range).
func gemmOffs(m, n, chans int, ap []float32, base []float32, toff []int64, cstride int, c []float32, ldc int, panel []float32) {
	kk := len(toff)
	k := chans * kk
	if m == 0 || n == 0 || k == 0 {
		return
	}
	_ = ap[m*k-1]
	_ = c[(m-1)*ldc+n-1]
	_ = panel[gemmPanel(k)-1]
	for _, o := range toff {
		_ = base[int64((chans-1)*cstride)+o+int64(n)-1]
	}
	cb := max(1, offsPanelRows/kk)
	C.vireo_gemm512_offs(C.long(m), C.long(n), C.long(chans), gptr(ap), gptr(base),
		(*C.long)(unsafe.Pointer(unsafe.SliceData(toff))), C.long(kk), C.long(cstride), gptr(c), C.long(ldc), gptr(panel), C.long(cb))
}

func gptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }
