package arch

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"vireo/pkg/graph"
	"vireo/pkg/kernels/cpu"
)

// TestInferenceAllocs checks the executor's promise: once compiled and
// warmed, an inference Program allocates nothing per Run (plans, shapes,
// scratch and the hand-off to the worker pool are all reused), for every
// native architecture on 1 and 2 threads. AllocsPerRun averages over 50
// runs (rounding down): one allocation in every Run fails the test, while
// the Go runtime's rare own allocations on a blocking wait (a sudog when
// its per-P cache is empty, an M started by sysmon) do not.
func TestInferenceAllocs(t *testing.T) {
	for _, c := range []struct {
		name, arch, task string
		cfg              Config
		in               []int
	}{
		{"classify", "resnet18@0.25", TaskClassify, Config{Classes: 3, Dropout: DefaultDropout}, []int{2, 3, 32, 32}},
		{"multilabel", "resnet18@0.25", TaskMultiLabel, Config{Classes: 4}, []int{1, 3, 32, 64}},
		{"regress", "resnet18@0.25", TaskRegress, Config{Points: 2, SmallStem: true}, []int{2, 3, 32, 32}},
		{"unet-pixelshuffle", "resnet18-unet@0.25", TaskSegment, Config{Classes: 3}, []int{2, 3, 32, 32}},
		{"unet-convtranspose", "resnet18-unet@0.25", TaskSegment, Config{Classes: 3, Upsample: UpsampleConvTranspose}, []int{1, 3, 64, 32}},
		{"unet-smallstem", "resnet18-unet@0.125", TaskSegment, Config{Classes: 2, SmallStem: true}, []int{1, 3, 40, 24}},
		{"resnet14s", "resnet14s@0.25", TaskClassify, Config{Classes: 10, InChannels: 1, Dropout: DefaultDropout}, []int{2, 1, 28, 28}},
		{"resnet8s", "resnet8s@0.25", TaskRegress, Config{Points: 1, InChannels: 1}, []int{1, 1, 28, 28}},
	} {
		m, err := Build(c.arch, c.task, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", c.name, threads), func(t *testing.T) {
				b, err := cpu.New(cpu.Config{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				p, err := graph.Compile(m.Graph, b, graph.Options{InputShapes: map[string][]int{inputName: c.in}})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				r := rand.New(rand.NewPCG(1, uint64(threads)))
				n := 1
				for _, d := range c.in {
					n *= d
				}
				v := make([]float32, n)
				for i := range v {
					v[i] = r.Float32()*2 - 1
				}
				x := upload(t, b, v, c.in...)
				for range 3 { // warm: plans, jobs and scratch reach their steady state
					if _, err := p.Run(x); err != nil {
						t.Fatal(err)
					}
				}
				runtime.GC() // start from a settled heap: no GC cycle left running from Compile
				allocs := testing.AllocsPerRun(50, func() {
					if _, err := p.Run(x); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("%s %v threads=%d: %v allocations per Run (want 0)", c.arch, c.in, threads, allocs)
				}
			})
		}
	}
}
