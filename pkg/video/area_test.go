package video

import (
	"fmt"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// matchesArea fails unless got differs from want, OpenCV's INTER_AREA
// output, by at most 1 in at most a fraction frac of the bytes. Ours sums
// in another order, so a value within float rounding of a .5 tie may round
// the other way (and OpenCV's 2x path rounds ties up, ours to even).
func matchesArea(t *testing.T, what string, got, want []byte, frac float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	worst, n := 0, 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		if d < 0 {
			d = -d
		}
		if d > 0 {
			n++
			worst = max(worst, d)
		}
	}
	if worst > 1 || float64(n) > frac*float64(len(got)) {
		t.Fatalf("%s: %d of %d bytes differ from cv::resize(INTER_AREA), by up to %d (want at most 1, in at most %.2g%%)", what, n, len(got), worst, 100*frac)
	}
}

// areaExact is output byte i of a's resize of src in float64.
func areaExact(a *areaResizer, src []byte, stride, cn, i int) float64 {
	dw := len(a.x.start)
	dy, dx, c := i/(dw*cn), (i/cn)%dw, i%cn
	v := 0.0
	for ky := range int(a.y.count[dy]) {
		for kx := range int(a.x.count[dx]) {
			sy, sx := int(a.y.start[dy])+ky, int(a.x.start[dx])+kx
			v += float64(a.y.w[int(a.y.off[dy])+ky]) * float64(a.x.w[int(a.x.off[dx])+kx]) * float64(src[sy*stride+sx*cn+c])
		}
	}
	return v
}

// TestAreaMatchesOpenCV: the area resize equals cv::resize(INTER_AREA) on
// real frames of both demo videos, for integer and fractional scales, 3 and
// 1 channels, except where the exact value is a tie (x.5), which the two
// round apart depending on float error; integer scales match exactly.
func TestAreaMatchesOpenCV(t *testing.T) {
	for _, name := range []string{"vtest.avi", "Megamind.avi"} {
		vc, err := gocv.VideoCaptureFile(dataFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		m, grey, want := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
		var a areaResizer
		for fi := range 30 {
			if !vc.Read(&m) || m.Empty() {
				t.Fatalf("%s: frame %d: read failed", name, fi)
			}
			if fi%10 != 0 {
				continue
			}
			gocv.CvtColor(m, &grey, gocv.ColorBGRToGray)
			for _, src := range []*gocv.Mat{&m, &grey} {
				sw, sh, cn := src.Cols(), src.Rows(), src.Channels()
				b, err := src.DataPtrUint8()
				if err != nil {
					t.Fatal(err)
				}
				for _, sz := range [][2]int{{160, 160}, {224, 224}, {128, 128}, {64, 64}, {28, 28}, {sw / 2, sh / 2}, {sw / 4, sh / 4}, {sw / 3, sh / 3}, {sw / 12, sh / 9}, {sw - 1, sh - 3}, {sw, sh / 2}, {sw / 2, sh}, {1, 1}} {
					dw, dh := sz[0], sz[1]
					gocv.Resize(*src, &want, image.Pt(dw, dh), 0, 0, gocv.InterpolationArea)
					got := make([]byte, dw*dh*cn)
					if err := a.resize(b, sw, sh, sw*cn, cn, got, dw, dh); err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%s frame %d, %dx%dx%d -> %dx%d", name, fi, sw, sh, cn, dw, dh)
					wb := want.ToBytes()
					matchesArea(t, what, got, wb, 1) // every difference a tie, below
					for i := range got {
						if got[i] == wb[i] {
							continue
						}
						if sw%dw == 0 && sh%dh == 0 {
							t.Fatalf("%s: byte %d is %d, cv::resize(INTER_AREA) %d: an integer scale must match exactly", what, i, got[i], wb[i])
						}
						// Both round a tie (x.5 but for float error), each its way.
						if v := areaExact(&a, b, sw*cn, cn, i); math.Abs(v-math.Floor(v)-0.5) > 1e-3 {
							t.Fatalf("%s: byte %d is %d, cv::resize(INTER_AREA) %d, exact %.6f: not a tie", what, i, got[i], wb[i], v)
						}
					}
				}
			}
		}
		m.Close()
		grey.Close()
		want.Close()
		vc.Close()
	}
}

// TestAreaRejectsBadSizes: enlarging or inconsistent buffers are errors,
// never a read or write out of bounds.
func TestAreaRejectsBadSizes(t *testing.T) {
	var a areaResizer
	src := make([]byte, 8*6*3)
	for _, c := range []struct{ sw, sh, stride, cn, dw, dh, dst int }{
		{8, 6, 24, 3, 9, 6, 9 * 6 * 3}, // wider
		{8, 6, 24, 3, 4, 7, 4 * 7 * 3}, // taller
		{8, 6, 24, 3, 4, 3, 4*3*3 - 1}, // dst short
		{8, 6, 23, 3, 4, 3, 4 * 3 * 3}, // stride short
		{8, 7, 24, 3, 4, 3, 4 * 3 * 3}, // src short
		{8, 6, 24, 3, 0, 3, 0},         // empty
	} {
		if err := a.resize(src, c.sw, c.sh, c.stride, c.cn, make([]byte, c.dst), c.dw, c.dh); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// BenchmarkArea compares ours with cv::resize(INTER_AREA) on a vtest.avi
// frame (768x576) to the demo model's 160x160:
//
//	go test -run '^$' -bench Area ./pkg/video/
func BenchmarkArea(b *testing.B) {
	vc, err := gocv.VideoCaptureFile(dataFile(b, "vtest.avi"))
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	m, r := gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer r.Close()
	vc.Read(&m)
	src, _ := m.DataPtrUint8()
	dst := make([]byte, 160*160*3)
	b.Run("vireo", func(b *testing.B) {
		var a areaResizer
		for b.Loop() {
			a.resize(src, 768, 576, 768*3, 3, dst, 160, 160)
		}
	})
	b.Run("opencv", func(b *testing.B) {
		for b.Loop() {
			gocv.Resize(m, &r, image.Pt(160, 160), 0, 0, gocv.InterpolationArea)
		}
	})
}
