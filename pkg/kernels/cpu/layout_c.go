package cpu

// DepthToSpace's row loop in C: it is a pure interleave (forward) or
// de-interleave (backward) of b rows into one, and the Go loop's strided,
// bounds-checked stores made it ~12% of the vtest-people U-Net's inference
// (its decoder upsamples with conv + DepthToSpace). GCC vectorises the
// b=2 case; target_clones picks AVX-512, AVX2 or baseline at load time.

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_d2s_rows
#cgo nocallback vireo_d2s_rows

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_CLONES
#endif

// vireo_d2s_rows runs units [lo,hi) of (n, c, h) of a DepthToSpace with
// block b between dd (N, C, H, W) and sd (N, C/(b*b), H*b, W*b): forward
// (back = 0) writes sd from dd, backward reads sd into dd. crd picks the
// channel order (ch0*b*b + i*b + j; DCR: (i*b + j)*oc + ch0).
VIREO_CLONES
void vireo_d2s_rows(float *dd, float *sd, long b, long C, long H, long W,
                    int crd, int back, long lo, long hi) {
	long oc = C / (b * b), ow = W * b;
	for (long u = lo; u < hi; u++) {
		long h = u % H, nc = u / H;
		long n = nc / oc, ch0 = nc % oc;
		for (long i = 0; i < b; i++) {
			float *restrict srow = sd + (nc * H * b + h * b + i) * ow;
			if (b == 2) {
				long c0 = crd ? ch0 * 4 + i * 2 : (i * 2) * oc + ch0;
				long c1 = crd ? c0 + 1 : c0 + oc;
				float *restrict r0 = dd + ((n * C + c0) * H + h) * W;
				float *restrict r1 = dd + ((n * C + c1) * H + h) * W;
				if (back) {
					for (long w = 0; w < W; w++) {
						r0[w] = srow[2 * w];
						r1[w] = srow[2 * w + 1];
					}
				} else {
					for (long w = 0; w < W; w++) {
						srow[2 * w] = r0[w];
						srow[2 * w + 1] = r1[w];
					}
				}
				continue;
			}
			for (long j = 0; j < b; j++) {
				long ch = crd ? ch0 * b * b + i * b + j : (i * b + j) * oc + ch0;
				float *restrict drow = dd + ((n * C + ch) * H + h) * W;
				if (back) {
					for (long w = 0; w < W; w++) drow[w] = srow[w * b + j];
				} else {
					for (long w = 0; w < W; w++) srow[w * b + j] = drow[w];
				}
			}
		}
	}
}
*/
import "C"

import "unsafe"

// run is the loop below, in C:
//
//	for u := lo; u < hi; u++ {
//		h, nc := u%H, u/H
//		n, ch0 := nc/oc, nc%oc
//		for i := range b {
//			srow := sd[(nc*H*b+h*b+i)*ow:][:ow]
//			for j := range b {
//				ch := (i*b+j)*oc + ch0 // CRD: ch0*b*b + i*b + j
//				drow := dd[((n*C+ch)*H+h)*W:][:W]
//				for w := range drow { // back: drow[w] = srow[w*b+j]
//					srow[w*b+j] = drow[w]
//				}
//			}
//		}
//	}
func (r *d2sRows) run(lo, hi int) {
	if lo >= hi {
		return
	}
	C.vireo_d2s_rows((*C.float)(unsafe.Pointer(&r.dd[0])), (*C.float)(unsafe.Pointer(&r.sd[0])),
		C.long(r.b), C.long(r.C), C.long(r.H), C.long(r.W), cFlag(r.crd), cFlag(r.back), C.long(lo), C.long(hi))
}

// cFlag is a bool as a C int.
func cFlag(v bool) C.int {
	if v {
		return 1
	}
	return 0
}
