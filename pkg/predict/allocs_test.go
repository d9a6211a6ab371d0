package predict

import (
	"fmt"
	"runtime"
	"testing"

	"vireo/pkg/arch"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// TestForwardAllocs checks the part of Run that is the engine's: the
// normalisation of a bucket's frames, the program and the download of its
// output allocate nothing once warmed, at 1 and 2 threads (the results,
// their JSON and mask PNGs are built per frame and do allocate).
func TestForwardAllocs(t *testing.T) {
	const s = 32
	for _, c := range []struct {
		arch, task string
		cfg        arch.Config
		labels     []string
	}{
		{"resnet18@0.25", arch.TaskMultiLabel, arch.Config{Classes: 2, SmallStem: true, Size: s, Seed: 1}, []string{"a", "b"}},
		{"resnet18-unet@0.25", arch.TaskSegment, arch.Config{Classes: 2, SmallStem: true, Size: s, Seed: 2}, []string{"bg", "fg"}},
	} {
		am, err := arch.Build(c.arch, c.task, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ob, err := onnx.Encode(onnx.NewModel(am.Graph))
		if err != nil {
			t.Fatal(err)
		}
		m := manifest(model.Task(c.task), c.labels, s)
		m.Normalization = model.Normalization{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", c.task, threads), func(t *testing.T) {
				b, err := cpu.New(cpu.Config{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				p, err := Load(b, ob, m, Options{MaxBatch: 4, NoWarm: true})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				const n = 4
				bk, err := p.bucket(n)
				if err != nil {
					t.Fatal(err)
				}
				pix := make([]byte, n*p.frameBytes())
				for i := range pix {
					pix[i] = byte(i * 7)
				}
				for range 3 {
					if _, err := p.forward(bk, n, pix); err != nil {
						t.Fatal(err)
					}
				}
				runtime.GC()
				allocs := testing.AllocsPerRun(50, func() {
					if _, err := p.forward(bk, n, pix); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("%s threads=%d: %v allocations per forward (want 0)", c.arch, threads, allocs)
				}
			})
		}
	}
}
