package video

import (
	"context"
	"errors"
	"image"
	"io"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"vireo/pkg/kernels"
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
	// The frames service's usual case: every 5th frame (159 of 795); the
	// 636 dropped frames are grabbed without BGR conversion.
	b.Run("source_every5", func(b *testing.B) {
		frames := 0
		for b.Loop() {
			cfg := testConfig(224, 224)
			cfg.EveryN = 5
			src, err := OpenFile(context.Background(), p, cfg)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := src.Next(context.Background()); err != nil {
					break
				}
			}
			frames += int(src.Stats().Decoded)
			src.Close()
		}
		b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "decoded_frames/s")
	})
	// Alternates one bare pass and one source pass per iteration, so load
	// from other processes hits both alike; reports source/bare throughput.
	b.Run("ratio", func(b *testing.B) {
		m, r := gocv.NewMat(), gocv.NewMat()
		defer m.Close()
		defer r.Close()
		var bare, source, bareCPU, sourceCPU time.Duration
		var nb, ns int
		for b.Loop() {
			t0, c0 := time.Now(), kernels.ProcessCPUTime()
			nb += bareVtest(b, p, &m, &r)
			t1, c1 := time.Now(), kernels.ProcessCPUTime()
			ns += sourceVtest(b, p)
			bare += t1.Sub(t0)
			source += time.Since(t1)
			bareCPU += c1 - c0
			sourceCPU += kernels.ProcessCPUTime() - c1
		}
		fb, fs := float64(nb)/bare.Seconds(), float64(ns)/source.Seconds()
		b.ReportMetric(fb, "bare_frames/s")
		b.ReportMetric(fs, "source_frames/s")
		b.ReportMetric(fs/fb, "ratio")
		// CPU time (all threads of the process, GC included) per frame: less
		// sensitive than wall time to other load on a shared machine.
		cb := float64(bareCPU.Microseconds()) / float64(nb)
		cs := float64(sourceCPU.Microseconds()) / float64(ns)
		b.ReportMetric(cb, "bare_cpu_us/frame")
		b.ReportMetric(cs, "source_cpu_us/frame")
		b.ReportMetric(cb/cs, "cpu_ratio")
	})
}
