package graph

import (
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
)

// builder assembles small graphs for tests.
type builder struct{ g *Graph }

func newBuilder() *builder {
	return &builder{g: &Graph{Name: "test", Opset: 13, Initializers: map[string]*Tensor{}}}
}

func (b *builder) input(name string, shape ...int) *builder {
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: name, DType: Float32, Shape: shape})
	return b
}

func (b *builder) init(name string, vals []float32, shape ...int) *builder {
	b.g.Initializers[name] = &Tensor{Name: name, DType: Float32, Shape: shape, Float: vals}
	return b
}

func (b *builder) initInt(name string, vals []int64, shape ...int) *builder {
	b.g.Initializers[name] = &Tensor{Name: name, DType: Int64, Shape: shape, Int: vals}
	return b
}

func (b *builder) node(op string, ins, outs []string, attrs map[string]Attr) *builder {
	b.g.Nodes = append(b.g.Nodes, &Node{Name: op + "_" + outs[0], Op: op, Inputs: ins, Outputs: outs, Attrs: attrs})
	return b
}

func (b *builder) output(names ...string) *builder {
	for _, n := range names {
		b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: n, DType: Float32})
	}
	return b
}

func in(names ...string) []string { return names }

func aInt(v int64) Attr         { return Attr{Kind: AttrInt, Int: v} }
func aFloat(v float32) Attr     { return Attr{Kind: AttrFloat, Float: v} }
func aStr(v string) Attr        { return Attr{Kind: AttrString, String: v} }
func aInts(v ...int64) Attr     { return Attr{Kind: AttrInts, Ints: v} }
func aFloats(v ...float32) Attr { return Attr{Kind: AttrFloats, Floats: v} }

// newCPU returns a CPU backend closed at the end of the test.
func newCPU(t testing.TB, threads int) *cpu.CPU {
	t.Helper()
	c, err := cpu.New(cpu.Config{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func randVals(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

func compile(t testing.TB, g *Graph, b kernels.Backend, opt Options) *Program {
	t.Helper()
	p, err := Compile(g, b, opt)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func hostTensor(vals []float32, shape ...int) *kernels.Tensor {
	return kernels.FromSlice(vals, shape...)
}

func download(t testing.TB, b kernels.Backend, x *kernels.Tensor) []float32 {
	t.Helper()
	out := make([]float32, x.Numel())
	if err := b.Download(out, x); err != nil {
		t.Fatal(err)
	}
	return out
}

// must fails t on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
