package video

import (
	"context"
	"errors"
	"image"
	"io"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

func bareVtest(b *testing.B, p string, m, r *gocv.Mat) int {
	vc, err := gocv.VideoCaptureFileWithAPI(p, gocv.VideoCaptureFFmpeg)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	n := 0
	for vc.Read(m) {
		gocv.Resize(*m, r, image.Pt(224, 224), 0, 0, gocv.InterpolationArea)
		n++
	}
	return n
}

func sourceVtest(b *testing.B, p string) int {
	src, err := OpenFile(context.Background(), p, testConfig(224, 224))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		if _, err := src.Next(context.Background()); err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			return n
		}
		n++
	}
}

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
			frames += bareVtest(b, p, &m, &r)
		}
		b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	})
	b.Run("source", func(b *testing.B) {
		frames := 0
		for b.Loop() {
			frames += sourceVtest(b, p)
		}
		b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	})
	// Alternates one bare pass and one source pass per iteration, so load
	// from other processes hits both alike; reports source/bare throughput.
	b.Run("ratio", func(b *testing.B) {
		m, r := gocv.NewMat(), gocv.NewMat()
		defer m.Close()
		defer r.Close()
		var bare, source time.Duration
		var nb, ns int
		for b.Loop() {
			t0 := time.Now()
			nb += bareVtest(b, p, &m, &r)
			t1 := time.Now()
			ns += sourceVtest(b, p)
			bare += t1.Sub(t0)
			source += time.Since(t1)
		}
		fb, fs := float64(nb)/bare.Seconds(), float64(ns)/source.Seconds()
		b.ReportMetric(fb, "bare_frames/s")
		b.ReportMetric(fs, "source_frames/s")
		b.ReportMetric(fs/fb, "ratio")
	})
}
