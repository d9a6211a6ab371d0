package onnx_test

import (
	"fmt"
	"log"

	"vireo/pkg/graph"
	"vireo/pkg/onnx"
)

// Build a two-node graph, encode it to ONNX bytes and decode them back.
func Example() {
	g := &graph.Graph{
		Name: "tiny",
		Nodes: []*graph.Node{
			{Name: "fc", Op: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"h"}},
			{Name: "act", Op: "Relu", Inputs: []string{"h"}, Outputs: []string{"y"}},
		},
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{-1, 2}, DimParams: []string{"batch", ""}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: graph.Float32, Shape: []int{-1, 2}, DimParams: []string{"batch", ""}}},
		Initializers: map[string]*graph.Tensor{
			"w": {Name: "w", DType: graph.Float32, Shape: []int{2, 2}, Float: []float32{1, 0, 0, -1}},
		},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		log.Fatal(err)
	}
	m, err := onnx.Decode(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("producer %s, ir %d, opset %d\n", m.ProducerName, m.IRVersion, m.Graph.Opset)
	for _, n := range m.Graph.Nodes {
		fmt.Printf("%s %s %v -> %v\n", n.Name, n.Op, n.Inputs, n.Outputs)
	}
	in := m.Graph.Inputs[0]
	fmt.Println("input", in.Name, in.Shape, in.DimParams[0])
	fmt.Println("w", m.Graph.Initializers["w"].Float)
	// Output:
	// producer vireo, ir 8, opset 17
	// fc MatMul [x w] -> [h]
	// act Relu [h] -> [y]
	// input x [-1 2] batch
	// w [1 0 0 -1]
}
