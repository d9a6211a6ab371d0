package onnximport

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/onnx"
)

func node(op string, ins, outs []string, attrs map[string]graph.Attr) *graph.Node {
	return &graph.Node{Name: op + "_" + outs[0], Op: op, Inputs: ins, Outputs: outs, Attrs: attrs}
}

func ints(v ...int64) graph.Attr { return graph.Attr{Kind: graph.AttrInts, Ints: v} }

func encode(t *testing.T, g *graph.Graph) []byte {
	t.Helper()
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newGraph(opset int64) *graph.Graph {
	return &graph.Graph{Name: "t", Opset: opset, Initializers: map[string]*graph.Tensor{}}
}

func TestUnsupportedOpsListedOnce(t *testing.T) {
	g := newGraph(13)
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{1, 4}}}
	g.Nodes = []*graph.Node{
		node("Foo", []string{"x"}, []string{"a"}, nil),
		node("Relu", []string{"a"}, []string{"b"}, nil),
		node("Foo", []string{"b"}, []string{"c"}, nil),
		{Name: "bar", Op: "Bar", Domain: "com.example", Inputs: []string{"c"}, Outputs: []string{"d"}},
		node("NonMaxSuppression", []string{"d"}, []string{"y"}, nil),
	}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: graph.Float32}}
	_, err := Import(encode(t, g), Options{})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v (want ErrUnsupported)", err)
	}
	want := "3 ops (4 nodes) not implemented: Foo x2, NonMaxSuppression x1, com.example.Bar x1"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q\nwant it to contain %q", err, want)
	}
}

func TestOpsetRange(t *testing.T) {
	for _, op := range []int64{8, 18} {
		g := newGraph(op)
		g.Inputs = []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{1, 4}}}
		g.Nodes = []*graph.Node{node("Relu", []string{"x"}, []string{"y"}, nil)}
		g.Outputs = []graph.ValueInfo{{Name: "y", DType: graph.Float32}}
		if _, err := Import(encode(t, g), Options{}); !errors.Is(err, ErrOpset) {
			t.Errorf("opset %d: err = %v (want ErrOpset)", op, err)
		}
	}
}

func TestBadInputNeverPanics(t *testing.T) {
	for _, b := range [][]byte{nil, {0xff}, []byte("not onnx at all"), {0x3a, 0x05, 0x0a}} {
		if _, err := Import(b, Options{}); err == nil {
			t.Errorf("Import(%q) succeeded", b)
		}
	}
	if _, err := Import(nil, Options{InputLayout: "hwcn"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad layout: err = %v (want ErrInvalid)", err)
	}
}

// shapeChainGraph is PyTorch's flatten-by-shape pattern, nodes in reverse
// (unsorted) order, with a Constant node: y = Reshape(x, Concat(Unsqueeze(
// Gather(Shape(x), 0)), [-1])).
func shapeChainGraph(batch int) *graph.Graph {
	g := newGraph(11)
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{batch, 2, 3}}}
	minus1 := &graph.Tensor{DType: graph.Int64, Shape: []int{1}, Int: []int64{-1}}
	zero := &graph.Tensor{DType: graph.Int64, Shape: []int{}, Int: []int64{0}}
	g.Nodes = []*graph.Node{
		node("Relu", []string{"r"}, []string{"y"}, nil),
		node("Reshape", []string{"x", "shape"}, []string{"r"}, nil),
		node("Concat", []string{"n1", "m1"}, []string{"shape"}, map[string]graph.Attr{"axis": {Kind: graph.AttrInt, Int: 0}}),
		node("Constant", nil, []string{"m1"}, map[string]graph.Attr{"value": {Kind: graph.AttrTensor, Tensor: minus1}}),
		node("Unsqueeze", []string{"n"}, []string{"n1"}, map[string]graph.Attr{"axes": ints(0)}),
		node("Gather", []string{"s", "idx"}, []string{"n"}, map[string]graph.Attr{"axis": {Kind: graph.AttrInt, Int: 0}}),
		node("Constant", nil, []string{"idx"}, map[string]graph.Attr{"value": {Kind: graph.AttrTensor, Tensor: zero}}),
		node("Shape", []string{"x"}, []string{"s"}, nil),
	}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: graph.Float32}}
	return g
}

func TestFoldShapeChain(t *testing.T) {
	// Static input: the whole chain folds into one shape initializer.
	r, err := Import(encode(t, shapeChainGraph(2)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Report.Ops; len(got) != 2 || got["Reshape"] != 1 || got["Relu"] != 1 || !r.Report.Static {
		t.Fatalf("static: ops %v static %v (want Reshape and Relu only)", got, r.Report.Static)
	}
	if sh := r.Graph().Initializers["shape"]; sh == nil || len(sh.Int) != 2 || sh.Int[0] != 2 || sh.Int[1] != -1 {
		t.Fatalf("folded shape = %+v (want [2 -1])", sh)
	}
	// Dynamic batch: Constant nodes become initializers, the chain stays
	// (Compile folds it for each batch size), and compiles for two sizes.
	r, err = Import(encode(t, shapeChainGraph(-1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Report.Ops; got["Constant"] != 0 || got["Shape"] != 1 || r.Report.Static {
		t.Fatalf("dynamic: ops %v static %v (want the chain without Constant nodes)", got, r.Report.Static)
	}
	for _, n := range []int{1, 5} {
		s, err := graph.InferShapes(r.Graph(), map[string][]int{"x": {n, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		if got := s["y"]; len(got) != 2 || got[0] != n || got[1] != 6 {
			t.Errorf("batch %d: y shape %v (want [%d 6])", n, got, n)
		}
	}
	// Fixing the dynamic dim at import folds the chain.
	r, err = Import(encode(t, shapeChainGraph(-1)), Options{InputShapes: map[string][]int{"x": {3, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.Ops["Shape"] != 0 || !r.Report.Static {
		t.Fatalf("fixed shape: ops %v (want the chain folded)", r.Report.Ops)
	}
}

func newCPU(t testing.TB) *cpu.CPU {
	t.Helper()
	c, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run compiles g and runs it on one input.
func run(t *testing.T, b kernels.Backend, g *graph.Graph, x []float32, shape []int) []float32 {
	t.Helper()
	p, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{g.Inputs[0].Name: shape}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	outs, err := p.Run(kernels.FromSlice(x, shape...))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, outs[0].Numel())
	if err := b.Download(got, outs[0]); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestNHWCInput(t *testing.T) {
	// A TensorFlow-style export: NHWC input, the exporter's own Transpose
	// to NCHW, a Conv.
	g := newGraph(12)
	g.Inputs = []graph.ValueInfo{{Name: "input:0", DType: graph.Float32, Shape: []int{1, 5, 6, 3}}}
	w := make([]float32, 4*3*3*3)
	for i := range w {
		w[i] = float32(i%7-3) / 5
	}
	g.Initializers["w"] = &graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{4, 3, 3, 3}, Float: w}
	g.Nodes = []*graph.Node{
		node("Transpose", []string{"input:0"}, []string{"nchw"}, map[string]graph.Attr{"perm": ints(0, 3, 1, 2)}),
		node("Conv", []string{"nchw", "w"}, []string{"y"}, map[string]graph.Attr{"pads": ints(1, 1, 1, 1)}),
	}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: graph.Float32}}
	r, err := Import(encode(t, g), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ig := r.Graph()
	if r.Report.Layout != LayoutNHWC || r.Report.TransposesRemoved != 1 || r.Report.Ops["Transpose"] != 0 {
		t.Fatalf("report %+v (want nhwc, one pair removed, no Transpose left)", r.Report)
	}
	if in := ig.Inputs[0]; in.Name != "input:0" || len(in.Shape) != 4 || in.Shape[1] != 3 || in.Shape[2] != 5 || in.Shape[3] != 6 {
		t.Fatalf("imported input %+v (want input:0 (1,3,5,6))", in)
	}
	// The imported model on NCHW data equals the original on NHWC data.
	b := newCPU(t)
	nhwc := make([]float32, 5*6*3)
	nchw := make([]float32, len(nhwc))
	for h := 0; h < 5; h++ {
		for x := 0; x < 6; x++ {
			for c := 0; c < 3; c++ {
				v := float32((h*7+x*3+c)%11) - 5
				nhwc[(h*6+x)*3+c] = v
				nchw[(c*5+h)*6+x] = v
			}
		}
	}
	want := run(t, b, g, nhwc, []int{1, 5, 6, 3})
	got := run(t, b, ig, nchw, []int{1, 3, 5, 6})
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("y[%d] = %g (want %g)", i, got[i], want[i])
		}
	}
	// The original is left alone.
	if g.Nodes[0].Op != "Transpose" || g.Nodes[0].Inputs[0] != "input:0" {
		t.Fatalf("original graph modified: %+v", g.Nodes[0])
	}
	// Forcing nchw keeps the model as it is.
	r, err = Import(encode(t, g), Options{InputLayout: LayoutNCHW})
	if err != nil || r.Report.Ops["Transpose"] != 1 {
		t.Fatalf("nchw forced: err %v ops %v", err, r.Report.Ops)
	}
}

// fp16Model is a ModelProto, written field by field, whose weight is a
// FLOAT16 initializer read through a Cast to FLOAT, the way fp16 exports
// keep their weights: y = x @ Cast(w16).
func fp16Model(w16 []uint16) []byte {
	str := func(b []byte, n protowire.Number, s string) []byte {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
	msg := func(b []byte, n protowire.Number, m []byte) []byte {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendBytes(b, m)
	}
	vint := func(b []byte, n protowire.Number, v uint64) []byte {
		b = protowire.AppendTag(b, n, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	valueInfo := func(name string, dims ...uint64) []byte {
		var shape []byte
		for _, d := range dims {
			shape = msg(shape, 1, vint(nil, 1, d))
		}
		tt := msg(vint(nil, 1, 1), 2, shape)
		return msg(str(nil, 1, name), 2, msg(nil, 1, tt))
	}
	raw := make([]byte, 2*len(w16))
	for i, h := range w16 {
		raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
	}
	var init []byte
	init = vint(init, 1, 2)
	init = vint(init, 1, 2)
	init = vint(init, 2, 10) // FLOAT16
	init = str(init, 8, "w16")
	init = msg(init, 9, raw)
	cast := str(str(str(nil, 1, "w16"), 2, "w"), 4, "Cast")
	cast = msg(cast, 5, vint(vint(str(nil, 1, "to"), 20, 2), 3, 1)) // to = FLOAT (type INT)
	mm := str(str(str(str(nil, 1, "x"), 1, "w"), 2, "y"), 4, "MatMul")
	var gr []byte
	gr = msg(gr, 1, mm) // unsorted: MatMul before the Cast it reads
	gr = msg(gr, 1, cast)
	gr = str(gr, 2, "fp16")
	gr = msg(gr, 5, init)
	gr = msg(gr, 11, valueInfo("x", 1, 2))
	gr = msg(gr, 12, valueInfo("y", 1, 2))
	var m []byte
	m = vint(m, 1, 8)
	m = msg(m, 8, vint(nil, 2, 13))
	m = msg(m, 7, gr)
	return m
}

func TestFP16Weights(t *testing.T) {
	// 1, 0.5, -2 and 2^-14 (the smallest normal FLOAT16).
	w16 := []uint16{0x3C00, 0x3800, 0xC000, 0x0400}
	want := []float32{1, 0.5, -2, float32(math.Ldexp(1, -14))}
	r, err := Import(fp16Model(w16), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.Ops["Cast"] != 0 || r.Report.Ops["MatMul"] != 1 {
		t.Fatalf("ops %v (want the Cast folded)", r.Report.Ops)
	}
	w := r.Graph().Initializers["w"]
	if w == nil || w.DType != graph.Float32 {
		t.Fatalf("w = %+v (want a float32 initializer)", w)
	}
	for i := range want {
		if w.Float[i] != want[i] {
			t.Fatalf("w[%d] = %g (want %g)", i, w.Float[i], want[i])
		}
	}
	got := run(t, newCPU(t), r.Graph(), []float32{3, 4}, []int{1, 2})
	// y = [3 4] @ [[1 0.5] [-2 2^-14]]
	wantY := []float32{3 - 8, 1.5 + 4*want[3]}
	for i := range wantY {
		if got[i] != wantY[i] {
			t.Fatalf("y[%d] = %g (want %g)", i, got[i], wantY[i])
		}
	}
	// The imported model writes back and decodes as float32 weights.
	b, err := onnx.Encode(r.Model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(b, Options{}); err != nil {
		t.Fatalf("re-import: %v", err)
	}
}

func FuzzImport(f *testing.F) {
	f.Add(fp16Model([]uint16{0x3C00, 0x3800, 0xC000, 0x0400}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Import(b, Options{}) // must not panic
	})
}
