// Row copies with AVX-512 masked loads and stores, shared by the
// convolution files' C (conv_c.go, conv_backward_c.go).
//
// A convolution's padded or strided copies (im2col rows, phase planes)
// are made of short rows on small inputs (4 to 32 floats at 28..64 px),
// and the scalar loops spent most of their time setting each row up. Here
// a row of up to 32 values (stride 1) or 16 (stride 2) is one or two
// masked loads, a permute for stride 2 and masked stores. Masked-off
// lanes read as zero and never fault, so the zero padding is free and a
// load may start before the row or run past it.
#ifndef VIREO_ROWS_H
#define VIREO_ROWS_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define VIREO_ROWS_512 1

// vireo_rows_fit: whether rows of n outputs at stride sw fit vireo_row512.
static inline int vireo_rows_fit(int n, int sw) { return (sw == 1 && n <= 32) || (sw == 2 && n <= 16); }

// vireo_rows_has512: whether the CPU runs AVX-512F. No cache of our
// own: the callers run on several threads at once, and libgcc's CPU model
// is already read once (the init call returns at once after the first).
static inline int vireo_rows_has512(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}

// vireo_row_masks: the load masks (lanes 0-15, 16-31 from the row's
// start) of outputs [lo,hi) at stride sw: inputs lo*sw .. (hi-1)*sw.
static inline void vireo_row_masks(int lo, int hi, int sw, __mmask16 *m0, __mmask16 *m1) {
	unsigned long long span = 0;
	if (hi > lo) {
		int a = lo * sw, b = (hi - 1) * sw + 1;
		span = (b >= 64 ? ~0ULL : (1ULL << b) - 1) & ~((1ULL << a) - 1);
	}
	*m0 = (__mmask16)span;
	*m1 = (__mmask16)(span >> 16);
}

// vireo_row512: out[i] = in[i*sw] for the outputs the masks (from
// vireo_row_masks) select, 0 for the others, i < n; in == NULL writes
// zeros. n and sw as vireo_rows_fit allows.
__attribute__((target("avx512f"))) static inline void vireo_row512(float *out, const float *in, int n, int sw,
		__mmask16 m0, __mmask16 m1) {
	__m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
	if (in && (m0 | m1)) {
		v0 = _mm512_maskz_loadu_ps(m0, in);
		v1 = _mm512_maskz_loadu_ps(m1, in + 16);
		if (sw == 2) {
			const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
			v0 = _mm512_permutex2var_ps(v0, evens, v1);
		}
	}
	_mm512_mask_storeu_ps(out, (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1), v0);
	if (n > 16) _mm512_mask_storeu_ps(out + 16, (__mmask16)(n >= 32 ? 0xFFFF : (1u << (n - 16)) - 1), v1);
}

// vireo_row512_add is vireo_row512's adjoint: out[i*sw] += vals[i] for
// the outputs i the masks select (vals holds n values). For stride 2 the
// values are spread to the even lanes of the two 16-lane halves.
__attribute__((target("avx512f"))) static inline void vireo_row512_add(float *out, const float *vals, int n, int sw,
		__mmask16 m0, __mmask16 m1) {
	__m512 v0 = _mm512_maskz_loadu_ps((__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1), vals);
	__m512 v1 = _mm512_setzero_ps();
	if (sw == 2) {
		const __m512i lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
		const __m512i hi = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
		v1 = _mm512_permutexvar_ps(hi, v0);
		v0 = _mm512_permutexvar_ps(lo, v0);
		m0 &= 0x5555;
		m1 &= 0x5555;
	} else if (n > 16) {
		v1 = _mm512_maskz_loadu_ps((__mmask16)(n >= 32 ? 0xFFFF : (1u << (n - 16)) - 1), vals + 16);
	}
	if (m0) _mm512_mask_storeu_ps(out, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, out), v0));
	if (m1) _mm512_mask_storeu_ps(out + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, out + 16), v1));
}
#endif

#endif
