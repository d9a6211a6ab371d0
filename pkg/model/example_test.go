package model_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

func Example() {
	dir, err := os.MkdirTemp("", "vireo-model")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := &graph.Graph{
		Nodes: []*graph.Node{
			{Op: "GlobalAveragePool", Inputs: []string{"x"}, Outputs: []string{"pooled"}},
			{Op: "Flatten", Inputs: []string{"pooled"}, Outputs: []string{"f"}},
			{Op: "Gemm", Inputs: []string{"f", "w"}, Outputs: []string{"logits"}},
		},
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{-1, 3, 224, 224}, DimParams: []string{"N", "", "", ""}}},
		Outputs: []graph.ValueInfo{{Name: "logits", DType: graph.Float32, Shape: []int{-1, 2}, DimParams: []string{"N", ""}}},
		Initializers: map[string]*graph.Tensor{
			"w": {Name: "w", DType: graph.Float32, Shape: []int{3, 2}, Float: []float32{1, 0, 0, 1, 1, 1}},
		},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		log.Fatal(err)
	}
	m := model.Manifest{
		Name: "cats", Version: "v1", Task: model.Classify,
		Labels:        []string{"cat", "dog"},
		Input:         model.Input{Width: 224, Height: 224, Channels: 3},
		Normalization: model.Normalization{Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.25, 0.25, 0.25}},
		VoidClass:     model.NoVoid,
		Metrics:       map[string]float64{"accuracy": 0.97},
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Arch:          "resnet18",
	}
	if err := model.Save(dir, b, m); err != nil {
		log.Fatal(err)
	}
	got, onnxBytes, err := model.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Name, got.Version, got.Task, got.Labels, got.Input.Layout, got.Input.Color)
	fmt.Println(len(onnxBytes) == len(b), got.ModelDigest == model.Digest(b))
	// Output:
	// cats v1 classify [cat dog] nchw rgb
	// true true
}
