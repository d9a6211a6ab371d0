package onnximport

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/train"
)

type memDataset []data.Item

func (d memDataset) Len() int                     { return len(d) }
func (d memDataset) Get(i int) (data.Item, error) { return d[i], nil }

// quadrants makes n grey s x s images of 4 classes (class k has a bright
// quadrant k) with masks marking that quadrant 1, the rest 0.
func quadrants(n, s int, seed uint64) memDataset {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make(memDataset, n)
	for i := range out {
		k := i % 4
		px, mask := make([]byte, s*s), make([]byte, s*s)
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				v := 40 + rng.IntN(60)
				if (y >= s/2) == (k >= 2) && (x >= s/2) == (k%2 == 1) {
					v += 120
					mask[y*s+x] = 1
				}
				px[y*s+x] = byte(v)
			}
		}
		out[i] = data.Item{Name: "q", Pixels: px, Width: s, Height: s, Channels: 1, Label: k, Mask: mask}
	}
	return out
}

// TestRoundTripTrainExport: ONNX files written by pkg/train (a classifier
// trained for an epoch, and a U-Net segmenter) import back through
// Import, are stored again (Encode/Decode), and give bit-identical outputs
// to the exported file run directly, on a batch of 8.
func TestRoundTripTrainExport(t *testing.T) {
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		arch, task string
		meta       data.Meta
		epochs     int
	}{
		{"resnet18@0.125", arch.TaskClassify, data.Meta{Task: data.Classify, Classes: []string{"tl", "tr", "bl", "br"}, VoidClass: -1}, 1},
		{"resnet18@0.125-unet", arch.TaskSegment, data.Meta{Task: data.Segment, Classes: []string{"bg", "bright"}, VoidClass: -1}, 0},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			m, err := arch.Build(tc.arch, tc.task, arch.Config{Classes: len(tc.meta.Classes), SmallStem: true, InChannels: 1, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			l, err := train.New(b, m, train.Config{Meta: tc.meta, BatchSize: 16, Size: 16, Channels: 1, Seed: 5,
				Log: zerolog.Nop(), Loader: data.LoaderConfig{Workers: 2}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if tc.epochs > 0 {
				d := train.Data{Train: quadrants(64, 16, 1), Valid: quadrants(32, 16, 2)}
				if err := l.Run(context.Background(), []train.Stage{{Epochs: tc.epochs, LR: train.Const(1e-2)}}, d, train.RunOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(t.TempDir(), "m")
			if _, err := l.Export(dir, train.ExportInfo{Name: "quad"}); err != nil {
				t.Fatal(err)
			}
			man, exported, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Import(exported, Options{})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := onnx.Encode(res.Model)
			if err != nil {
				t.Fatal(err)
			}
			back, err := onnx.Decode(stored)
			if err != nil {
				t.Fatal(err)
			}
			if err := model.CheckGraph(man, back.Graph); err != nil {
				t.Fatalf("re-imported graph against the exported manifest: %v", err)
			}
			orig, err := onnx.Decode(exported)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int{8, 1, 16, 16}
			x := make([]float32, 8*16*16)
			for i, it := range quadrants(8, 16, 3) {
				for j, p := range it.Pixels {
					x[i*256+j] = (float32(p)/255 - 0.5) / 0.25
				}
			}
			want := runOne(t, b, orig.Graph, x, shape)
			got := runOne(t, b, back.Graph, x, shape)
			if !slices.Equal(got, want) {
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("output[%d]: re-imported %g, exported %g", i, got[i], want[i])
					}
				}
			}
			t.Logf("%s: %d outputs identical; import: %d -> %d nodes, %d folded, layout %s, dynamic batch %v",
				tc.arch, len(want), res.Report.NodesIn, res.Report.NodesOut, res.Report.Folded, res.Report.Layout, res.Report.DynamicBatch)
		})
	}
}

func runOne(t *testing.T, b kernels.Backend, g *graph.Graph, x []float32, shape []int) []float32 {
	t.Helper()
	return runGraph(t, b, g, x, shape)[0]
}
