package cpu

// Max-pool backward of one plane in C: the Go loop (the comment of
// poolMaxBackwardPlane) spent its time on bounds checks; it was 3.5% of a
// resnet18 training step at 64x64 (the stem's 3x3/2 pool).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_pool_max_bwd
#cgo nocallback vireo_pool_max_bwd

// vireo_pool_max_bwd adds dy[oh][ow] to dx at the first maximum of x in
// each window (scanning rows then columns; later equal values do not win).
// dx must be cleared by the caller.
void vireo_pool_max_bwd(float *dx, const float *dy, const float *x,
                        long H, long W, long oH, long oW,
                        long kh, long kw, long sh, long sw, long ph, long pw, long dh, long dw) {
	for (long oh = 0; oh < oH; oh++) {
		long ih0 = oh * sh - ph;
		int rows_in = ih0 >= 0 && ih0 + (kh - 1) * dh < H;
		for (long ow = 0; ow < oW; ow++) {
			long iw0 = ow * sw - pw;
			if (rows_in && iw0 >= 0 && iw0 + (kw - 1) * dw < W) {
				// The whole window is inside the plane: no checks.
				const float *p = x + ih0 * W + iw0;
				float best = p[0];
				long at = 0;
				for (long a = 0; a < kh; a++)
					for (long b = 0; b < kw; b++) {
						long o = a * dh * W + b * dw;
						if (p[o] > best) {
							best = p[o];
							at = o;
						}
					}
				dx[ih0 * W + iw0 + at] += dy[oh * oW + ow];
				continue;
			}
			float best = 0.0f;
			long at = -1;
			for (long a = 0; a < kh; a++) {
				long ih = oh * sh - ph + a * dh;
				if (ih < 0 || ih >= H) continue;
				const float *row = x + ih * W;
				for (long b = 0; b < kw; b++) {
					long iw = ow * sw - pw + b * dw;
					if (iw < 0 || iw >= W) continue;
					float v = row[iw];
					if (at < 0 || v > best) {
						best = v;
						at = ih * W + iw;
					}
				}
			}
			if (at >= 0) dx[at] += dy[oh * oW + ow];
		}
	}
}
*/
import "C"

import "unsafe"

// poolMaxBackwardPlane routes each dy of one plane to the first maximum of
// its window in xp, adding into dxp (cleared by the caller). It is, in C:
//
//	for oh, ow: best, at = 0, -1
//		for kh, kw with (ih, iw) inside the plane:
//			if at < 0 || xp[ih*W+iw] > best { best, at = xp[ih*W+iw], ih*W+iw }
//		if at >= 0 { dxp[at] += dyp[oh*oW+ow] }
func poolMaxBackwardPlane(dxp, dyp, xp []float32, ah, aw *poolAxis) {
	if len(dxp) < ah.in*aw.in || len(xp) < ah.in*aw.in || len(dyp) < ah.out*aw.out {
		panic("cpu: poolMaxBackwardPlane: short plane")
	}
	if ah.out == 0 || aw.out == 0 {
		return
	}
	C.vireo_pool_max_bwd((*C.float)(unsafe.Pointer(&dxp[0])), (*C.float)(unsafe.Pointer(&dyp[0])), (*C.float)(unsafe.Pointer(&xp[0])),
		C.long(ah.in), C.long(aw.in), C.long(ah.out), C.long(aw.out),
		C.long(ah.k), C.long(aw.k), C.long(ah.s), C.long(aw.s), C.long(ah.pb), C.long(aw.pb), C.long(ah.d), C.long(aw.d))
}
