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
	return tinyConv(t, w, h, 3, []float32{scale, 0, 0, 0, scale, 0, 0, 0, scale}, labels)
}

// TinyGreyClassifier is TinyClassifier on one grey channel, (N,1,h,w)
// input, with weights 1, 2, 3: class c's logit is (c+1) times the mean
// grey level (x = p/255).
func TinyGreyClassifier(t testing.TB, w, h int, labels [3]string) ([]byte, model.Manifest) {
	t.Helper()
	return tinyConv(t, w, h, 1, []float32{1, 2, 3}, labels)
}

// tinyConv is Conv 1x1 (3 x ch weights wt) -> GlobalAveragePool ->
// Flatten on (N,ch,h,w) input, with an identity normalisation.
func tinyConv(t testing.TB, w, h, ch int, wt []float32, labels [3]string) ([]byte, model.Manifest) {
	g := &graph.Graph{
		Nodes: []*graph.Node{
			{Op: "Conv", Inputs: []string{"input", "w"}, Outputs: []string{"c"}},
			{Op: "GlobalAveragePool", Inputs: []string{"c"}, Outputs: []string{"p"}},
			{Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"output"}},
		},
		Inputs:       []graph.ValueInfo{{Name: "input", DType: graph.Float32, Shape: []int{-1, ch, h, w}, DimParams: []string{"N", "", "", ""}}},
		Outputs:      []graph.ValueInfo{{Name: "output", DType: graph.Float32, Shape: []int{-1, 3}, DimParams: []string{"N", ""}}},
		Initializers: map[string]*graph.Tensor{"w": {Name: "w", DType: graph.Float32, Shape: []int{3, ch, 1, 1}, Float: wt}},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	mean, std := make([]float64, ch), make([]float64, ch)
	for i := range std {
		std[i] = 1
	}
	return b, model.Manifest{
		Task: model.Classify, Labels: labels[:],
		Input:         model.Input{Width: w, Height: h, Channels: ch},
		Normalization: model.Normalization{Mean: mean, Std: std},
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
