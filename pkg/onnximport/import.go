package onnximport

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"vireo/pkg/graph"
	"vireo/pkg/onnx"
)

// The default-domain opsets Import accepts.
const (
	MinOpset = 9
	MaxOpset = 17
)

// Errors returned by Import.
var (
	// ErrUnsupported: the model uses ops (or an op domain) the executor
	// does not implement. The message lists each with its node count.
	ErrUnsupported = errors.New("onnximport: unsupported")
	// ErrOpset: the default-domain opset is outside [MinOpset, MaxOpset].
	ErrOpset = errors.New("onnximport: unsupported opset")
	// ErrInvalid: bad options, or a model without inputs or outputs.
	ErrInvalid = errors.New("onnximport: invalid")
)

// Layouts of an image input.
const (
	LayoutAuto = ""
	LayoutNCHW = "nchw"
	LayoutNHWC = "nhwc"
)

// Options configure Import.
type Options struct {
	// InputLayout is the layout of the model's first input: LayoutNCHW,
	// LayoutNHWC, or LayoutAuto (NHWC when the declared shape is
	// (N,H,W,C) with C in 1..4 and H, W larger).
	InputLayout string
	// InputShapes fixes dynamic dims of inputs (in the model's own layout),
	// which lets shape computations fold at import.
	InputShapes map[string][]int
	// NoFuse keeps elementwise chains as the file has them (see
	// fuseElementwise: Conv+Mul/Add folding, hard-swish chains).
	NoFuse bool
	// Decode appends a model-specific decoder to the graph: DecodeNone,
	// or DecodeBlazeFace (anchor decoding and best-score selection, so
	// the outputs are (N,16) points in [-1,1] and (N,1) score).
	Decode string
}

func (o *Options) setDefaults() {
	o.InputLayout = strings.ToLower(o.InputLayout)
	o.Decode = strings.ToLower(o.Decode)
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch o.InputLayout {
	case LayoutAuto, LayoutNCHW, LayoutNHWC:
	default:
		return fmt.Errorf("%w: input layout %q (want nchw or nhwc)", ErrInvalid, o.InputLayout)
	}
	switch o.Decode {
	case DecodeNone, DecodeBlazeFace:
	default:
		return fmt.Errorf("%w: decode %q (want %q or none)", ErrInvalid, o.Decode, DecodeBlazeFace)
	}
	for name, s := range o.InputShapes {
		for _, d := range s {
			if d < 0 {
				return fmt.Errorf("%w: input shape %q %v: dims must be > 0", ErrInvalid, name, s)
			}
			if d == 0 {
				return fmt.Errorf("%w: input shape %q %v: empty tensors", ErrUnsupported, name, s)
			}
		}
	}
	return nil
}

// Report says what Import did.
type Report struct {
	Opset int64
	// Nodes before and after import.
	NodesIn, NodesOut int
	// Folded is the number of nodes replaced by initializers; Static
	// whether shape computations could be folded (static input shapes).
	Folded int
	Static bool
	// Layout is the layout of the original first input ("nchw" or
	// "nhwc"); TransposesRemoved counts Transpose pairs that cancelled.
	Layout            string
	TransposesRemoved int
	// Fused is the number of elementwise nodes fused away.
	Fused int
	// DynamicBatch: the input was declared with batch 1 and the batch
	// baked into constants was rewritten, so any batch runs.
	DynamicBatch bool
	// Decode is the decoder appended (Options.Decode).
	Decode string
	// Ops counts the imported graph's nodes per op.
	Ops map[string]int
}

// Result is an imported model.
type Result struct {
	// Model is the imported model (its Graph the imported graph, its input
	// NCHW), ready for onnx.Encode.
	Model  *onnx.Model
	Report Report
}

// Graph is the imported graph.
func (r *Result) Graph() *graph.Graph { return r.Model.Graph }

// ImportFile reads and imports an ONNX file.
func ImportFile(path string, opt Options) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnximport: %w", err)
	}
	return Import(b, opt)
}

// Import decodes and imports an ONNX model (see the package doc).
func Import(b []byte, opt Options) (*Result, error) {
	opt.setDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	m, err := onnx.Decode(b)
	if err != nil {
		return nil, err
	}
	return ImportModel(m, opt)
}

// ImportModel imports a decoded model. m is not modified.
func ImportModel(m *onnx.Model, opt Options) (*Result, error) {
	opt.setDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	g := m.Graph
	if g == nil {
		return nil, fmt.Errorf("%w: model has no graph", ErrInvalid)
	}
	rep := Report{Opset: g.Opset, NodesIn: len(g.Nodes)}
	if g.Opset < MinOpset || g.Opset > MaxOpset {
		return nil, fmt.Errorf("%w: default-domain opset %d (supported: %d to %d)", ErrOpset, g.Opset, MinOpset, MaxOpset)
	}
	if err := CheckOps(g); err != nil {
		return nil, err
	}
	var runtime []graph.ValueInfo
	for _, in := range g.Inputs {
		if _, ok := g.Initializers[in.Name]; !ok {
			runtime = append(runtime, in)
		}
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: model has no outputs", ErrInvalid)
	}
	for name := range opt.InputShapes {
		found := false
		for _, in := range runtime {
			found = found || in.Name == name
		}
		if !found {
			return nil, fmt.Errorf("%w: input shape given for %q, which is not an input of the model", ErrInvalid, name)
		}
	}
	shapes := map[string][]int{}
	for _, in := range runtime {
		s, ok := opt.InputShapes[in.Name]
		if !ok {
			continue
		}
		if in.Shape != nil && len(s) != len(in.Shape) {
			return nil, fmt.Errorf("%w: input %q: shape %v has rank %d (declared %v)", ErrInvalid, in.Name, s, len(s), in.Shape)
		}
		for i, d := range in.Shape {
			if d > 0 && d != s[i] {
				return nil, fmt.Errorf("%w: input %q: dim %d is %d (declared %v)", ErrInvalid, in.Name, i, s[i], in.Shape)
			}
		}
		shapes[in.Name] = s
	}
	fg, fs, err := graph.FoldConstants(g, shapes)
	if err != nil {
		return nil, err
	}
	rep.Folded, rep.Static = fs.Nodes, fs.Static
	cloneNodes(fg)
	if !opt.NoFuse {
		rep.Fused = fuseElementwise(fg)
	}
	// The first runtime input's layout (a graph without runtime inputs,
	// all folded, has none).
	layout := opt.InputLayout
	if layout == LayoutAuto {
		layout = LayoutNCHW
		if len(fg.Inputs) > 0 && looksNHWC(fg.Inputs[0].Shape) {
			layout = LayoutNHWC
		}
	}
	rep.Layout = layout
	if layout == LayoutNHWC {
		if len(fg.Inputs) == 0 {
			return nil, fmt.Errorf("%w: input layout nhwc for a model without inputs", ErrInvalid)
		}
		first := fg.Inputs[0]
		if len(first.Shape) != 4 {
			return nil, fmt.Errorf("%w: input %q has shape %v: an NHWC input must have rank 4", ErrInvalid, first.Name, first.Shape)
		}
		toNCHW(fg, shapes)
		rep.TransposesRemoved = cancelTransposes(fg)
	}
	rep.DynamicBatch = dynamicBatch(fg, shapes)
	if opt.Decode == DecodeBlazeFace {
		if err := appendBlazeFace(fg, shapes); err != nil {
			return nil, err
		}
		rep.Decode = opt.Decode
	}
	// Check that every node can be planned for the input shapes.
	if _, err := graph.InferShapes(fg, probeShapes(fg, shapes)); err != nil {
		return nil, err
	}
	rep.NodesOut = len(fg.Nodes)
	rep.Ops = map[string]int{}
	for _, n := range fg.Nodes {
		rep.Ops[n.Op]++
	}
	out := *m
	out.Graph = fg
	out.ValueInfo = nil // intermediate values changed; the shapes are inferred anyway
	out.ElemTypes = map[string]onnx.DataType{}
	for k, v := range m.ElemTypes {
		switch v {
		case onnx.Float16, onnx.BFloat16, onnx.Double: // computed as float32
		default:
			out.ElemTypes[k] = v
		}
	}
	return &Result{Model: &out, Report: rep}, nil
}

// CheckOps returns one error listing every op of g the executor does not
// implement, with the number of nodes using it, or nil.
func CheckOps(g *graph.Graph) error {
	bad := map[string]int{}
	for _, n := range g.Nodes {
		if n == nil {
			return fmt.Errorf("%w: nil node", ErrInvalid)
		}
		if !graph.SupportedOp(n.Domain, n.Op) {
			key := n.Op
			if n.Domain != "" && n.Domain != "ai.onnx" {
				key = n.Domain + "." + n.Op
			}
			bad[key]++
		}
	}
	if len(bad) == 0 {
		return nil
	}
	keys := make([]string, 0, len(bad))
	total := 0
	for k, c := range bad {
		keys = append(keys, k)
		total += c
	}
	sort.Slice(keys, func(i, j int) bool {
		if bad[keys[i]] != bad[keys[j]] {
			return bad[keys[i]] > bad[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s x%d", k, bad[k])
	}
	return fmt.Errorf("%w: %d ops (%d nodes) not implemented: %s", ErrUnsupported, len(keys), total, strings.Join(parts, ", "))
}

// looksNHWC says whether a declared rank-4 shape is (N,H,W,C): a small
// static last dim and a dim 1 that is not a channel count.
func looksNHWC(s []int) bool {
	if len(s) != 4 {
		return false
	}
	c := s[3]
	if c < 1 || c > 4 {
		return false
	}
	return s[1] < 0 || s[1] > 4
}

// probeShapes gives every runtime input a concrete shape for checking:
// given shapes, declared static dims, 1 for a dynamic batch dim and 64 for
// other dynamic dims.
func probeShapes(g *graph.Graph, given map[string][]int) map[string][]int {
	out := map[string][]int{}
	for _, in := range g.Inputs {
		if s, ok := given[in.Name]; ok {
			out[in.Name] = s
			continue
		}
		s := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			switch {
			case d > 0:
				s[i] = d
			case i == 0:
				s[i] = 1
			default:
				s[i] = 64
			}
		}
		out[in.Name] = s
	}
	return out
}

// cloneNodes gives g its own copies of its nodes (FoldConstants shares
// them with the decoded model), so rewriting inputs leaves that one alone.
func cloneNodes(g *graph.Graph) {
	for i, n := range g.Nodes {
		c := *n
		c.Inputs = append([]string(nil), n.Inputs...)
		c.Outputs = append([]string(nil), n.Outputs...)
		g.Nodes[i] = &c
	}
	g.Inputs = append([]graph.ValueInfo(nil), g.Inputs...)
	g.Outputs = append([]graph.ValueInfo(nil), g.Outputs...)
	inits := make(map[string]*graph.Tensor, len(g.Initializers))
	for k, v := range g.Initializers {
		inits[k] = v
	}
	g.Initializers = inits
}
