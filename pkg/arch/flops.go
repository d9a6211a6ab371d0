package arch

import (
	"fmt"

	"vireo/pkg/graph"
)

// FLOPs counts the multiply-adds of g's convolutions and matrix products
// (Conv, ConvTranspose, Gemm, MatMul) for the given input shapes, times 2.
// Element-wise ops, pooling and normalisation are not counted (they are a
// few percent of a ResNet's work), as in the usual published GFLOP figures
// doubled (torchvision quotes MACs: resnet34 3.6 G at 224x224).
//
//	Conv           out (N,M,oH,oW), w (M,C/g,kH,kW): N*M*oH*oW * C/g*kH*kW
//	ConvTranspose  x (N,C,H,W), w (C,M/g,kH,kW):     N*C*H*W * M/g*kH*kW
//	Gemm, MatMul   out (..,M,N), inner extent K:     numel(out) * K
func FLOPs(g *graph.Graph, inputs map[string][]int) (int64, error) {
	per, err := NodeFLOPs(g, inputs)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, f := range per {
		sum += f
	}
	return sum, nil
}

// NodeFLOPs is FLOPs per node, keyed by graph.Node.Label (as
// graph.StepTime names nodes); nodes that are not counted are absent.
func NodeFLOPs(g *graph.Graph, inputs map[string][]int) (map[string]int64, error) {
	shapes, err := graph.InferShapes(g, inputs)
	if err != nil {
		return nil, fmt.Errorf("arch: flops: %w", err)
	}
	per := map[string]int64{}
	shape := func(name string) []int {
		if s, ok := shapes[name]; ok {
			return s
		}
		if t, ok := g.Initializers[name]; ok {
			return t.Shape
		}
		return nil
	}
	for _, n := range g.Nodes {
		var macs int64
		var x, w, y []int
		if len(n.Inputs) > 0 {
			x = shape(n.Inputs[0])
		}
		if len(n.Inputs) > 1 {
			w = shape(n.Inputs[1])
		}
		if len(n.Outputs) > 0 {
			y = shape(n.Outputs[0])
		}
		if x == nil || w == nil || y == nil {
			continue
		}
		switch n.Op {
		case "Conv":
			macs += numel(y) * numel(w[1:])
		case "ConvTranspose":
			macs += numel(x) * numel(w[1:])
		case "Gemm":
			k := x[len(x)-1]
			if a, ok := n.Attrs["transA"]; ok && a.Int != 0 {
				k = x[0]
			}
			macs += numel(y) * int64(k)
		case "MatMul":
			macs += numel(y) * int64(x[len(x)-1])
		}
		if macs == 0 {
			continue
		}
		per[n.Label()] += 2 * macs
	}
	return per, nil
}

func numel(s []int) int64 {
	n := int64(1)
	for _, d := range s {
		n *= int64(d)
	}
	return n
}
