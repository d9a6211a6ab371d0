package cpu

// The hot activation loops (Relu forward and backward, Sigmoid) in C so
// the compiler vectorises them (Go does not), built for AVX-512, AVX2+FMA
// and baseline x86-64 like conv_c.go. The plain loops they equal are in the
// comments of their Go wrappers.

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_ACT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_ACT_CLONES
#endif

VIREO_ACT_CLONES
void vireo_relu(const float *x, float *y, long n) {
	for (long i = 0; i < n; i++) {
		float v = x[i];
		y[i] = (v > 0.0f || v != v) ? v : 0.0f; // NaN stays NaN
	}
}

VIREO_ACT_CLONES
void vireo_relu_backward(const float *x, const float *dy, float *dx, long n) {
	for (long i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

static inline float vireo_pow2i(int32_t n) {
	union { uint32_t u; float f; } b;
	b.u = (uint32_t)(n + 127) << 23;
	return b.f;
}

// vireo_expneg is exp(t) for -104 <= t <= 0 (Cephes expf: t = n*ln2 + r
// with |r| <= ln2/2, a degree-6 polynomial for exp(r), then a scale by 2^n
// in two halves so results down to the smallest denormal come out right).
static inline float vireo_expneg(float t) {
	// Nearest integer to t*log2(e) <= 0: truncation of z-0.5 is ceil(z-0.5).
	int32_t ni = (int32_t)(t * 1.44269504088896341f - 0.5f);
	float n = (float)ni;
	float r = t - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	int32_t n1 = ni / 2, n2 = ni - n1;
	return p * vireo_pow2i(n1) * vireo_pow2i(n2);
}

// vireo_sigmoid: with e = exp(-|x|) in (0,1], sigmoid(x) = 1/(1+e) for
// x >= 0 and e/(1+e) for x < 0: neither overflows. Blocks of 256: the
// first loop copies x (so y may be x) and clamps -|x| to [-104, 0]
// (exp(-104) rounds to 0 in float32; NaN becomes 0), the second does the
// rest, the third puts NaN back. GCC vectorises each loop, but not all
// three fused (the selects block it before AVX-512).
VIREO_ACT_CLONES
void vireo_sigmoid(const float *x, float *y, long n) {
	float u[256], t[256];
	for (long b = 0; b < n; b += 256) {
		long m = n - b < 256 ? n - b : 256;
		for (long i = 0; i < m; i++) {
			float v = x[b + i];
			float a = -__builtin_fabsf(v);
			u[i] = v;
			t[i] = a > -104.0f ? a : (a != a ? 0.0f : -104.0f);
		}
		float *yb = y + b;
		for (long i = 0; i < m; i++) {
			float e = vireo_expneg(t[i]);
			float num = u[i] < 0.0f ? e : 1.0f;
			yb[i] = num / (1.0f + e);
		}
		for (long i = 0; i < m; i++) {
			float v = u[i];
			yb[i] = v != v ? v : yb[i];
		}
	}
}
*/
import "C"

import "unsafe"

func actPtr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// reluC equals
//
//	for i := range x { y[i] = x[i] > 0 || x[i] is NaN ? x[i] : 0 }
//
// y may be x; len(y) == len(x).
func reluC(y, x []float32) {
	if len(x) > 0 {
		C.vireo_relu(actPtr(x), actPtr(y), C.long(len(x)))
	}
}

// reluBackwardC equals
//
//	for i := range x { dx[i] = x[i] > 0 ? dy[i] : 0 }
//
// dx may be dy.
func reluBackwardC(dx, dy, x []float32) {
	if len(x) > 0 {
		C.vireo_relu_backward(actPtr(x), actPtr(dy), actPtr(dx), C.long(len(x)))
	}
}

// sigmoidC equals (within 2 ulp of float32 rounding of the exact value)
//
//	for i := range x { y[i] = 1 / (1 + exp(-x[i])) }
//
// computed stably (exp of -|x| only); y may be x.
func sigmoidC(y, x []float32) {
	if len(x) > 0 {
		C.vireo_sigmoid(actPtr(x), actPtr(y), C.long(len(x)))
	}
}
