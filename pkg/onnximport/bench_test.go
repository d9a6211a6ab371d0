package onnximport

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
)

// BenchmarkRealModels runs the imported third-party models on random
// inputs, one thread (profile with -cpuprofile; compare with ONNX Runtime
// through `vireo bench onnx --vs-ort`).
func BenchmarkRealModels(bm *testing.B) {
	for _, tc := range []struct {
		name, rel string
		shape     []int
	}{
		{"blazeface", blazeFace, []int{1, 3, 128, 128}},
		{"ocr_det_480x640", ocrDet, []int{1, 3, 480, 640}},
	} {
		bm.Run(tc.name, func(bm *testing.B) {
			res, err := ImportFile(thirdParty(bm, tc.rel), Options{})
			if err != nil {
				bm.Fatal(err)
			}
			b, err := cpu.New(cpu.Config{Threads: 1})
			if err != nil {
				bm.Fatal(err)
			}
			defer b.Close()
			g := res.Graph()
			p, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{g.Inputs[0].Name: tc.shape}})
			if err != nil {
				bm.Fatal(err)
			}
			defer p.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			xs := make([]float32, kernels.Shape(tc.shape).Numel())
			for i := range xs {
				xs[i] = rng.Float32()*2 - 1
			}
			x := kernels.FromSlice(xs, tc.shape...)
			for range 2 {
				if _, err := p.Run(x); err != nil {
					bm.Fatal(err)
				}
			}
			bm.ResetTimer()
			for bm.Loop() {
				if _, err := p.Run(x); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFusionAB runs PP-OCR det (480x640, one thread) imported with
// and without the elementwise fusions, alternating runs, and reports the
// median of each (ms) and their ratio: the machine is shared and noisy,
// so only interleaved medians compare.
func BenchmarkFusionAB(bm *testing.B) {
	shape := []int{1, 3, 480, 640}
	var progs [2]*graph.Program
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Close()
	for i, noFuse := range []bool{false, true} {
		res, err := ImportFile(thirdParty(bm, ocrDet), Options{NoFuse: noFuse})
		if err != nil {
			bm.Fatal(err)
		}
		g := res.Graph()
		if progs[i], err = graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{g.Inputs[0].Name: shape}}); err != nil {
			bm.Fatal(err)
		}
		defer progs[i].Close()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float32, kernels.Shape(shape).Numel())
	for i := range xs {
		xs[i] = rng.Float32()*2 - 1
	}
	x := kernels.FromSlice(xs, shape...)
	var ms [2][]float64
	for i := 0; bm.Loop(); i++ {
		for k := range progs {
			p := progs[(i+k)%2]
			t0 := time.Now()
			if _, err := p.Run(x); err != nil {
				bm.Fatal(err)
			}
			if i >= 1 { // warm-up discarded
				ms[(i+k)%2] = append(ms[(i+k)%2], float64(time.Since(t0))/1e6)
			}
		}
	}
	if len(ms[0]) > 0 {
		f, u := median(ms[0]), median(ms[1])
		bm.ReportMetric(f, "fused_ms")
		bm.ReportMetric(u, "unfused_ms")
		bm.ReportMetric(u/f, "speedup")
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
