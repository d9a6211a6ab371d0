package graph

import (
	"fmt"

	"vireo/pkg/kernels"
)

// value is one named value of a graph during compilation: its static shape,
// its host value when known at compile time, and (in a Program) its backend
// tensor and gradient.
type value struct {
	name  string
	dtype DType
	shape []int
	// konst is the value when known at compile time: an initializer, a
	// Constant or a folded expression.
	konst *Tensor
	// param marks a trainable initializer (training programs only).
	param   bool
	isInput bool
	isInit  bool
	// prod is the runtime step producing this value (nil for inputs,
	// initializers and folded values).
	prod *step
	// alias is the value whose storage this one views (Reshape-like ops
	// and in-place activations); nil for values with their own storage.
	alias *value

	// Program state.
	t        *kernels.Tensor
	needGrad bool
	grad     *kernels.Tensor
	lastUse  int
}

// root is the value that owns v's storage.
func (v *value) root() *value {
	for v.alias != nil {
		v = v.alias
	}
	return v
}

// step is one runtime node.
type step struct {
	idx   int
	node  *Node
	ins   []*value // nil where an optional input is omitted
	outs  []*value // nil where an output is not requested
	plan  *opPlan
	extra []*kernels.Tensor
	fwd   func() error
}

// opPlan is what an op's analysis yields: output shapes and types, folded
// constants, and builders for the forward and backward kernels.
type opPlan struct {
	outShapes [][]int
	outDTypes []DType
	// consts, when set, are the folded outputs: the node does not run.
	consts []*Tensor
	// view: output 0 is a view of input 0 (no kernel, no copy).
	view bool
	// inplace: output 0 may share input 0's storage when input 0 dies at
	// this node (inference only).
	inplace bool
	// diff lists the input slots that take a gradient.
	diff []int
	// extras are buffers the kernels need besides the outputs (batch
	// statistics, dropout masks).
	extras []kernels.Shape
	fwd    func(c *buildCtx, s *step) (func() error, error)
	// bwd writes the gradients gin (one per input, nil where not needed)
	// from gout (one per output).
	bwd func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error)
}

// analysis is a graph with every value's shape and every foldable
// expression folded, for concrete input shapes.
type analysis struct {
	g      *Graph
	opt    Options
	opset  int64
	vals   map[string]*value
	steps  []*step
	inputs []*value // runtime inputs in g.Inputs order
	// folded counts nodes evaluated at compile time.
	folded int
}

// defaultOpset is assumed when a graph does not say.
const defaultOpset = 13

func analyze(g *Graph, opt Options) (*analysis, error) {
	order, err := Sort(g)
	if err != nil {
		return nil, err
	}
	a := &analysis{g: g, opt: opt, opset: g.Opset, vals: map[string]*value{}}
	if a.opset <= 0 {
		a.opset = defaultOpset
	}
	params := map[string]bool{}
	if opt.Training {
		for _, n := range order {
			for _, s := range diffSlots(n) {
				if s < len(n.Inputs) {
					if t, ok := g.Initializers[n.Inputs[s]]; ok && t != nil && t.DType == Float32 {
						params[n.Inputs[s]] = true
					}
				}
			}
		}
	}
	for name, t := range g.Initializers {
		if t == nil {
			return nil, fmt.Errorf("%w: initializer %q is nil", ErrInvalid, name)
		}
		if err := checkConst(t); err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		a.vals[name] = &value{name: name, dtype: t.DType, shape: append([]int(nil), t.Shape...), konst: t, isInit: true, param: params[name]}
	}
	for _, in := range g.Inputs {
		if _, ok := a.vals[in.Name]; ok {
			continue // an initializer listed as an input (older exporters)
		}
		shape, err := inputShape(in, opt.InputShapes[in.Name])
		if err != nil {
			return nil, err
		}
		dt := in.DType
		if dt == 0 {
			dt = Float32
		}
		v := &value{name: in.Name, dtype: dt, shape: shape, isInput: true}
		a.vals[in.Name] = v
		a.inputs = append(a.inputs, v)
	}
	for _, n := range order {
		if err := a.node(n); err != nil {
			return nil, err
		}
	}
	for _, o := range g.Outputs {
		if _, ok := a.vals[o.Name]; !ok {
			return nil, fmt.Errorf("%w: graph output %q has no producer", ErrMissing, o.Name)
		}
	}
	return a, nil
}

func checkConst(t *Tensor) error {
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("%w: constant shape %v", ErrInvalid, t.Shape)
		}
	}
	switch t.DType {
	case Float32:
		if len(t.Float) != t.Numel() {
			return fmt.Errorf("%w: %d float values for shape %v (want %d)", ErrInvalid, len(t.Float), t.Shape, t.Numel())
		}
	case Int64:
		if len(t.Int) != t.Numel() {
			return fmt.Errorf("%w: %d int values for shape %v (want %d)", ErrInvalid, len(t.Int), t.Shape, t.Numel())
		}
	default:
		return fmt.Errorf("%w: dtype %v", ErrUnsupported, t.DType)
	}
	return nil
}

// inputShape resolves a graph input's shape: a given shape must match the
// declared rank and static dims; without one, every dim must be static.
func inputShape(in ValueInfo, given []int) ([]int, error) {
	if given == nil {
		for i, d := range in.Shape {
			if d <= 0 {
				return nil, fmt.Errorf("%w: input %q has dynamic dim %d in %v: give its shape in Options.InputShapes", ErrMissing, in.Name, i, in.Shape)
			}
		}
		return append([]int(nil), in.Shape...), nil
	}
	if in.Shape != nil && len(given) != len(in.Shape) {
		return nil, fmt.Errorf("%w: input %q: given shape %v has rank %d (want %d, declared %v)", kernels.ErrShape, in.Name, given, len(given), len(in.Shape), in.Shape)
	}
	for i, d := range given {
		if d <= 0 {
			return nil, fmt.Errorf("%w: input %q: given shape %v has dim %d <= 0", kernels.ErrShape, in.Name, given, i)
		}
		if in.Shape != nil && in.Shape[i] > 0 && in.Shape[i] != d {
			return nil, fmt.Errorf("%w: input %q: dim %d is %d (want %d, declared %v)", kernels.ErrShape, in.Name, i, d, in.Shape[i], in.Shape)
		}
	}
	return append([]int(nil), given...), nil
}

func (a *analysis) node(n *Node) error {
	ins := make([]*value, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, ok := a.vals[name]
		if !ok {
			return nodeErr(n, ErrMissing, "input %q has no producer", name)
		}
		ins[i] = v
	}
	table := opTable
	if n.Domain == fusedDomain {
		table = fusedOps
	} else if n.Domain != "" && n.Domain != "ai.onnx" {
		return nodeErr(n, ErrUnsupported, "unsupported op domain %q", n.Domain)
	}
	fn, ok := table[n.Op]
	if !ok {
		return nodeErr(n, ErrUnsupported, "unsupported op %q", n.Op)
	}
	at := newAttrs(n)
	plan, err := fn(a, n, ins, at)
	if err != nil {
		return err
	}
	if err := at.done(); err != nil {
		return err
	}
	nOut := len(plan.outShapes)
	if plan.consts != nil {
		nOut = len(plan.consts)
	}
	if len(n.Outputs) > nOut {
		// Requested outputs beyond what the op yields (optional ones
		// this executor does not produce) are an error only if named.
		for _, o := range n.Outputs[nOut:] {
			if o != "" {
				return nodeErr(n, ErrUnsupported, "optional output %q is not produced", o)
			}
		}
	}
	if plan.consts != nil {
		a.folded++
		for i, t := range plan.consts {
			if i >= len(n.Outputs) || n.Outputs[i] == "" {
				continue
			}
			t.Name = n.Outputs[i]
			a.vals[n.Outputs[i]] = &value{name: n.Outputs[i], dtype: t.DType, shape: append([]int(nil), t.Shape...), konst: t}
		}
		return nil
	}
	for _, s := range plan.outShapes {
		for _, d := range s {
			if d <= 0 {
				return nodeErr(n, ErrUnsupported, "output shape %v has an empty dimension (inputs %s): empty tensors are not supported", s, inShapes(ins))
			}
		}
	}
	st := &step{idx: len(a.steps), node: n, ins: ins, plan: plan, outs: make([]*value, len(plan.outShapes))}
	for i, s := range plan.outShapes {
		if i >= len(n.Outputs) || n.Outputs[i] == "" {
			continue
		}
		dt := Float32
		if i < len(plan.outDTypes) && plan.outDTypes[i] != 0 {
			dt = plan.outDTypes[i]
		}
		v := &value{name: n.Outputs[i], dtype: dt, shape: s, prod: st}
		if i == 0 && plan.view {
			v.alias = ins[0]
		}
		st.outs[i] = v
		a.vals[v.name] = v
	}
	a.steps = append(a.steps, st)
	return nil
}

func inShapes(ins []*value) string {
	s := "["
	for i, v := range ins {
		if i > 0 {
			s += " "
		}
		if v == nil {
			s += "-"
		} else {
			s += kernels.Shape(v.shape).String()
		}
	}
	return s + "]"
}

// InferShapes returns the shape of every value of g (inputs, initializers,
// node outputs) for the given shapes of its dynamic inputs. Values computed
// from constants and shapes are folded on the way, as Compile does.
func InferShapes(g *Graph, inputs map[string][]int) (map[string][]int, error) {
	a, err := analyze(g, Options{InputShapes: inputs})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]int, len(a.vals))
	for name, v := range a.vals {
		out[name] = append([]int{}, v.shape...)
	}
	return out, nil
}
