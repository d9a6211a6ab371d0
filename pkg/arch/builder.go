package arch

import (
	"math"
	"math/rand/v2"

	"vireo/pkg/graph"
)

const (
	inputName  = "input"
	outputName = "output"
	// opset is the default-domain opset the graphs are written for
	// (Dropout takes its ratio as an input since 12; DepthToSpace has
	// mode CRD since 11; BatchNormalization as in 15).
	opset = 17
	// bnEps and bnMomentum are PyTorch's BatchNorm2d defaults in ONNX
	// terms: running = running*0.9 + batch*0.1.
	bnEps      = 1e-5
	bnMomentum = 0.9
	numGroups  = 3
)

// builder appends nodes and initializers to one graph and records which
// layer group each initializer belongs to.
type builder struct {
	g      *graph.Graph
	cfg    Config
	rng    *rand.Rand
	groups [][]string
	group  int // current layer group
	nconst int
}

func newBuilder(name string, cfg Config) *builder {
	hw := -1
	if cfg.Size > 0 {
		hw = cfg.Size
	}
	g := &graph.Graph{
		Name:         name,
		Initializers: map[string]*graph.Tensor{},
		Opset:        opset,
		Inputs: []graph.ValueInfo{{
			Name:      inputName,
			DType:     graph.Float32,
			Shape:     []int{-1, cfg.InChannels, hw, hw},
			DimParams: []string{"N", "", "H", "W"},
		}},
	}
	if hw > 0 {
		g.Inputs[0].DimParams = []string{"N", "", "", ""}
	}
	return &builder{
		g:      g,
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed0f7e5a)),
		groups: make([][]string, numGroups),
	}
}

func (b *builder) finish(out string, shape []int) {
	// Rename the last node's output to "output" so the graph's output has
	// the fixed name.
	last := b.g.Nodes[len(b.g.Nodes)-1]
	for i, o := range last.Outputs {
		if o == out {
			last.Outputs[i] = outputName
		}
	}
	dp := make([]string, len(shape))
	dp[0] = "N"
	if len(shape) == 4 && shape[2] < 0 {
		dp[2], dp[3] = "H", "W"
	}
	b.g.Outputs = []graph.ValueInfo{{Name: outputName, DType: graph.Float32, Shape: shape, DimParams: dp}}
}

// param adds a float initializer to the current group.
func (b *builder) param(name string, shape []int, values []float32) string {
	b.g.Initializers[name] = &graph.Tensor{Name: name, DType: graph.Float32, Shape: append([]int(nil), shape...), Float: values}
	b.groups[b.group] = append(b.groups[b.group], name)
	return name
}

// node adds a node named name with one output, also called name.
func (b *builder) node(op, name string, inputs []string, attrs map[string]graph.Attr) string {
	b.g.Nodes = append(b.g.Nodes, &graph.Node{Name: name, Op: op, Inputs: inputs, Outputs: []string{name}, Attrs: attrs})
	return name
}

func ints(v ...int) graph.Attr {
	a := graph.Attr{Kind: graph.AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	return a
}

func intAttr(v int) graph.Attr { return graph.Attr{Kind: graph.AttrInt, Int: int64(v)} }

func floatAttr(v float32) graph.Attr { return graph.Attr{Kind: graph.AttrFloat, Float: v} }

// normal returns n values drawn from N(0, std^2).
func (b *builder) normal(n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(b.rng.NormFloat64() * std)
	}
	return v
}

func filled(n int, x float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = x
	}
	return v
}

// conv adds Conv with a weight (cout,cin,k,k) drawn Kaiming-normal with
// std = sqrt(2/fan), fan = cout*k*k (fanOut, torchvision's choice for
// ResNets) or cin*k*k (fastai's conv_layer), and an optional zero bias.
func (b *builder) conv(x, name string, cin, cout, k, stride, pad int, fanOut, bias bool) string {
	fan := cin * k * k
	if fanOut {
		fan = cout * k * k
	}
	w := b.param(name+".weight", []int{cout, cin, k, k}, b.normal(cout*cin*k*k, math.Sqrt(2/float64(fan))))
	in := []string{x, w}
	if bias {
		in = append(in, b.param(name+".bias", []int{cout}, make([]float32, cout)))
	}
	return b.node("Conv", name, in, map[string]graph.Attr{
		"kernel_shape": ints(k, k),
		"strides":      ints(stride, stride),
		"pads":         ints(pad, pad, pad, pad),
		"dilations":    ints(1, 1),
		"group":        intAttr(1),
	})
}

// bn adds BatchNormalization over axis 1 of x (N,C,...) with scale 1 (or 0
// when zero is set), bias 0, running mean 0 and variance 1.
func (b *builder) bn(x, name string, c int, zero bool) string {
	s := float32(1)
	if zero {
		s = 0
	}
	in := []string{
		x,
		b.param(name+".weight", []int{c}, filled(c, s)),
		b.param(name+".bias", []int{c}, make([]float32, c)),
		b.param(name+".running_mean", []int{c}, make([]float32, c)),
		b.param(name+".running_var", []int{c}, filled(c, 1)),
	}
	return b.node("BatchNormalization", name, in, map[string]graph.Attr{
		"epsilon":  floatAttr(bnEps),
		"momentum": floatAttr(bnMomentum),
	})
}

func (b *builder) relu(x, name string) string { return b.node("Relu", name, []string{x}, nil) }

// linear adds Gemm y = x @ W^T + bias with W (out,in) drawn Kaiming-normal
// on fan_in (fastai's head init) and a zero bias, PyTorch's Linear layout.
func (b *builder) linear(x, name string, in, out int) string {
	w := b.param(name+".weight", []int{out, in}, b.normal(out*in, math.Sqrt(2/float64(in))))
	bias := b.param(name+".bias", []int{out}, make([]float32, out))
	return b.node("Gemm", name, []string{x, w, bias}, map[string]graph.Attr{
		"alpha":  floatAttr(1),
		"beta":   floatAttr(1),
		"transB": intAttr(1),
	})
}

// dropout adds Dropout with ratio p, given as a Constant node (not an
// initializer: it is not a parameter). p == 0 adds nothing.
func (b *builder) dropout(x, name string, p float64) string {
	if p == 0 {
		return x
	}
	ratio := b.node("Constant", name+".ratio", nil, map[string]graph.Attr{
		"value": {Kind: graph.AttrTensor, Tensor: &graph.Tensor{Name: name + ".ratio", DType: graph.Float32, Shape: []int{}, Float: []float32{float32(p)}}},
	})
	return b.node("Dropout", name, []string{x, ratio}, nil)
}
