package onnx

import (
	"testing"

	"vireo/pkg/graph"
)

// resnetSized is a model with ResNet-18's parameter count (~11.7M float32
// in 62 tensors) and one node per tensor.
func resnetSized() *Model {
	g := &graph.Graph{Initializers: map[string]*graph.Tensor{}}
	sizes := []int{64 * 3 * 7 * 7}
	for _, c := range []int{64, 128, 256, 512} {
		for range 4 {
			sizes = append(sizes, c*c*9, c, c, c, c)
		}
		sizes = append(sizes, c*c*9)
	}
	sizes = append(sizes, 512*1000, 1000)
	for i, n := range sizes {
		name := "w" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		data := make([]float32, n)
		for j := range data {
			data[j] = float32(j%97) * 0.01
		}
		g.Initializers[name] = &graph.Tensor{Name: name, DType: graph.Float32, Shape: []int{n}, Float: data}
		g.Nodes = append(g.Nodes, &graph.Node{Op: "Identity", Inputs: []string{name}, Outputs: []string{name + "_out"}})
	}
	return NewModel(g)
}

func BenchmarkDecode(b *testing.B) {
	enc, err := Encode(resnetSized())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m := resnetSized()
	enc, _ := Encode(m)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}
