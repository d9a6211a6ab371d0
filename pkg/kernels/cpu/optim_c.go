package cpu

// AdamW's element loop in C with AVX-512/AVX intrinsics (square root and
// division included): it touches every parameter, gradient and state value
// once per step, and Go's scalar loop ran at ~5-8 ns per parameter (a tenth
// of a ResNet-18 training step).

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#cgo noescape vireo_adamw
#cgo nocallback vireo_adamw
#include <math.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VIREO_OPT_X86 1
#endif

// The scalar loop. sqrtf keeps errno semantics, which stops GCC from
// vectorising it (-fno-math-errno is not an allowed cgo flag and the
// optimize attribute does not take), so the x86 versions below use
// intrinsics, with the same operations in the same order and contraction
// into FMAs off (GCC fuses intrinsic multiplies and adds otherwise): every
// version rounds like AdamWStep's Go reference loop, and a thread's chunk
// boundary (vector body or scalar tail) cannot change a bit.
__attribute__((optimize("fp-contract=off")))
static void vireo_adamw_scalar(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long i, long n,
		float b1, float b2, float eps, float stepSize, float invSqrtBC2, float decay) {
	float c1 = 1 - b1, c2 = 1 - b2;
	for (; i < n; i++) {
		float gi = g[i];
		float mi = b1 * m[i] + c1 * gi;
		float vi = b2 * v[i] + c2 * gi * gi;
		m[i] = mi;
		v[i] = vi;
		float den = sqrtf(vi) * invSqrtBC2 + eps;
		float pd = p[i] * decay;
		p[i] = den == 0 ? pd : pd - stepSize * mi / den;
	}
}

#ifdef VIREO_OPT_X86
__attribute__((target("avx512f"), optimize("fp-contract=off")))
static long vireo_adamw_512(float *p, const float *g, float *m, float *v, long n,
		float b1, float b2, float eps, float stepSize, float invSqrtBC2, float decay) {
	__m512 vb1 = _mm512_set1_ps(b1), vc1 = _mm512_set1_ps(1 - b1), vb2 = _mm512_set1_ps(b2), vc2 = _mm512_set1_ps(1 - b2);
	__m512 veps = _mm512_set1_ps(eps), vstep = _mm512_set1_ps(stepSize), vinv = _mm512_set1_ps(invSqrtBC2), vdec = _mm512_set1_ps(decay);
	__m512 zero = _mm512_setzero_ps();
	long i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 gi = _mm512_loadu_ps(g + i);
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(vc1, gi));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(vc2, gi), gi));
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		__m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), vinv), veps);
		__m512 pd = _mm512_mul_ps(_mm512_loadu_ps(p + i), vdec);
		__m512 upd = _mm512_div_ps(_mm512_mul_ps(vstep, mi), den);
		__mmask16 nz = _mm512_cmp_ps_mask(den, zero, _CMP_NEQ_UQ);
		_mm512_storeu_ps(p + i, _mm512_mask_sub_ps(pd, nz, pd, upd));
	}
	return i;
}

__attribute__((target("avx"), optimize("fp-contract=off")))
static long vireo_adamw_256(float *p, const float *g, float *m, float *v, long n,
		float b1, float b2, float eps, float stepSize, float invSqrtBC2, float decay) {
	__m256 vb1 = _mm256_set1_ps(b1), vc1 = _mm256_set1_ps(1 - b1), vb2 = _mm256_set1_ps(b2), vc2 = _mm256_set1_ps(1 - b2);
	__m256 veps = _mm256_set1_ps(eps), vstep = _mm256_set1_ps(stepSize), vinv = _mm256_set1_ps(invSqrtBC2), vdec = _mm256_set1_ps(decay);
	__m256 zero = _mm256_setzero_ps();
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 gi = _mm256_loadu_ps(g + i);
		__m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, gi));
		__m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(vc2, gi), gi));
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(v + i, vi);
		__m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), vinv), veps);
		__m256 pd = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdec);
		__m256 upd = _mm256_div_ps(_mm256_mul_ps(vstep, mi), den);
		__m256 eq0 = _mm256_cmp_ps(den, zero, _CMP_EQ_OQ);
		_mm256_storeu_ps(p + i, _mm256_blendv_ps(_mm256_sub_ps(pd, upd), pd, eq0));
	}
	return i;
}
#endif

// vireo_adamw: see AdamWStep.
void vireo_adamw(float *p, const float *g, float *m, float *v, long n,
		float b1, float b2, float eps, float stepSize, float invSqrtBC2, float decay) {
	long i = 0;
#ifdef VIREO_OPT_X86
	if (__builtin_cpu_supports("avx512f")) {
		i = vireo_adamw_512(p, g, m, v, n, b1, b2, eps, stepSize, invSqrtBC2, decay);
	} else if (__builtin_cpu_supports("avx")) {
		i = vireo_adamw_256(p, g, m, v, n, b1, b2, eps, stepSize, invSqrtBC2, decay);
	}
#endif
	vireo_adamw_scalar(p, g, m, v, i, n, b1, b2, eps, stepSize, invSqrtBC2, decay);
}
*/
import "C"

// adamwRange runs AdamWStep's element loop over [lo,hi) (C, vectorised).
type adamwRange struct {
	p, g, m, v                               []float32
	b1, b2, eps, stepSize, invSqrtBC2, decay float32
}

func (a *adamwRange) run(lo, hi int) {
	if hi <= lo {
		return
	}
	p, g, m, v := a.p[lo:hi], a.g[lo:hi], a.m[lo:hi], a.v[lo:hi]
	C.vireo_adamw(fptr(p), fptr(g), fptr(m), fptr(v), C.long(len(p)),
		C.float(a.b1), C.float(a.b2), C.float(a.eps), C.float(a.stepSize), C.float(a.invSqrtBC2), C.float(a.decay))
}
