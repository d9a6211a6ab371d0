//go:build ort

package arch_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/arch"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/onnx"
	"vireo/pkg/ort"
)

// TestORTParity checks every kind of native network against ONNX Runtime:
// the model our encoder writes, run by ORT, gives our own outputs within
// 1e-4 (absolute or relative) on the same random input.
func TestORTParity(t *testing.T) {
	if err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime: %v", err)
	}
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []struct {
		name, task string
		cfg        arch.Config
		size       int
	}{
		{"resnet18@0.25", arch.TaskClassify, arch.Config{Classes: 10}, 64},
		{"resnet18@0.25", arch.TaskMultiLabel, arch.Config{Classes: 5}, 64},
		{"resnet18@0.25", arch.TaskRegress, arch.Config{Points: 3}, 64},
		{"resnet14s@0.25", arch.TaskClassify, arch.Config{Classes: 10}, 28},
		{"resnet14s@0.25", arch.TaskMultiLabel, arch.Config{Classes: 5}, 32},
		{"resnet8s@0.25", arch.TaskClassify, arch.Config{Classes: 10}, 28},
		{"resnet18@0.25-unet", arch.TaskSegment, arch.Config{Classes: 4, Upsample: arch.UpsamplePixelShuffle}, 64},
		{"resnet18@0.25-unet", arch.TaskSegment, arch.Config{Classes: 4, Upsample: arch.UpsampleConvTranspose}, 64},
		// The full-width layouts the issue names, at a small input.
		{"resnet18", arch.TaskClassify, arch.Config{Classes: 10}, 64},
		{"resnet34", arch.TaskRegress, arch.Config{Points: 1}, 64},
		{"resnet34-unet", arch.TaskSegment, arch.Config{Classes: 3}, 64},
	} {
		name := c.name + "/" + c.task
		if c.cfg.Upsample != "" {
			name += "/" + c.cfg.Upsample
		}
		t.Run(name, func(t *testing.T) {
			m, err := arch.Build(c.name, c.task, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int{2, 3, c.size, c.size}
			x := make([]float32, 2*3*c.size*c.size)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			p, err := graph.Compile(m.Graph, b, graph.Options{InputShapes: map[string][]int{"input": shape}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			outs, err := p.Run(kernels.FromSlice(x, shape...))
			if err != nil {
				t.Fatal(err)
			}
			ours := make([]float32, outs[0].Numel())
			if err := b.Download(ours, outs[0]); err != nil {
				t.Fatal(err)
			}
			enc, err := onnx.Encode(onnx.NewModel(m.Graph))
			if err != nil {
				t.Fatal(err)
			}
			s, err := ort.NewSession(enc, []string{"input"}, []string{"output"}, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err := s.Run([]ort.Input{{Name: "input", Shape: []int64{2, 3, int64(c.size), int64(c.size)}, Data: x}})
			if err != nil {
				t.Fatal(err)
			}
			ref := res[0].Data
			if len(ref) != len(ours) {
				t.Fatalf("ORT output has %d values, ours %d", len(ref), len(ours))
			}
			maxAbs := 0.0
			for i := range ref {
				d := math.Abs(float64(ours[i] - ref[i]))
				rel := d / math.Max(math.Abs(float64(ref[i])), 1e-30)
				maxAbs = math.Max(maxAbs, d)
				if d > 1e-4 && rel > 1e-4 {
					t.Fatalf("output[%d] = %g, ORT %g (|diff| %.3g, rel %.3g; want within 1e-4 abs or rel)", i, ours[i], ref[i], d, rel)
				}
			}
			t.Logf("%d values, max |diff| %.3g", len(ref), maxAbs)
		})
	}
}
