package video

// Shrinking with area averaging (OpenCV's INTER_AREA) in C, separably:
// OpenCV's resizeArea for a non-integer scale sums each source row into a
// horizontal buffer through a scattered table, one scalar multiply-add per
// source value; 768x576 -> 160x160 takes 1.2 ms, twice the decode of the
// frame. Here each output row first sums its source rows with their
// vertical weights (a contiguous loop the compiler vectorises), then sums
// that one row horizontally: 0.32 ms (BenchmarkArea, quiet machine). The weights are OpenCV's
// (computeResizeAreaTab), so outputs equal cv::resize(INTER_AREA) but for
// exact ties (x.5), which the two round apart depending on the order of the
// float sums. Integer scales take OpenCV's own integer arithmetic
// (resizeAreaFast) and match it byte for byte, so datasets prepared from
// video (vtest-people at 2x, megamind-face at 3x) are unchanged
// (TestAreaMatchesOpenCV).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_area_resize
#cgo nocallback vireo_area_resize
#cgo noescape vireo_area_int
#cgo nocallback vireo_area_int
#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_AREA_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VIREO_AREA_CLONES
#endif

// vireo_area_resize shrinks src (rows of sw pixels of cn uint8 channels,
// sstride bytes apart; the tables say which rows) into dst (dh x dw x cn, contiguous).
// Output row dy sums source rows ystart[dy] .. ystart[dy]+ycount[dy]-1
// with weights yw[yoff[dy]..]; output column dx sums source columns
// xstart[dx] .. with weights xw[xoff[dx]..]. acc holds sw*cn floats.
VIREO_AREA_CLONES
void vireo_area_resize(const uint8_t *src, long sw, long sstride, long cn,
                       uint8_t *dst, long dw, long dh,
                       const int32_t *ystart, const int32_t *ycount, const int32_t *yoff, const float *yw,
                       const int32_t *xstart, const int32_t *xcount, const int32_t *xoff, const float *xw,
                       float *acc) {
	long n = sw * cn;
	for (long dy = 0; dy < dh; dy++) {
		const float *w = yw + yoff[dy];
		const uint8_t *s = src + (long)ystart[dy] * sstride;
		float w0 = w[0];
		for (long i = 0; i < n; i++) acc[i] = w0 * (float)s[i];
		for (long k = 1; k < ycount[dy]; k++) {
			const uint8_t *r = s + k * sstride;
			float wk = w[k];
			for (long i = 0; i < n; i++) acc[i] += wk * (float)r[i];
		}
		uint8_t *d = dst + dy * dw * cn;
		for (long dx = 0; dx < dw; dx++) {
			const float *v = xw + xoff[dx];
			const float *a = acc + (long)xstart[dx] * cn;
			long m = xcount[dx];
			for (long c = 0; c < cn; c++) {
				float t = v[0] * a[c];
				for (long k = 1; k < m; k++) t += v[k] * a[k * cn + c];
				float r = rintf(t); // nearest, ties to even: cvRound
				d[dx * cn + c] = r <= 0.0f ? 0 : (r >= 255.0f ? 255 : (uint8_t)r);
			}
		}
	}
}

// vireo_area_int shrinks by integer factors kx, ky exactly as OpenCV's
// resizeAreaFast does: the 2x2 case (a+b+c+d+2)>>2, rounding ties up;
// otherwise the integer sum times the float 1/(kx*ky), rounded to nearest.
VIREO_AREA_CLONES
void vireo_area_int(const uint8_t *src, long sstride, long cn, uint8_t *dst, long dw, long dh, long kx, long ky) {
	float scale = 1.0f / (float)(kx * ky);
	for (long dy = 0; dy < dh; dy++) {
		const uint8_t *s = src + dy * ky * sstride;
		uint8_t *d = dst + dy * dw * cn;
		if (kx == 2 && ky == 2) {
			const uint8_t *t = s + sstride;
			for (long dx = 0; dx < dw; dx++)
				for (long c = 0; c < cn; c++) {
					long i = 2 * dx * cn + c;
					d[dx * cn + c] = (uint8_t)((s[i] + s[i + cn] + t[i] + t[i + cn] + 2) >> 2);
				}
			continue;
		}
		for (long dx = 0; dx < dw; dx++)
			for (long c = 0; c < cn; c++) {
				long sum = 0; // OpenCV sums in int; long cannot overflow for any frame size
				for (long y = 0; y < ky; y++) {
					const uint8_t *r = s + y * sstride + dx * kx * cn + c;
					for (long x = 0; x < kx; x++) sum += r[x * cn];
				}
				float v = rintf((float)sum * scale);
				d[dx * cn + c] = v >= 255.0f ? 255 : (uint8_t)v;
			}
	}
}
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// areaTab is one axis of an area resize: output i averages source
// start[i] .. start[i]+count[i]-1 with weights w[off[i]:off[i]+count[i]].
type areaTab struct {
	start, count, off []int32
	w                 []float32
}

// newAreaTab is OpenCV's computeResizeAreaTab for shrinking ssize to dsize
// (dsize <= ssize): output d covers [d*scale, (d+1)*scale) of the source,
// partly covered pixels weighted by their share.
func newAreaTab(ssize, dsize int) areaTab {
	scale := 1 / (float64(dsize) / float64(ssize)) // as cv::resize computes it
	t := areaTab{start: make([]int32, dsize), count: make([]int32, dsize), off: make([]int32, dsize)}
	for d := range dsize {
		fs1 := float64(d) * scale
		fs2 := fs1 + scale
		cell := math.Min(scale, float64(ssize)-fs1)
		s1, s2 := int(math.Ceil(fs1)), int(math.Floor(fs2))
		s2 = min(s2, ssize-1)
		s1 = min(s1, s2)
		t.off[d] = int32(len(t.w))
		first := s1
		if float64(s1)-fs1 > 1e-3 {
			first = s1 - 1
			t.w = append(t.w, float32((float64(s1)-fs1)/cell))
		}
		for range s2 - s1 {
			t.w = append(t.w, float32(1/cell))
		}
		if fs2-float64(s2) > 1e-3 {
			t.w = append(t.w, float32(math.Min(math.Min(fs2-float64(s2), 1), cell)/cell))
		}
		t.start[d] = int32(first)
		t.count[d] = int32(len(t.w)) - t.off[d]
	}
	return t
}

// areaResizer shrinks frames of one size to another; it keeps its tables
// and scratch row between frames.
type areaResizer struct {
	sw, sh, dw, dh int
	x, y           areaTab
	acc            []float32
}

// resize shrinks src (sh rows of sw*cn bytes, stride bytes apart) into dst
// (dh*dw*cn bytes). Sizes must satisfy dw <= sw, dh <= sh.
func (a *areaResizer) resize(src []byte, sw, sh, stride, cn int, dst []byte, dw, dh int) error {
	if dw < 1 || dh < 1 || dw > sw || dh > sh || cn < 1 || stride < sw*cn || len(src) < (sh-1)*stride+sw*cn || len(dst) != dw*dh*cn {
		return fmt.Errorf("%w: area resize %dx%dx%d (stride %d, %d bytes) to %dx%d (%d bytes)", ErrDecode, sw, sh, cn, stride, len(src), dw, dh, len(dst))
	}
	if sw%dw == 0 && sh%dh == 0 {
		C.vireo_area_int((*C.uint8_t)(unsafe.Pointer(&src[0])), C.long(stride), C.long(cn),
			(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.long(dw), C.long(dh), C.long(sw/dw), C.long(sh/dh))
		return nil
	}
	if a.sw != sw || a.sh != sh || a.dw != dw || a.dh != dh {
		*a = areaResizer{sw: sw, sh: sh, dw: dw, dh: dh, x: newAreaTab(sw, dw), y: newAreaTab(sh, dh)}
	}
	if len(a.acc) < sw*cn {
		a.acc = make([]float32, sw*cn)
	}
	C.vireo_area_resize((*C.uint8_t)(unsafe.Pointer(&src[0])), C.long(sw), C.long(stride), C.long(cn),
		(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.long(dw), C.long(dh),
		(*C.int32_t)(unsafe.Pointer(&a.y.start[0])), (*C.int32_t)(unsafe.Pointer(&a.y.count[0])), (*C.int32_t)(unsafe.Pointer(&a.y.off[0])), (*C.float)(unsafe.Pointer(&a.y.w[0])),
		(*C.int32_t)(unsafe.Pointer(&a.x.start[0])), (*C.int32_t)(unsafe.Pointer(&a.x.count[0])), (*C.int32_t)(unsafe.Pointer(&a.x.off[0])), (*C.float)(unsafe.Pointer(&a.x.w[0])),
		(*C.float)(unsafe.Pointer(&a.acc[0])))
	return nil
}
