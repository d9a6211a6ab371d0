package arch

import (
	"slices"
	"testing"

	"vireo/pkg/graph"
)

func TestOutputShapes(t *testing.T) {
	for _, tc := range []struct {
		arch, task string
		cfg        Config
		in         []int
		want       []int
	}{
		{"resnet18", TaskClassify, Config{Classes: 1000}, []int{2, 3, 224, 224}, []int{2, 1000}},
		{"resnet34@0.25", TaskMultiLabel, Config{Classes: 17}, []int{3, 3, 128, 96}, []int{3, 17}},
		{"resnet18@0.125", TaskRegress, Config{Points: 1}, []int{1, 3, 100, 75}, []int{1, 2}},
		{"resnet18@0.125", TaskClassify, Config{Classes: 10, SmallStem: true}, []int{4, 3, 28, 28}, []int{4, 10}},
		{"resnet14s@0.25", TaskClassify, Config{Classes: 10, InChannels: 1}, []int{4, 1, 28, 28}, []int{4, 10}},
		{"resnet14s", TaskRegress, Config{Points: 2}, []int{2, 3, 40, 24}, []int{2, 4}},
		{"resnet8s@0.25", TaskMultiLabel, Config{Classes: 3}, []int{2, 3, 32, 32}, []int{2, 3}},
		{"resnet34-unet", TaskSegment, Config{Classes: 32}, []int{1, 3, 128, 160}, []int{1, 32, 128, 160}},
		{"resnet18-unet@0.25", TaskSegment, Config{Classes: 3}, []int{2, 3, 64, 64}, []int{2, 3, 64, 64}},
		{"resnet18-unet@0.25", TaskSegment, Config{Classes: 3, Upsample: UpsampleConvTranspose}, []int{2, 3, 96, 32}, []int{2, 3, 96, 32}},
		{"resnet18-unet@0.125", TaskSegment, Config{Classes: 2, SmallStem: true}, []int{2, 3, 64, 64}, []int{2, 2, 64, 64}},
		{"resnet34-unet@0.125", TaskSegment, Config{Classes: 2, SmallStem: true, Upsample: UpsampleConvTranspose}, []int{1, 3, 24, 40}, []int{1, 2, 24, 40}},
	} {
		m, err := Build(tc.arch, tc.task, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		shapes, err := graph.InferShapes(m.Graph, map[string][]int{"input": tc.in})
		if err != nil {
			t.Fatalf("%s %v: %v", tc.arch, tc.in, err)
		}
		if got := shapes["output"]; !slices.Equal(got, tc.want) {
			t.Errorf("%s %s %v: output %v (want %v)", tc.arch, tc.task, tc.in, got, tc.want)
		}
	}
}

func TestFLOPs(t *testing.T) {
	// torchvision's resnet18 is 1.814 GMACs at 224x224 (conv and fc),
	// resnet34 3.664: exactly 1,814,073,344 and 3,663,761,408 with the
	// 512x1000 fc. Our head has 1024x512 + 512x1000 instead.
	for _, tc := range []struct {
		arch string
		macs int64
	}{{"resnet18", 1_814_073_344}, {"resnet34", 3_663_761_408}} {
		m, err := Build(tc.arch, TaskClassify, Config{Classes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		f, err := FLOPs(m.Graph, map[string][]int{"input": {1, 3, 224, 224}})
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 * (tc.macs - 512*1000 + 1024*512 + 512*1000); f != want {
			t.Errorf("%s: %d FLOPs at 224x224 (want %d)", tc.arch, f, want)
		}
		f2, err := FLOPs(m.Graph, map[string][]int{"input": {2, 3, 224, 224}})
		if err != nil || f2 != 2*f {
			t.Errorf("%s: batch 2 gives %d FLOPs (want %d), %v", tc.arch, f2, 2*f, err)
		}
	}
}
