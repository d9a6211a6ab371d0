package video

import (
	"context"
	"errors"
	"image"
	"io"
	"testing"

	"gocv.io/x/gocv"
)

// BenchmarkVtestDecodeResize224 compares decode + resize to 224x224 of all of
// vtest.avi through a bare gocv loop and through OpenFile (every frame). Both
// report frames/s; the source's overhead is the ring hand-off and the copy
// of the pixels into Go memory.
//
//	go test -run '^$' -bench VtestDecodeResize224 -benchtime 3x ./pkg/video/
func BenchmarkVtestDecodeResize224(b *testing.B) {
	p := dataFile(b, "vtest.avi")
	b.Run("bare", func(b *testing.B) {
		m, r := gocv.NewMat(), gocv.NewMat()
		defer m.Close()
		defer r.Close()
		frames := 0
		for b.Loop() {
			vc, err := gocv.VideoCaptureFileWithAPI(p, gocv.VideoCaptureFFmpeg)
			if err != nil {
				b.Fatal(err)
			}
			for vc.Read(&m) {
				gocv.Resize(m, &r, image.Pt(224, 224), 0, 0, gocv.InterpolationArea)
				frames++
			}
			vc.Close()
		}
		b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	})
	b.Run("source", func(b *testing.B) {
		frames := 0
		for b.Loop() {
			src, err := OpenFile(context.Background(), p, testConfig(224, 224))
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, err := src.Next(context.Background())
				if err != nil {
					if !errors.Is(err, io.EOF) {
						b.Fatal(err)
					}
					break
				}
				frames++
			}
			src.Close()
		}
		b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	})
}
