package graph

// attrs reads a node's attributes with ONNX defaults and reports every
// attribute the op does not know, or knows but cannot honour, as an error
// naming the node, the op and the attribute.
type attrs struct {
	n    *Node
	used map[string]bool
	err  error
}

func newAttrs(n *Node) *attrs { return &attrs{n: n, used: make(map[string]bool, len(n.Attrs))} }

func (a *attrs) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

func (a *attrs) get(name string, kind AttrKind) (Attr, bool) {
	a.used[name] = true
	at, ok := a.n.Attrs[name]
	if !ok {
		return Attr{}, false
	}
	if at.Kind != kind {
		a.fail(nodeErr(a.n, ErrInvalid, "attribute %q has kind %d (want %d)", name, at.Kind, kind))
		return Attr{}, false
	}
	return at, true
}

func (a *attrs) has(name string) bool {
	_, ok := a.n.Attrs[name]
	return ok
}

func (a *attrs) int(name string, def int64) int64 {
	if at, ok := a.get(name, AttrInt); ok {
		return at.Int
	}
	return def
}

func (a *attrs) float(name string, def float32) float32 {
	if at, ok := a.get(name, AttrFloat); ok {
		return at.Float
	}
	return def
}

func (a *attrs) str(name, def string) string {
	if at, ok := a.get(name, AttrString); ok {
		return at.String
	}
	return def
}

func (a *attrs) ints(name string) ([]int64, bool) {
	if at, ok := a.get(name, AttrInts); ok {
		return at.Ints, true
	}
	return nil, false
}

func (a *attrs) floats(name string) ([]float32, bool) {
	if at, ok := a.get(name, AttrFloats); ok {
		return at.Floats, true
	}
	return nil, false
}

func (a *attrs) tensor(name string) (*Tensor, bool) {
	if at, ok := a.get(name, AttrTensor); ok && at.Tensor != nil {
		return at.Tensor, true
	}
	return nil, false
}

// ignore marks attributes that do not change the result here.
func (a *attrs) ignore(names ...string) {
	for _, n := range names {
		a.used[n] = true
	}
}

// unsupported records an error for an attribute value the executor cannot
// honour.
func (a *attrs) unsupported(name string, format string, args ...any) {
	a.fail(nodeErr(a.n, ErrUnsupported, "attribute %q: "+format, append([]any{name}, args...)...))
}

// done returns the first error, or an error for an attribute nobody read.
func (a *attrs) done() error {
	if a.err != nil {
		return a.err
	}
	for name := range a.n.Attrs {
		if !a.used[name] {
			return nodeErr(a.n, ErrUnsupported, "unsupported attribute %q", name)
		}
	}
	return nil
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
