package cpu

// Vectorised inference loops in C (Go does not vectorise): binary
// elementwise rows (Add, Sub, Mul, Div), the piecewise-linear activations
// (LeakyRelu, HardSigmoid, HardSwish, Clip), the fused convolution
// epilogue (bias, residual, activation on a block of output rows), max
// pooling planes and plane sums. Built for AVX-512, AVX2+FMA and baseline
// x86-64 like conv_c.go. The plain loops they equal are in the comments of
// their Go wrappers; every select is written so a NaN input gives NaN, as
// the Go loops do.

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_bin
#cgo nocallback vireo_bin
#cgo noescape vireo_act
#cgo nocallback vireo_act
#cgo noescape vireo_epilogue
#cgo nocallback vireo_epilogue
#cgo noescape vireo_maxpool2
#cgo nocallback vireo_maxpool2
#cgo noescape vireo_maxpool3s2
#cgo nocallback vireo_maxpool3s2
#cgo noescape vireo_plane_sums
#cgo nocallback vireo_plane_sums

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_FAST_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_FAST_CLONES
#endif

// In activation_c.go.
void vireo_sigmoid(const float *x, float *y, long n);

enum { VB_ADD, VB_SUB, VB_MUL, VB_DIV };

// vireo_bin: c[i] = a[i*la] op b[i*lb], la and lb in {0,1}, not both 0.
// c may alias a or b exactly (same start).
VIREO_FAST_CLONES
void vireo_bin(int op, const float *a, const float *b, float *c, long n, int la, int lb) {
	if (la && lb) {
		switch (op) {
		case VB_ADD: for (long i = 0; i < n; i++) c[i] = a[i] + b[i]; break;
		case VB_SUB: for (long i = 0; i < n; i++) c[i] = a[i] - b[i]; break;
		case VB_MUL: for (long i = 0; i < n; i++) c[i] = a[i] * b[i]; break;
		default:     for (long i = 0; i < n; i++) c[i] = a[i] / b[i]; break;
		}
	} else if (la) {
		float v = b[0];
		switch (op) {
		case VB_ADD: for (long i = 0; i < n; i++) c[i] = a[i] + v; break;
		case VB_SUB: for (long i = 0; i < n; i++) c[i] = a[i] - v; break;
		case VB_MUL: for (long i = 0; i < n; i++) c[i] = a[i] * v; break;
		default:     for (long i = 0; i < n; i++) c[i] = a[i] / v; break;
		}
	} else {
		float v = a[0];
		switch (op) {
		case VB_ADD: for (long i = 0; i < n; i++) c[i] = v + b[i]; break;
		case VB_SUB: for (long i = 0; i < n; i++) c[i] = v - b[i]; break;
		case VB_MUL: for (long i = 0; i < n; i++) c[i] = v * b[i]; break;
		default:     for (long i = 0; i < n; i++) c[i] = v / b[i]; break;
		}
	}
}

// Activation codes (see actCode in Go).
enum { VA_NONE, VA_RELU, VA_LEAKY, VA_HSIG, VA_HSWISH, VA_CLIP, VA_SIGMOID };

// The clamps below are selects on comparisons, which are false for NaN,
// so a NaN input stays NaN (t < 0 and t > 1 both fail).
#define VIREO_ACT_LOOP(KIND, X, Y, N, ALPHA, BETA) \
	switch (KIND) { \
	case VA_RELU: \
		for (long i = 0; i < (N); i++) { float v = (X)[i]; (Y)[i] = (v > 0.0f || v != v) ? v : 0.0f; } \
		break; \
	case VA_LEAKY: \
		for (long i = 0; i < (N); i++) { float v = (X)[i]; (Y)[i] = v < 0.0f ? v * (ALPHA) : v; } \
		break; \
	case VA_HSIG: \
		for (long i = 0; i < (N); i++) { float t = (ALPHA) * (X)[i] + (BETA); t = t < 0.0f ? 0.0f : t; t = t > 1.0f ? 1.0f : t; (Y)[i] = t; } \
		break; \
	case VA_HSWISH: \
		for (long i = 0; i < (N); i++) { float v = (X)[i]; float t = v / 6.0f + 0.5f; t = t < 0.0f ? 0.0f : t; t = t > 1.0f ? 1.0f : t; (Y)[i] = v * t; } \
		break; \
	case VA_CLIP: \
		for (long i = 0; i < (N); i++) { float v = (X)[i]; v = v < (ALPHA) ? (ALPHA) : v; v = v > (BETA) ? (BETA) : v; (Y)[i] = v; } \
		break; \
	case VA_SIGMOID: \
		vireo_sigmoid((X), (Y), (N)); \
		break; \
	default: \
		if ((Y) != (X)) for (long i = 0; i < (N); i++) (Y)[i] = (X)[i]; \
		break; \
	}

// vireo_act: y[i] = act(x[i]); y may be x.
VIREO_FAST_CLONES
void vireo_act(int kind, float alpha, float beta, const float *x, float *y, long n) {
	VIREO_ACT_LOOP(kind, x, y, n, alpha, beta)
}

// vireo_epilogue: for r < rows, i < cols:
//   y[r*ldy+i] = act((y[r*ldy+i] + bias[r]) + res[r*ldr+i])  (then *scale + shift if affine)
// bias and res may be NULL (skipped).
VIREO_FAST_CLONES
void vireo_epilogue(float *y, long rows, long cols, long ldy, const float *bias, const float *res, long ldr, int kind, float alpha, float beta,
		int affine, float scale, float shift) {
	for (long r = 0; r < rows; r++) {
		float *restrict yr = y + r * ldy;
		if (bias && res) {
			const float *restrict rr = res + r * ldr;
			float bv = bias[r];
			for (long i = 0; i < cols; i++) yr[i] = (yr[i] + bv) + rr[i];
		} else if (bias) {
			float bv = bias[r];
			for (long i = 0; i < cols; i++) yr[i] += bv;
		} else if (res) {
			const float *restrict rr = res + r * ldr;
			for (long i = 0; i < cols; i++) yr[i] += rr[i];
		}
		if (kind != VA_NONE) {
			VIREO_ACT_LOOP(kind, yr, yr, cols, alpha, beta)
		}
		if (affine) {
			for (long i = 0; i < cols; i++) yr[i] = yr[i] * scale + shift;
		}
	}
}

// vireo_maxpool2: 2x2 windows, stride 2, no padding or dilation, over
// planes whole planes of h x w into oh x ow (oh = h/2, ow = w/2, floor):
// y = max of the four taps (NaN if any is NaN).
static inline float vireo_max(float a, float b) {
	return (a != a) ? a : ((b > a || b != b) ? b : a);
}

VIREO_FAST_CLONES
void vireo_maxpool2(const float *x, float *y, long planes, long h, long w, long oh, long ow) {
	for (long p = 0; p < planes; p++) {
		const float *xp = x + p * h * w;
		float *yp = y + p * oh * ow;
		for (long oy = 0; oy < oh; oy++) {
			const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
			float *restrict yr = yp + oy * ow;
			for (long ox = 0; ox < ow; ox++) {
				float m0 = vireo_max(r0[2 * ox], r0[2 * ox + 1]);
				float m1 = vireo_max(r1[2 * ox], r1[2 * ox + 1]);
				yr[ox] = vireo_max(m0, m1);
			}
		}
	}
}

// vireo_maxpool3s2: 3x3 windows, stride 2, top and left padding pt, pl
// (0 or 1; padding never wins), over whole planes of h x w into oh x ow;
// every window has at least one tap inside (the caller checks). First
// the max of each window's rows into t (contiguous, vectorised), then of
// each window's three columns of t. w <= VIREO_POOL3_MAXW.
#define VIREO_POOL3_MAXW 4096

// vireo_pool3_edge: the max of t[c0 .. c0+2] clipped to [0,w) (a window
// at the row's edge).
static inline float vireo_pool3_edge(const float *t, long w, long c0) {
	long c1 = c0 + 3;
	if (c0 < 0) c0 = 0;
	if (c1 > w) c1 = w;
	float m = t[c0];
	for (long c = c0 + 1; c < c1; c++) m = vireo_max(m, t[c]);
	return m;
}
VIREO_FAST_CLONES
void vireo_maxpool3s2(const float *x, float *y, long planes, long h, long w, long oh, long ow, long pt, long pl) {
	float t[VIREO_POOL3_MAXW];
	for (long p = 0; p < planes; p++) {
		const float *xp = x + p * h * w;
		float *yp = y + p * oh * ow;
		for (long oy = 0; oy < oh; oy++) {
			long r0 = 2 * oy - pt, r1 = r0 + 3;
			if (r0 < 0) r0 = 0;
			if (r1 > h) r1 = h;
			const float *a = xp + r0 * w;
			if (r1 - r0 == 3) {
				const float *b = a + w, *c = b + w;
				for (long i = 0; i < w; i++) t[i] = vireo_max(vireo_max(a[i], b[i]), c[i]);
			} else if (r1 - r0 == 2) {
				const float *b = a + w;
				for (long i = 0; i < w; i++) t[i] = vireo_max(a[i], b[i]);
			} else {
				for (long i = 0; i < w; i++) t[i] = a[i];
			}
			float *restrict yr = yp + oy * ow;
			// Outputs whose three columns 2*ox-pl .. 2*ox-pl+2 are all inside.
			long lo = pl, hi = w - 3 + pl >= 0 ? (w - 3 + pl) / 2 + 1 : 0;
			if (hi > ow) hi = ow;
			if (lo > hi) lo = hi;
			for (long ox = 0; ox < lo; ox++) yr[ox] = vireo_pool3_edge(t, w, 2 * ox - pl);
			const float *tc = t - pl;
			for (long ox = lo; ox < hi; ox++)
				yr[ox] = vireo_max(vireo_max(tc[2 * ox], tc[2 * ox + 1]), tc[2 * ox + 2]);
			for (long ox = hi; ox < ow; ox++) yr[ox] = vireo_pool3_edge(t, w, 2 * ox - pl);
		}
	}
}

// vireo_plane_sums: y[p] = sum of x[p*size .. (p+1)*size) in double,
// as 8 partial sums per plane (a fixed order for a given size).
VIREO_FAST_CLONES
void vireo_plane_sums(const float *x, double *y, long planes, long size) {
	for (long p = 0; p < planes; p++) {
		const float *xp = x + p * size;
		double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		long i = 0;
		for (; i + 8 <= size; i += 8)
			for (int k = 0; k < 8; k++) s[k] += (double)xp[i + k];
		double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
		for (; i < size; i++) t += (double)xp[i];
		y[p] = t;
	}
}
*/
import "C"

import (
	"unsafe"

	"vireo/pkg/kernels"
)

// cMinRow is the row length from which a C loop beats the Go one despite
// the cgo call.
const cMinRow = 32

func fastPtr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// binRowC is binRow for Add, Sub, Mul and Div (ok=false for other ops or
// rows too short to be worth the call): c[i] = a[i*la] op b[i*lb].
func binRowC(op kernels.BinaryOp, c, a, b []float32, la, lb int) bool {
	if op > kernels.OpDiv || len(c) < cMinRow || (la == 0 && lb == 0) {
		return false
	}
	if la == 1 {
		a = a[:len(c)]
	}
	if lb == 1 {
		b = b[:len(c)]
	}
	C.vireo_bin(C.int(op), fastPtr(a), fastPtr(b), fastPtr(c), C.long(len(c)), C.int(la), C.int(lb))
	return true
}

// actCode is the C code of an activation (ok=false for those done in Go).
func actCode(a kernels.Act) (int32, bool) {
	switch a.Kind {
	case kernels.ActIdentity:
		return C.VA_NONE, true
	case kernels.ActRelu:
		return C.VA_RELU, true
	case kernels.ActLeakyRelu:
		return C.VA_LEAKY, true
	case kernels.ActHardSigmoid:
		return C.VA_HSIG, true
	case kernels.ActHardSwish:
		return C.VA_HSWISH, true
	case kernels.ActClip:
		return C.VA_CLIP, true
	case kernels.ActSigmoid:
		return C.VA_SIGMOID, true
	}
	return 0, false
}

// actC applies a (LeakyRelu, HardSigmoid, HardSwish or Clip; ok=false for
// others) to x into y, equal to actForward's Go loops; y may be x.
func actC(y, x []float32, a kernels.Act) bool {
	switch a.Kind {
	case kernels.ActLeakyRelu, kernels.ActHardSigmoid, kernels.ActHardSwish, kernels.ActClip:
	default:
		return false
	}
	if len(x) == 0 {
		return true
	}
	k, _ := actCode(a)
	y = y[:len(x)]
	C.vireo_act(C.int(k), C.float(a.Alpha), C.float(a.Beta), fastPtr(x), fastPtr(y), C.long(len(x)))
	return true
}

// epilogue is, for r < rows and i < cols,
//
//	y[r*ldy+i] = act((y[r*ldy+i] + bias[r]) + res[r*ldr+i])   (then *a.Scale + a.Shift if a.Affine)
//
// with a nil bias or res skipped; code from actCode.
func epilogue(y []float32, rows, cols, ldy int, bias, res []float32, ldr int, code int32, a kernels.Act) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = y[(rows-1)*ldy+cols-1]
	var bp, rp *C.float
	if bias != nil {
		_ = bias[rows-1]
		bp = fastPtr(bias)
	}
	if res != nil {
		_ = res[(rows-1)*ldr+cols-1]
		rp = fastPtr(res)
	}
	affine := 0
	if a.Affine {
		affine = 1
	}
	C.vireo_epilogue(fastPtr(y), C.long(rows), C.long(cols), C.long(ldy), bp, rp, C.long(ldr), C.int(code), C.float(a.Alpha), C.float(a.Beta),
		C.int(affine), C.float(a.Scale), C.float(a.Shift))
}

// maxPool2C is a 2x2 stride-2 unpadded max pool of planes h x w into
// oh x ow (C): y = max of the four taps, NaN if one is NaN.
func maxPool2C(y, x []float32, planes, h, w, oh, ow int) {
	if planes == 0 || oh == 0 || ow == 0 {
		return
	}
	_ = x[planes*h*w-1]
	_ = y[planes*oh*ow-1]
	C.vireo_maxpool2(fastPtr(x), fastPtr(y), C.long(planes), C.long(h), C.long(w), C.long(oh), C.long(ow))
}

// pool3MaxW is the widest input row maxPool3s2C takes (its C row buffer,
// VIREO_POOL3_MAXW).
const pool3MaxW = C.VIREO_POOL3_MAXW

// maxPool3s2C is a 3x3 stride-2 max pool of planes h x w into oh x ow
// with top and left padding pt, pl (C); see maxPool3s2 for when it applies.
func maxPool3s2C(y, x []float32, planes, h, w, oh, ow, pt, pl int) {
	if planes == 0 || oh == 0 || ow == 0 {
		return
	}
	_ = x[planes*h*w-1]
	_ = y[planes*oh*ow-1]
	C.vireo_maxpool3s2(fastPtr(x), fastPtr(y), C.long(planes), C.long(h), C.long(w), C.long(oh), C.long(ow), C.long(pt), C.long(pl))
}

// planeSumsC writes the float64 sum of each of the planes of x (size
// elements each) into y.
func planeSumsC(y []float64, x []float32, size int) {
	if len(y) == 0 || size == 0 {
		return
	}
	_ = x[len(y)*size-1]
	C.vireo_plane_sums(fastPtr(x), (*C.double)(unsafe.Pointer(unsafe.SliceData(y))), C.long(len(y)), C.long(size))
}
