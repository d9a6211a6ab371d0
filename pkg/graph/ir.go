package graph

import "fmt"

// DType is an element type of a value in the graph. Activations and
// parameters are Float32; Int64 appears in shape computations (Reshape's
// shape, Slice's starts, Gather's indices) that are folded at load time.
type DType int

const (
	Float32 DType = iota + 1
	Int64
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int64:
		return "int64"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Tensor is a constant: an initializer (weights) or a folded value.
// Exactly one of Float and Int is set, matching DType.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Float []float32
	Int   []int64
}

// Numel is the number of elements of t.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ValueInfo describes a graph input or output. Dims of -1 are dynamic
// (DimParams holds their symbolic names where the file gave one).
type ValueInfo struct {
	Name      string
	DType     DType
	Shape     []int
	DimParams []string
}

// AttrKind is the type of a node attribute (ONNX AttributeProto types).
type AttrKind int

const (
	AttrFloat AttrKind = iota + 1
	AttrInt
	AttrString
	AttrTensor
	AttrFloats
	AttrInts
	AttrStrings
)

// Attr is one node attribute; the field matching Kind is set.
type Attr struct {
	Kind    AttrKind
	Float   float32
	Int     int64
	String  string
	Tensor  *Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// Node is one operator application, ONNX-shaped: Op is the ONNX op type
// ("Conv", "Relu", ...), Inputs and Outputs name values ("" marks an
// omitted optional input).
type Node struct {
	Name    string
	Op      string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   map[string]Attr
}

// Label names n in errors and profiles: its name, or "->" and its first
// output when it has none.
func (n *Node) Label() string {
	if n.Name == "" && len(n.Outputs) > 0 {
		return "->" + n.Outputs[0]
	}
	return n.Name
}

// Graph is a model's computation: nodes (in any order: Sort orders them),
// the graph's inputs and outputs, and its constants.
type Graph struct {
	Name         string
	Nodes        []*Node
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	Initializers map[string]*Tensor
	// Opset is the default-domain opset the graph was written for.
	Opset int64
}

// ValueNames returns the names of every value of g: its inputs, its
// initializers and its nodes' outputs.
func (g *Graph) ValueNames() map[string]bool {
	names := map[string]bool{}
	for _, v := range g.Inputs {
		names[v.Name] = true
	}
	for k := range g.Initializers {
		names[k] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			names[o] = true
		}
	}
	return names
}
