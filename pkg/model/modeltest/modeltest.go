// Package modeltest builds tiny model versions for the tests of the code
// that stores and serves models (frames, ingest, infer): small enough to
// run in microseconds, with outputs a test can predict by hand.
package modeltest

import (
	"path/filepath"
	"testing"
	"time"

	"vireo/pkg/arch"
	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// TinyClassifier is a 3-class classifier on (N,3,h,w) input: a 1x1
// convolution with weights scale*I, global average pooling and Flatten, so
// class c's logit is scale times the mean of input channel c. labels names
// the classes (three of them); normalisation is the identity (x = p/255).
// The manifest has no name or version: the model store sets them on push.
func TinyClassifier(t testing.TB, w, h int, scale float32, labels [3]string) ([]byte, model.Manifest) {
	t.Helper()
	g := &graph.Graph{
		Nodes: []*graph.Node{
			{Op: "Conv", Inputs: []string{"input", "w"}, Outputs: []string{"c"}},
			{Op: "GlobalAveragePool", Inputs: []string{"c"}, Outputs: []string{"p"}},
			{Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"output"}},
		},
		Inputs:  []graph.ValueInfo{{Name: "input", DType: graph.Float32, Shape: []int{-1, 3, h, w}, DimParams: []string{"N", "", "", ""}}},
		Outputs: []graph.ValueInfo{{Name: "output", DType: graph.Float32, Shape: []int{-1, 3}, DimParams: []string{"N", ""}}},
		Initializers: map[string]*graph.Tensor{"w": {Name: "w", DType: graph.Float32, Shape: []int{3, 3, 1, 1},
			Float: []float32{scale, 0, 0, 0, scale, 0, 0, 0, scale}}},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	return b, model.Manifest{
		Task: model.Classify, Labels: labels[:],
		Input:         model.Input{Width: w, Height: h, Channels: 3},
		Normalization: model.Normalization{Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}},
		VoidClass:     model.NoVoid, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Arch: "tiny",
	}
}

// TinyGreyClassifier is a 3-class classifier on one grey channel, (N,1,h,w)
// input: a 1x1 convolution with weights 1, 2, 3, global average pooling and
// Flatten, so class c's logit is (c+1) times the mean grey level (x = p/255).
func TinyGreyClassifier(t testing.TB, w, h int, labels [3]string) ([]byte, model.Manifest) {
	t.Helper()
	g := &graph.Graph{
		Nodes: []*graph.Node{
			{Op: "Conv", Inputs: []string{"input", "w"}, Outputs: []string{"c"}},
			{Op: "GlobalAveragePool", Inputs: []string{"c"}, Outputs: []string{"p"}},
			{Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"output"}},
		},
		Inputs:  []graph.ValueInfo{{Name: "input", DType: graph.Float32, Shape: []int{-1, 1, h, w}, DimParams: []string{"N", "", "", ""}}},
		Outputs: []graph.ValueInfo{{Name: "output", DType: graph.Float32, Shape: []int{-1, 3}, DimParams: []string{"N", ""}}},
		Initializers: map[string]*graph.Tensor{"w": {Name: "w", DType: graph.Float32, Shape: []int{3, 1, 1, 1},
			Float: []float32{1, 2, 3}}},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	return b, model.Manifest{
		Task: model.Classify, Labels: labels[:],
		Input:         model.Input{Width: w, Height: h, Channels: 1},
		Normalization: model.Normalization{Mean: []float64{0}, Std: []float64{1}},
		VoidClass:     model.NoVoid, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Arch: "tiny",
	}
}

// WriteArch saves an untrained native architecture (pkg/arch) as a model
// folder dir/name (model.onnx + manifest.json, version v0001, ImageNet
// normalisation; for segmentation the last label is the Void class):
// enough to check the plumbing end to end, as a bundled model would be.
func WriteArch(t testing.TB, dir, name, archName, task string, cfg arch.Config, labels []string) {
	t.Helper()
	am, err := arch.Build(archName, task, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := onnx.Encode(onnx.NewModel(am.Graph))
	if err != nil {
		t.Fatal(err)
	}
	m := model.Manifest{
		Name: name, Version: "v0001", Task: model.Task(task), Labels: labels, Arch: am.Arch,
		Input:         model.Input{Width: cfg.Size, Height: cfg.Size, Channels: 3},
		Normalization: model.Normalization{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}},
		VoidClass:     model.NoVoid,
		Points:        cfg.Points,
		CreatedAt:     time.Now().UTC(),
	}
	if task == arch.TaskSegment {
		m.VoidClass = len(labels) - 1
	}
	m.SetDefaults()
	m.ModelDigest = model.Digest(ob)
	if err := model.Save(filepath.Join(dir, name), ob, m); err != nil {
		t.Fatal(err)
	}
}
