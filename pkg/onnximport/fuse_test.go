package onnximport

import (
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/graph"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/onnx"
)

// TestFuseElementwise: Conv -> Mul -> Add (per-channel and scalar
// constants) folds into the Conv, x*Clip(x+3,0,6)/6 becomes HardSwish, a
// Conv whose output has a second reader is left alone, and the fused
// graph computes what the unfused one does.
func TestFuseElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	randT := func(name string, shape ...int) *graph.Tensor {
		tt := &graph.Tensor{Name: name, DType: graph.Float32, Shape: shape}
		tt.Float = make([]float32, tt.Numel())
		for i := range tt.Float {
			tt.Float[i] = rng.Float32()*2 - 1
		}
		return tt
	}
	scalar := func(name string, v float32) *graph.Tensor {
		return &graph.Tensor{Name: name, DType: graph.Float32, Shape: []int{1}, Float: []float32{v}}
	}
	inits := map[string]*graph.Tensor{}
	for _, tt := range []*graph.Tensor{
		randT("w1", 4, 3, 3, 3), randT("b1", 4), randT("k1", 1, 4, 1, 1), randT("c1k", 4, 1, 1),
		randT("w2", 4, 4, 1, 1), scalar("k2", 0.7), scalar("c2k", -0.2),
		randT("w3", 4, 4, 1, 1), scalar("k3", 2),
		scalar("three", 3), scalar("zero", 0), scalar("six", 6), scalar("six2", 6),
	} {
		inits[tt.Name] = tt
	}
	node := func(op string, out string, in ...string) *graph.Node {
		return &graph.Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}}
	}
	conv := func(out string, in ...string) *graph.Node {
		n := node("Conv", out, in...)
		n.Attrs = map[string]graph.Attr{"pads": {Kind: graph.AttrInts, Ints: []int64{1, 1, 1, 1}}}
		if len(in) == 2 {
			n.Attrs = nil
		}
		return n
	}
	g := &graph.Graph{Name: "fuse", Opset: 13, Initializers: inits,
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{2, 3, 6, 6}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: graph.Float32}, {Name: "side", DType: graph.Float32}},
		Nodes: []*graph.Node{
			conv("c1", "x", "w1", "b1"), node("Mul", "m1", "k1", "c1"), node("Add", "a1", "m1", "c1k"),
			node("Add", "p3", "a1", "three"), node("Clip", "cl", "p3", "zero", "six"), node("Mul", "hm", "cl", "a1"), node("Div", "hs", "hm", "six2"),
			conv("c2", "hs", "w2"), node("Mul", "m2", "c2", "k2"), node("Add", "a2", "m2", "c2k"),
			conv("c3", "a2", "w3"), node("Mul", "y", "c3", "k3"), node("Relu", "side", "c3"),
		}}
	m := onnx.NewModel(g)
	raw, err := onnx.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	fused, err := Import(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Import(raw, Options{NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	ops := fused.Report.Ops
	if fused.Report.Fused != 7 || ops["Conv"] != 3 || ops["HardSwish"] != 1 || ops["Mul"] != 1 || ops["Add"] != 0 || ops["Clip"] != 0 || ops["Div"] != 0 {
		t.Fatalf("fused %d, ops %v: want 4 affine steps and one hard swish (3 nodes) fused, c3's Mul kept (c3 has two readers)", fused.Report.Fused, ops)
	}
	if plain.Report.Fused != 0 || plain.Report.Ops["Clip"] != 1 {
		t.Fatalf("NoFuse: %+v", plain.Report)
	}
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x := randT("x", 2, 3, 6, 6).Float
	want := runGraph(t, b, plain.Graph(), x, []int{2, 3, 6, 6})
	got := runGraph(t, b, fused.Graph(), x, []int{2, 3, 6, 6})
	for k := range want {
		for i := range want[k] {
			if d := math.Abs(float64(got[k][i] - want[k][i])); d > 1e-5+1e-5*math.Abs(float64(want[k][i])) {
				t.Fatalf("output %d[%d]: fused %g, unfused %g", k, i, got[k][i], want[k][i])
			}
		}
	}
}

// TestFuseConvTransposeAffine: Add and Mul constants per output channel
// after a one-group ConvTranspose (weights (C,M,kH,kW)) fold into it, a
// two-group one keeps them, and both graphs compute the same.
func TestFuseConvTransposeAffine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	randT := func(name string, shape ...int) *graph.Tensor {
		tt := &graph.Tensor{Name: name, DType: graph.Float32, Shape: shape}
		tt.Float = make([]float32, tt.Numel())
		for i := range tt.Float {
			tt.Float[i] = rng.Float32()*2 - 1
		}
		return tt
	}
	inits := map[string]*graph.Tensor{}
	for _, tt := range []*graph.Tensor{
		randT("w1", 4, 3, 2, 2), randT("b1", 3), randT("k1", 1, 3, 1, 1), randT("c1", 3, 1, 1),
		randT("w2", 4, 2, 2, 2), randT("c2", 1, 4, 1, 1),
	} {
		inits[tt.Name] = tt
	}
	node := func(op string, out string, in ...string) *graph.Node {
		return &graph.Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}}
	}
	ct := func(out string, group int64, in ...string) *graph.Node {
		n := node("ConvTranspose", out, in...)
		n.Attrs = map[string]graph.Attr{"strides": {Kind: graph.AttrInts, Ints: []int64{2, 2}}, "group": {Kind: graph.AttrInt, Int: group}}
		return n
	}
	g := &graph.Graph{Name: "fuse_ct", Opset: 13, Initializers: inits,
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{2, 4, 5, 6}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: graph.Float32}, {Name: "z", DType: graph.Float32}},
		Nodes: []*graph.Node{
			ct("t1", 1, "x", "w1", "b1"), node("Add", "a1", "t1", "c1"), node("Mul", "y", "k1", "a1"),
			ct("t2", 2, "x", "w2"), node("Add", "z", "t2", "c2"),
		}}
	raw, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	fused, err := Import(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Import(raw, Options{NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	if ops := fused.Report.Ops; fused.Report.Fused != 2 || ops["ConvTranspose"] != 2 || ops["Add"] != 1 || ops["Mul"] != 0 {
		t.Fatalf("fused %d, ops %v: want the one-group ConvTranspose's Add and Mul fused, the two-group one's Add kept", fused.Report.Fused, ops)
	}
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x := randT("x", 2, 4, 5, 6).Float
	want := runGraph(t, b, plain.Graph(), x, []int{2, 4, 5, 6})
	got := runGraph(t, b, fused.Graph(), x, []int{2, 4, 5, 6})
	for k := range want {
		for i := range want[k] {
			if d := math.Abs(float64(got[k][i] - want[k][i])); d > 1e-5+1e-5*math.Abs(float64(want[k][i])) {
				t.Fatalf("output %d[%d]: fused %g, unfused %g", k, i, got[k][i], want[k][i])
			}
		}
	}
}

// TestFuseGateResidual: x + x*HardSigmoid(...) becomes x * (s+1) (either
// operand order), a Mul with a second reader is left alone, and both
// graphs compute the same.
func TestFuseGateResidual(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	node := func(op string, out string, in ...string) *graph.Node {
		return &graph.Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}}
	}
	g := &graph.Graph{Name: "gate", Opset: 13, Initializers: map[string]*graph.Tensor{},
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{2, 4, 5, 6}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: graph.Float32}, {Name: "z", DType: graph.Float32}, {Name: "w", DType: graph.Float32}},
		Nodes: []*graph.Node{
			node("GlobalAveragePool", "p", "x"), node("HardSigmoid", "s", "p"), node("Mul", "m", "s", "x"), node("Add", "y", "x", "m"),
			node("Sigmoid", "s2", "x"), node("Mul", "m2", "x", "s2"), node("Add", "z", "m2", "x"), node("Relu", "w", "m2"),
		}}
	raw, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	fused, err := Import(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Import(raw, Options{NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	producers := map[string]string{}
	for _, n := range fused.Graph().Nodes {
		producers[n.Outputs[0]] = n.Op
	}
	if producers["y"] != "Mul" || producers["z"] != "Add" {
		t.Fatalf("y made by %q (want Mul: rewritten), z by %q (want Add: its Mul has two readers)", producers["y"], producers["z"])
	}
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x := make([]float32, 2*4*5*6)
	for i := range x {
		x[i] = rng.Float32()*8 - 4
	}
	want := runGraph(t, b, plain.Graph(), x, []int{2, 4, 5, 6})
	got := runGraph(t, b, fused.Graph(), x, []int{2, 4, 5, 6})
	for k := range want {
		for i := range want[k] {
			if d := math.Abs(float64(got[k][i] - want[k][i])); d > 1e-5+1e-5*math.Abs(float64(want[k][i])) {
				t.Fatalf("output %d[%d]: fused %g, unfused %g", k, i, got[k][i], want[k][i])
			}
		}
	}
}
