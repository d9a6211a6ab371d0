package cpu

// A weight-gradient GEMM for convolutions whose gradient is small (a few
// thousand values) and whose sum runs over many positions: the stem of a
// small-input network (16 x 9 taps over 64 images of 28x28), the 1x1
// stride-2 shortcuts (32 x 16 over 64 x 14x14). OpenBLAS packs both
// operands of such a GEMM (M x N tiny, K = images x positions long) and
// ran them at 16-35 GFLOP/s; here 4x4 blocks of the result stay in 16
// zmm accumulators while both operands stream once per block (from L2:
// the caller sums a few images at a time), reduced across lanes at the
// end: 50-85 GFLOP/s (conv_backward.go, wgradSmallMax).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_wgrad_nt
#cgo nocallback vireo_wgrad_nt
#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#define VW_TARGET __attribute__((target("avx512f,fma")))

// vw_tile: c[r*ldc+q] (=|+=) sum_{i<nimg} sum_{p<P} a[i*as+r*lda+p] *
// b[i*bs+q*ldb+p] for r < mr, q < nr (constants after inlining).
VW_TARGET static inline __attribute__((always_inline))
void vw_tile(const int mr, const int nr, long P, long nimg, const float *a, long lda, long as,
		const float *b, long ldb, long bs, float *c, long ldc, int acc) {
	__m512 s[4][4];
	for (int r = 0; r < mr; r++)
		for (int q = 0; q < nr; q++)
			s[r][q] = _mm512_setzero_ps();
	long tail = P % 16;
	__mmask16 mt = (__mmask16)((1u << tail) - 1);
	for (long i = 0; i < nimg; i++) {
		const float *ai = a + i * as, *bi = b + i * bs;
		long p = 0;
		for (; p + 16 <= P; p += 16) {
			__m512 av[4], bv[4];
			for (int r = 0; r < mr; r++)
				av[r] = _mm512_loadu_ps(ai + r * lda + p);
			for (int q = 0; q < nr; q++)
				bv[q] = _mm512_loadu_ps(bi + q * ldb + p);
			for (int r = 0; r < mr; r++)
				for (int q = 0; q < nr; q++)
					s[r][q] = _mm512_fmadd_ps(av[r], bv[q], s[r][q]);
		}
		if (tail) {
			__m512 av[4], bv[4];
			for (int r = 0; r < mr; r++)
				av[r] = _mm512_maskz_loadu_ps(mt, ai + r * lda + p);
			for (int q = 0; q < nr; q++)
				bv[q] = _mm512_maskz_loadu_ps(mt, bi + q * ldb + p);
			for (int r = 0; r < mr; r++)
				for (int q = 0; q < nr; q++)
					s[r][q] = _mm512_fmadd_ps(av[r], bv[q], s[r][q]);
		}
	}
	for (int r = 0; r < mr; r++)
		for (int q = 0; q < nr; q++) {
			float v = _mm512_reduce_add_ps(s[r][q]);
			c[r * ldc + q] = acc ? c[r * ldc + q] + v : v;
		}
}

#define VW_CASE(R, Q) case (R) * 8 + (Q): vw_tile(R, Q, P, nimg, a, lda, as, b, ldb, bs, cc, ldc, acc); break;

// vireo_wgrad_nt: C (M x N, ldc) (=|+=) the sum over nimg images of
// A_i (M x P, rows lda apart) * B_i^T (B_i: N x P, rows ldb apart), image
// i's blocks as and bs floats after image 0's.
VW_TARGET
void vireo_wgrad_nt(long M, long N, long P, long nimg, const float *A, long lda, long as,
		const float *B, long ldb, long bs, float *C, long ldc, int acc) {
	for (long m0 = 0; m0 < M; m0 += 4) {
		int mr = M - m0 < 4 ? (int)(M - m0) : 4;
		for (long n0 = 0; n0 < N; n0 += 4) {
			int nr = N - n0 < 4 ? (int)(N - n0) : 4;
			const float *a = A + m0 * lda, *b = B + n0 * ldb;
			float *cc = C + m0 * ldc + n0;
			switch (mr * 8 + nr) {
			VW_CASE(4, 4) VW_CASE(4, 3) VW_CASE(4, 2) VW_CASE(4, 1)
			VW_CASE(3, 4) VW_CASE(3, 3) VW_CASE(3, 2) VW_CASE(3, 1)
			VW_CASE(2, 4) VW_CASE(2, 3) VW_CASE(2, 2) VW_CASE(2, 1)
			VW_CASE(1, 4) VW_CASE(1, 3) VW_CASE(1, 2) VW_CASE(1, 1)
			}
		}
	}
}
#else
static void vireo_wgrad_nt(long M, long N, long P, long nimg, const float *A, long lda, long as,
		const float *B, long ldb, long bs, float *C, long ldc, int acc) {}
#endif
*/
import "C"

// wgradNT is, on gemm512 CPUs only (the callers check),
//
//	for r < m, q < n: c[r*ldc+q] = beta*c[r*ldc+q] + sum_{i<nimg, p<P} a[i*as+r*lda+p] * b[i*bs+q*ldb+p]
//
// for beta 0 or 1: a GEMM with B transposed whose inner dimension is
// nimg blocks of P, summed in a fixed order (deterministic).
func wgradNT(m, n, P, nimg int, a []float32, lda, as int, b []float32, ldb, bs int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// Bounds, once: the C code trusts them.
	_ = c[(m-1)*ldc+n-1]
	if P > 0 && nimg > 0 {
		_ = a[(nimg-1)*as+(m-1)*lda+P-1]
		_ = b[(nimg-1)*bs+(n-1)*ldb+P-1]
	}
	acc := 0
	if beta == 1 {
		acc = 1
	}
	C.vireo_wgrad_nt(C.long(m), C.long(n), C.long(P), C.long(nimg), gptr(a), C.long(lda), C.long(as),
		gptr(b), C.long(ldb), C.long(bs), gptr(c), C.long(ldc), C.int(acc))
}
