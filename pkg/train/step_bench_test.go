package train

import (
	"fmt"
	"testing"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/kernels/cpu"
)

// BenchmarkStep times one training step (forward, loss, backward, AdamW)
// of `vireo bench train`'s default model (resnet18, 64x64, batch 32, 10
// classes), unfrozen and with the body frozen, on 1 and 2 threads; it
// reports images/s. Profile it with -cpuprofile.
func BenchmarkStep(b *testing.B) {
	const size, batch, classes = 64, 32, 10
	for _, threads := range []int{1, 2} {
		for _, frozen := range []bool{false, true} {
			b.Run(fmt.Sprintf("threads=%d/frozen=%v", threads, frozen), func(b *testing.B) {
				be, err := cpu.New(cpu.Config{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				m, err := arch.Build("resnet18", arch.TaskClassify, arch.Config{Classes: classes, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				meta := data.Meta{Task: data.Classify, VoidClass: -1}
				for i := 0; i < classes; i++ {
					meta.Classes = append(meta.Classes, fmt.Sprint(i))
				}
				l, err := New(be, m, Config{Meta: meta, BatchSize: batch, Size: size, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				if frozen {
					l.Freeze()
				}
				bt := syntheticBatch(meta, batch, 3, size, classes, 1, 1)
				lrs := Const(1e-5).For(l.Groups())
				if _, err := l.step(bt, lrs, 0.9); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := l.step(bt, lrs, 0.9); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}
