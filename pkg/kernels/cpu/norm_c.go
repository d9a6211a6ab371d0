package cpu

// BatchNormalization's training kernels per channel in C: the float64
// sums over a channel's n planes (mean, squared deviations, the gradient
// sums) in 8 lanes of doubles (Go's loops ran scalar, two dependent add
// chains per sum), and the float32
// normalise/gradient passes. Each channel is summed in a fixed order, so
// results do not depend on Threads.

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_bn_stats
#cgo nocallback vireo_bn_stats
#cgo noescape vireo_bn_bwd_sums
#cgo nocallback vireo_bn_bwd_sums
#cgo noescape vireo_bn_affine
#cgo nocallback vireo_bn_affine
#cgo noescape vireo_bn_bwd_dx
#cgo nocallback vireo_bn_bwd_dx
#cgo noescape vireo_bn_affine_relu
#cgo nocallback vireo_bn_affine_relu
#cgo noescape vireo_bn_bwd_sums_relu
#cgo nocallback vireo_bn_bwd_sums_relu
#cgo noescape vireo_bn_bwd_dx_relu
#cgo nocallback vireo_bn_bwd_dx_relu

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_BN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_BN_CLONES
#endif

// 8 floats widened to 8 doubles (GCC vector extensions: one AVX-512
// register, two AVX2 or four SSE2 ones, per clone).
typedef float vireo_v8f __attribute__((vector_size(32), aligned(4)));
typedef double vireo_v8d __attribute__((vector_size(64)));
typedef int vireo_v8i __attribute__((vector_size(32), aligned(4)));

// Macros, not functions: passing 64-byte vectors to a function changes
// the ABI per clone (GCC's -Wpsabi warning).
#define VIREO_LOAD8(p) __builtin_convertvector(*(const vireo_v8f *)(p), vireo_v8d)
#define VIREO_HSUM8(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7]))

// vireo_bn_stats: mean and biased variance of x's n planes of s values,
// plane i at x + i*stride, in one pass: sums of d and d*d in double for
// d = x - x[0] (the shift keeps E[d^2] - E[d]^2 from cancelling when the
// mean is large against the spread).
VIREO_BN_CLONES
void vireo_bn_stats(const float *x, long n, long stride, long s, double *mean, double *var) {
	double k = n > 0 && s > 0 ? (double)x[0] : 0;
	vireo_v8d acc = {0}, sq = {0}, kv = {k, k, k, k, k, k, k, k};
	double tail = 0, tsq = 0;
	for (long i = 0; i < n; i++) {
		const float *p = x + i * stride;
		long j = 0;
		for (; j + 8 <= s; j += 8) {
			vireo_v8d d = VIREO_LOAD8(p + j) - kv;
			acc += d;
			sq += d * d;
		}
		for (; j < s; j++) {
			double d = (double)p[j] - k;
			tail += d;
			tsq += d * d;
		}
	}
	double cnt = (double)(n * s);
	double md = ((VIREO_HSUM8(acc)) + tail) / cnt;
	double v = ((VIREO_HSUM8(sq)) + tsq) / cnt - md * md;
	*mean = k + md;
	*var = v > 0 ? v : 0;
}

// vireo_bn_bwd_sums: sum(g) and sum(g*(x-m)) over n planes.
VIREO_BN_CLONES
void vireo_bn_bwd_sums(const float *g, const float *x, long n, long stride, long s, double m, double *sg, double *sgx) {
	vireo_v8d a = {0}, b = {0}, mv = {m, m, m, m, m, m, m, m};
	double ta = 0, tb = 0;
	for (long i = 0; i < n; i++) {
		const float *gp = g + i * stride, *xp = x + i * stride;
		long j = 0;
		for (; j + 8 <= s; j += 8) {
			vireo_v8d gv = VIREO_LOAD8(gp + j);
			a += gv;
			b += gv * (VIREO_LOAD8(xp + j) - mv);
		}
		for (; j < s; j++) {
			double gv = (double)gp[j];
			ta += gv;
			tb += gv * ((double)xp[j] - m);
		}
	}
	*sg = (VIREO_HSUM8(a)) + ta;
	*sgx = (VIREO_HSUM8(b)) + tb;
}

// vireo_bn_affine: y = x*a + b over n planes.
VIREO_BN_CLONES
void vireo_bn_affine(const float *x, float *y, long n, long stride, long s, float a, float b) {
	for (long i = 0; i < n; i++) {
		const float *restrict xp = x + i * stride;
		float *restrict yp = y + i * stride;
		for (long j = 0; j < s; j++) yp[j] = xp[j] * a + b;
	}
}

// vireo_bn_bwd_dx: dx = a*g + b*x + c over n planes.
VIREO_BN_CLONES
void vireo_bn_bwd_dx(const float *g, const float *x, float *dx, long n, long stride, long s, float a, float b, float c) {
	for (long i = 0; i < n; i++) {
		const float *restrict gp = g + i * stride, *restrict xp = x + i * stride;
		float *restrict o = dx + i * stride;
		for (long j = 0; j < s; j++) o[j] = a * gp[j] + b * xp[j] + c;
	}
}

// The same three passes for BatchNormalization -> Relu fused: the forward
// applies Relu as it writes (NaN stays NaN, as vireo_relu); the backward
// reads the gradient as (y > 0 ? g : 0), which is what Relu's backward
// would have written (y > 0 exactly where Relu's input was), so the sums
// and dx equal the unfused ones to the bit.
VIREO_BN_CLONES
void vireo_bn_affine_relu(const float *x, float *y, long n, long stride, long s, float a, float b) {
	for (long i = 0; i < n; i++) {
		const float *restrict xp = x + i * stride;
		float *restrict yp = y + i * stride;
		for (long j = 0; j < s; j++) {
			float v = xp[j] * a + b;
			yp[j] = (v > 0.0f || v != v) ? v : 0.0f;
		}
	}
}

VIREO_BN_CLONES
void vireo_bn_bwd_sums_relu(const float *g, const float *y, const float *x, long n, long stride, long s, double m, double *sg, double *sgx) {
	vireo_v8d a = {0}, b = {0}, mv = {m, m, m, m, m, m, m, m};
	double ta = 0, tb = 0;
	for (long i = 0; i < n; i++) {
		const float *gp = g + i * stride, *yp = y + i * stride, *xp = x + i * stride;
		long j = 0;
		for (; j + 8 <= s; j += 8) {
			// g where y > 0, else +0 (the bits of 0.0f): a compare and an and.
			vireo_v8f yv = *(const vireo_v8f *)(yp + j), gf = *(const vireo_v8f *)(gp + j), zero = {0};
			gf = (vireo_v8f)((vireo_v8i)gf & (yv > zero));
			vireo_v8d gv = __builtin_convertvector(gf, vireo_v8d);
			a += gv;
			b += gv * (VIREO_LOAD8(xp + j) - mv);
		}
		for (; j < s; j++) {
			double gv = (double)(yp[j] > 0.0f ? gp[j] : 0.0f);
			ta += gv;
			tb += gv * ((double)xp[j] - m);
		}
	}
	*sg = (VIREO_HSUM8(a)) + ta;
	*sgx = (VIREO_HSUM8(b)) + tb;
}

VIREO_BN_CLONES
void vireo_bn_bwd_dx_relu(const float *g, const float *y, const float *x, float *dx, long n, long stride, long s, float a, float b, float c) {
	for (long i = 0; i < n; i++) {
		const float *restrict gp = g + i * stride, *restrict yp = y + i * stride, *restrict xp = x + i * stride;
		float *restrict o = dx + i * stride;
		for (long j = 0; j < s; j++) o[j] = a * (yp[j] > 0.0f ? gp[j] : 0.0f) + b * xp[j] + c;
	}
}
*/
import "C"

// bnChannel addresses channel k's n planes of s values in an (N,C,S)
// tensor's data: the first at k*s, the next ch*s further on.
type bnChannel struct{ n, ch, s int }

func (g bnChannel) span(d []float32, k int) []float32 {
	return d[k*g.s : (g.n-1)*g.ch*g.s+(k+1)*g.s] // bounds the C loops
}

// stats returns channel k's mean and biased variance (float64):
//
//	mean = sum(x)/M, var = sum((x-mean)^2)/M over the channel's M = n*s values
//
// in one pass over x (shifted sums in double: vireo_bn_stats). Two passes
// (the mean, then squared deviations) read a training BatchNorm's input
// three times with the affine pass; one pass took
// BenchmarkBatchNorm/training from 0.92-0.98 to 0.66-0.84 ms on
// 8x64x56x56 (1 thread, interleaved).
func (g bnChannel) stats(x []float32, k int) (mean, variance float64) {
	xs := g.span(x, k)
	var m, v C.double
	C.vireo_bn_stats(fptr(xs), C.long(g.n), C.long(g.ch*g.s), C.long(g.s), &m, &v)
	return float64(m), float64(v)
}

// affine writes y = x*a + b over channel k (then Relu'd with relu).
func (g bnChannel) affine(x, y []float32, k int, a, b float32, relu bool) {
	if relu {
		C.vireo_bn_affine_relu(fptr(g.span(x, k)), fptr(g.span(y, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s), C.float(a), C.float(b))
		return
	}
	C.vireo_bn_affine(fptr(g.span(x, k)), fptr(g.span(y, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s), C.float(a), C.float(b))
}

// gradSums returns sum(dy) and sum(dy*(x-m)) over channel k (float64),
// with dy read as (y > 0 ? dy : 0) when y is not nil (a fused Relu).
func (g bnChannel) gradSums(dy, y, x []float32, k int, m float64) (sg, sgx float64) {
	var a, b C.double
	if y != nil {
		C.vireo_bn_bwd_sums_relu(fptr(g.span(dy, k)), fptr(g.span(y, k)), fptr(g.span(x, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s), C.double(m), &a, &b)
	} else {
		C.vireo_bn_bwd_sums(fptr(g.span(dy, k)), fptr(g.span(x, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s), C.double(m), &a, &b)
	}
	return float64(a), float64(b)
}

// inputGrad writes dx = a*dy + b*x + c over channel k, dy masked by
// y > 0 when y is not nil.
func (g bnChannel) inputGrad(dy, y, x, dx []float32, k int, a, b, c float32) {
	if y != nil {
		C.vireo_bn_bwd_dx_relu(fptr(g.span(dy, k)), fptr(g.span(y, k)), fptr(g.span(x, k)), fptr(g.span(dx, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s),
			C.float(a), C.float(b), C.float(c))
		return
	}
	C.vireo_bn_bwd_dx(fptr(g.span(dy, k)), fptr(g.span(x, k)), fptr(g.span(dx, k)), C.long(g.n), C.long(g.ch*g.s), C.long(g.s),
		C.float(a), C.float(b), C.float(c))
}
