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
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define VIREO_HAVE_GEMM512 1

#define VG_TARGET __attribute__((target("avx512f,fma")))

// vg_tile: C[0:mr, 0:32] (=|+=) A[0:mr, 0:K] * bp (K x 32 packed), masks
// m0/m1 select the valid columns of C.
VG_TARGET static inline __attribute__((always_inline))
void vg_tile(const int mr, long K, const float *restrict a, long lda, const float *restrict bp,
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
			__m512 av = _mm512_set1_ps(a[r * lda + k]);
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
			vg_tile(8, K, A + i * lda, lda, bp, C + i * ldc + n0, ldc, m0, m1, acc);
		const float *a = A + i * lda;
		float *c = C + i * ldc + n0;
		switch (M - i) {
		case 7: vg_tile(7, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 6: vg_tile(6, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 5: vg_tile(5, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 4: vg_tile(4, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 3: vg_tile(3, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 2: vg_tile(2, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		case 1: vg_tile(1, K, a, lda, bp, c, ldc, m0, m1, acc); break;
		}
	}
}

// vireo_gemm512_offs: C (M x N, ldc) = A (M x K, lda) * B with K =
// chans*kk, where row k = ci*kk+tap of B is base + ci*cstride + toff[tap]
// (N values): a convolution's shifted views of padded planes as one GEMM
// over channels x taps, packed straight from the planes; bp is scratch of
// K*32 floats.
VG_TARGET
void vireo_gemm512_offs(long M, long N, long chans, const float *A, long lda, const float *base, const long *toff, long kk,
		long cstride, float *C, long ldc, float *bp) {
	long K = chans * kk;
	for (long n0 = 0; n0 < N; n0 += 32) {
		long nw = N - n0 < 32 ? N - n0 : 32;
		__mmask16 m0 = vg_mask(nw), m1 = vg_mask(nw - 16);
		for (long k = 0; k < K; k++) {
			const float *src = base + (k / kk) * cstride + toff[k % kk] + n0;
			_mm512_storeu_ps(bp + k * 32, _mm512_maskz_loadu_ps(m0, src));
			_mm512_storeu_ps(bp + k * 32 + 16, _mm512_maskz_loadu_ps(m1, src + 16));
		}
		long i = 0;
		for (; i + 8 <= M; i += 8)
			vg_tile(8, K, A + i * lda, lda, bp, C + i * ldc + n0, ldc, m0, m1, 0);
		const float *a = A + i * lda;
		float *c = C + i * ldc + n0;
		switch (M - i) {
		case 7: vg_tile(7, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 6: vg_tile(6, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 5: vg_tile(5, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 4: vg_tile(4, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 3: vg_tile(3, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 2: vg_tile(2, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 1: vg_tile(1, K, a, lda, bp, c, ldc, m0, m1, 0); break;
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
// vireo_gemm512_offs: C (M x N, ldc) = A (M x K, lda) * B with K =
// chans*kk, where row k = ci*kk+tap of B is base + ci*cstride + toff[tap]
// (N values): a convolution's shifted views of padded planes as one GEMM
// over channels x taps, packed straight from the planes; bp is scratch of
// K*32 floats.
VG_TARGET
void vireo_gemm512_offs(long M, long N, long chans, const float *A, long lda, const float *base, const long *toff, long kk,
		long cstride, float *C, long ldc, float *bp) {
	long K = chans * kk;
	for (long n0 = 0; n0 < N; n0 += 32) {
		long nw = N - n0 < 32 ? N - n0 : 32;
		__mmask16 m0 = vg_mask(nw), m1 = vg_mask(nw - 16);
		for (long k = 0; k < K; k++) {
			const float *src = base + (k / kk) * cstride + toff[k % kk] + n0;
			_mm512_storeu_ps(bp + k * 32, _mm512_maskz_loadu_ps(m0, src));
			_mm512_storeu_ps(bp + k * 32 + 16, _mm512_maskz_loadu_ps(m1, src + 16));
		}
		long i = 0;
		for (; i + 8 <= M; i += 8)
			vg_tile(8, K, A + i * lda, lda, bp, C + i * ldc + n0, ldc, m0, m1, 0);
		const float *a = A + i * lda;
		float *c = C + i * ldc + n0;
		switch (M - i) {
		case 7: vg_tile(7, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 6: vg_tile(6, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 5: vg_tile(5, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 4: vg_tile(4, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 3: vg_tile(3, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 2: vg_tile(2, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		case 1: vg_tile(1, K, a, lda, bp, c, ldc, m0, m1, 0); break;
		}
	}
}

static void vireo_gemm512_offs(long M, long N, long chans, const float *A, long lda, const float *base, const long *toff, long kk,
		long cstride, float *C, long ldc, float *bp) {}
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

// gemmOffs is, for gemm512 CPUs only, with K = chans*len(toff),
//
//	for i < m, j < n: c[i*ldc+j] = sum_{ci, t} a[i*lda+ci*len(toff)+t] * base[ci*cstride+toff[t]+j]
//
// (panel holds gemmPanel(K) floats; len(toff) <= maxTaps; the last row
// of B is bounds-checked, the offsets grow with ci and the caller's
// geometry keeps every tap's rows in range).
func gemmOffs(m, n, chans int, a []float32, lda int, base []float32, toff []int64, cstride int, c []float32, ldc int, panel []float32) {
	kk := len(toff)
	k := chans * kk
	if m == 0 || n == 0 || k == 0 {
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	_ = panel[gemmPanel(k)-1]
	for _, o := range toff {
		_ = base[int64((chans-1)*cstride)+o+int64(n)-1]
	}
	C.vireo_gemm512_offs(C.long(m), C.long(n), C.long(chans), gptr(a), C.long(lda), gptr(base),
		(*C.long)(unsafe.Pointer(unsafe.SliceData(toff))), C.long(kk), C.long(cstride), gptr(c), C.long(ldc), gptr(panel))
}

func gptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }
