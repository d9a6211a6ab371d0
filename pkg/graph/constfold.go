package graph

import (
	"errors"
	"fmt"
	"sort"
)

// SupportedOp reports whether the executor implements op in the given
// domain ("" or "ai.onnx" is ONNX's default domain). Supporting an op does
// not mean every attribute combination: Compile names the ones it refuses.
func SupportedOp(domain, op string) bool {
	if domain != "" && domain != "ai.onnx" {
		return false
	}
	_, ok := opTable[op]
	return ok
}

// SupportedOps lists the default-domain ops the executor implements,
// sorted.
func SupportedOps() []string {
	out := make([]string, 0, len(opTable))
	for op := range opTable {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// FoldStats says what FoldConstants did.
type FoldStats struct {
	// Nodes is the number of nodes replaced by initializers.
	Nodes int
	// Static is true when every graph input had a fully static shape, so
	// shape computations (Shape -> Gather -> Concat -> Reshape chains)
	// were folded too.
	Static bool
}

// probeDims are tried, in order, for dynamic dims (other than a leading
// batch dim, probed as 1) when FoldConstants evaluates the values that do
// not depend on any graph input: those values are the same for every
// probe, so the first probe the analysis accepts is as good as any.
var probeDims = [...]int{64, 32, 224, 128, 16, 8, 1}

// FoldConstants returns a copy of g in which every node whose outputs can be
// computed when loading is replaced by initializers: Constant and
// ConstantOfShape nodes, arithmetic and layout ops over constants, and,
// when every graph input has a static shape (after applying inputShapes,
// which may fix dynamic dims), shape computations such as Shape -> Gather ->
// Cast -> Unsqueeze -> Concat -> Reshape chains. Nodes whose result depends
// on an input's values, or on a dynamic dim, stay. Initializers nothing
// reads any more are dropped, and initializers listed as graph inputs
// (older exporters) are removed from the inputs. g is not modified; the
// returned graph shares tensors with it.
func FoldConstants(g *Graph, inputShapes map[string][]int) (*Graph, FoldStats, error) {
	var st FoldStats
	if g == nil {
		return nil, st, fmt.Errorf("%w: nil graph", ErrInvalid)
	}
	order, err := Sort(g)
	if err != nil {
		return nil, st, err
	}
	// Runtime inputs and whether all of them are static.
	shapes := map[string][]int{}
	st.Static = true
	var dynamic []ValueInfo
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; isInit {
			continue
		}
		if s, ok := inputShapes[in.Name]; ok {
			shapes[in.Name] = s
			continue
		}
		if in.Shape == nil {
			st.Static = false
			dynamic = append(dynamic, in)
			continue
		}
		for _, d := range in.Shape {
			if d <= 0 {
				st.Static = false
				dynamic = append(dynamic, in)
				break
			}
		}
	}
	var a *analysis
	if st.Static {
		if a, err = analyze(g, Options{InputShapes: shapes}); err != nil {
			return nil, st, err
		}
	} else {
		var firstErr error
		for _, p := range probeDims {
			probe := map[string][]int{}
			for k, v := range shapes {
				probe[k] = v
			}
			for _, in := range dynamic {
				if in.Shape == nil {
					return nil, st, fmt.Errorf("%w: input %q has no shape (rank unknown): give its shape", ErrMissing, in.Name)
				}
				s := make([]int, len(in.Shape))
				for i, d := range in.Shape {
					switch {
					case d > 0:
						s[i] = d
					case i == 0:
						s[i] = 1
					default:
						s[i] = p
					}
				}
				probe[in.Name] = s
			}
			a, err = analyze(g, Options{InputShapes: probe})
			if err == nil {
				break
			}
			if firstErr == nil {
				firstErr = err
			}
			if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrMissing) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrCycle) {
				return nil, st, err // not a matter of the probe shape
			}
		}
		if a == nil {
			return nil, st, fmt.Errorf("graph: no probe shape for the dynamic inputs could be analysed: %w", firstErr)
		}
	}
	// dep marks values that depend on a runtime input's values (or, when
	// shapes are dynamic, on its shape).
	dep := map[string]bool{}
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; !isInit {
			dep[in.Name] = true
		}
	}
	folded := map[*Node]bool{}
	for _, n := range order {
		d := false
		for _, in := range n.Inputs {
			if in != "" && dep[in] {
				d = true
			}
		}
		if n.Op == "Shape" && st.Static {
			d = false
		}
		if !d {
			all := true
			for _, o := range n.Outputs {
				if o == "" {
					continue
				}
				v := a.vals[o]
				if v == nil || v.konst == nil || v.isInit {
					all = false
				}
			}
			if all {
				folded[n] = true
				continue
			}
		}
		for _, o := range n.Outputs {
			if o != "" {
				dep[o] = true
			}
		}
	}
	out := &Graph{Name: g.Name, Opset: g.Opset, Initializers: map[string]*Tensor{}}
	used := map[string]bool{}
	for _, n := range order {
		if folded[n] {
			st.Nodes++
			continue
		}
		out.Nodes = append(out.Nodes, n)
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	producer := map[string]*Node{}
	for _, n := range order {
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	for name := range used {
		if t, ok := g.Initializers[name]; ok {
			out.Initializers[name] = t
			continue
		}
		if p := producer[name]; p != nil && folded[p] {
			t := *a.vals[name].konst
			t.Name = name
			out.Initializers[name] = &t
		}
	}
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; isInit {
			continue
		}
		out.Inputs = append(out.Inputs, in)
	}
	out.Outputs = append(out.Outputs, g.Outputs...)
	return out, st, nil
}
