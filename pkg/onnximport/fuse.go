package onnximport

import (
	"vireo/pkg/graph"
)

// Fusions of elementwise chains exporters write out op by op; each removes
// whole-tensor passes. Both run after constant folding, so constants are
// initializers.
//
//   - Conv -> Mul(k) -> Add(c), k and c constants broadcast per output
//     channel (shape (), (1), (C,1,1) or (1,C,1,1)): the Conv's weights
//     become k*W and its bias k*b + c (PP-LCNet's learnable affine blocks;
//     either step alone folds too). The same for a one-group
//     ConvTranspose (the bias Paddle adds after each one in PP-OCR's DB
//     head).
//   - x * Clip(x+3, 0, 6) / 6 (with the Mul in either order) is
//     HardSwish(x) (MobileNetV3's hard swish as Paddle exports it).
//   - x + x*s, s a Sigmoid or HardSigmoid gate, is x * (s+1): one pass
//     over x instead of two (fuseGateResidual).
//
// A value is rewritten only when its one reader is the next op of the
// chain and it is not a graph output.

// readersOf counts the readers of every value (graph outputs count).
func readersOf(g *graph.Graph) map[string]int {
	readers := map[string]int{}
	for _, n := range g.Nodes {
		for _, x := range n.Inputs {
			readers[x]++
		}
	}
	for _, o := range g.Outputs {
		readers[o.Name]++
	}
	return readers
}

// fuseElementwise applies the fusions until none applies and returns how
// many nodes it removed. g's initializer map must be its own.
func fuseElementwise(g *graph.Graph) int {
	removed := 0
	for {
		n := fuseConvAffine(g) + fuseHardSwish(g)
		if n == 0 {
			break
		}
		removed += n
	}
	for fuseGateResidual(g) {
	}
	return removed
}

// fuseGateResidual rewrites one x + x*s, s a Sigmoid or HardSigmoid gate
// (a squeeze-excitation's channel scales with a shortcut, PP-OCRv4 det's
// RSE layers), as x * (s + 1): the + 1 runs on s, usually (N,C,1,1),
// instead of a second pass over x; the result has the same shape
// (broadcast of x and s). It reports whether it rewrote one. The Mul must
// have the Add as its only reader.
func fuseGateResidual(g *graph.Graph) bool {
	readers := readersOf(g)
	producer := map[string]*graph.Node{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	for _, add := range g.Nodes {
		if add.Op != "Add" || len(add.Inputs) != 2 || len(add.Outputs) != 1 {
			continue
		}
		for i, mo := range add.Inputs {
			x := add.Inputs[1-i]
			mul := producer[mo]
			if mul == nil || mul.Op != "Mul" || len(mul.Outputs) != 1 || readers[mo] != 1 || x == mo {
				continue
			}
			sv := otherInput(mul, x)
			sp := producer[sv]
			if sv == "" || sv == x || sp == nil || (sp.Op != "Sigmoid" && sp.Op != "HardSigmoid") {
				continue
			}
			one := &graph.Tensor{Name: uniqueName(g, sv+"/one"), DType: graph.Float32, Shape: []int{1}, Float: []float32{1}}
			g.Initializers[one.Name] = one
			s1 := uniqueName(g, sv+"/plus_one")
			inc := &graph.Node{Name: s1, Op: "Add", Inputs: []string{sv, one.Name}, Outputs: []string{s1}}
			scaled := &graph.Node{Name: add.Name, Op: "Mul", Inputs: []string{x, s1}, Outputs: []string{add.Outputs[0]}}
			nodes := make([]*graph.Node, 0, len(g.Nodes))
			for _, n := range g.Nodes {
				switch n {
				case mul:
					nodes = append(nodes, inc)
				case add:
					nodes = append(nodes, scaled)
				default:
					nodes = append(nodes, n)
				}
			}
			g.Nodes = nodes
			return true
		}
	}
	return false
}

// onlyReader returns the single node reading v, or nil.
func onlyReader(g *graph.Graph, readers map[string]int, v string) *graph.Node {
	if readers[v] != 1 {
		return nil
	}
	for _, n := range g.Nodes {
		for _, x := range n.Inputs {
			if x == v {
				return n
			}
		}
	}
	return nil
}

// perChannel returns a constant's value for each of c channels when it
// broadcasts per channel against an (N,C,H,W) tensor, or nil.
func perChannel(t *graph.Tensor, c int) []float32 {
	if t == nil || t.DType != graph.Float32 || len(t.Float) == 0 {
		return nil
	}
	s := t.Shape
	switch {
	case len(t.Float) == 1 && len(s) <= 4:
		out := make([]float32, c)
		for i := range out {
			out[i] = t.Float[0]
		}
		return out
	case len(s) == 3 && s[0] == c && s[1] == 1 && s[2] == 1,
		len(s) == 4 && s[0] == 1 && s[1] == c && s[2] == 1 && s[3] == 1:
		return t.Float
	}
	return nil
}

// otherInput returns n's input that is not v (n has two inputs, one v).
func otherInput(n *graph.Node, v string) string {
	if len(n.Inputs) != 2 {
		return ""
	}
	if n.Inputs[0] == v {
		return n.Inputs[1]
	}
	if n.Inputs[1] == v {
		return n.Inputs[0]
	}
	return ""
}

// fuseConvAffine folds one Mul or Add into the Conv before it and returns
// the number of nodes removed (0 or 1).
func fuseConvAffine(g *graph.Graph) int {
	readers := readersOf(g)
	for _, conv := range g.Nodes {
		if (conv.Op != "Conv" && conv.Op != "ConvTranspose") || len(conv.Outputs) != 1 || len(conv.Inputs) < 2 {
			continue
		}
		w := g.Initializers[conv.Inputs[1]]
		if w == nil || w.DType != graph.Float32 || len(w.Shape) != 4 {
			continue
		}
		// Output channel o's weights: Conv's w[o] (M,C/g,kH,kW), or
		// ConvTranspose's w[:, o] (C,M,kH,kW; one group only).
		co, ci := w.Shape[0], 1
		if conv.Op == "ConvTranspose" {
			if a, ok := conv.Attrs["group"]; ok && a.Int != 1 {
				continue
			}
			co, ci = w.Shape[1], w.Shape[0]
		}
		var bias *graph.Tensor
		if len(conv.Inputs) > 2 && conv.Inputs[2] != "" {
			if bias = g.Initializers[conv.Inputs[2]]; bias == nil || len(bias.Float) != co {
				continue
			}
		}
		next := onlyReader(g, readers, conv.Outputs[0])
		if next == nil || (next.Op != "Mul" && next.Op != "Add") || len(next.Outputs) != 1 {
			continue
		}
		k := perChannel(g.Initializers[otherInput(next, conv.Outputs[0])], co)
		if k == nil {
			continue
		}
		// New weights and bias (never modify shared tensors in place).
		nw := &graph.Tensor{Name: uniqueName(g, conv.Inputs[1]+"/fused"), DType: graph.Float32, Shape: w.Shape, Float: append([]float32(nil), w.Float...)}
		nb := &graph.Tensor{Name: uniqueName(g, conv.Outputs[0]+"/fused_bias"), DType: graph.Float32, Shape: []int{co}, Float: make([]float32, co)}
		if bias != nil {
			copy(nb.Float, bias.Float)
		}
		per := len(w.Float) / (ci * co) // per input channel (ConvTranspose) and output channel
		if next.Op == "Mul" {
			for c := 0; c < ci; c++ {
				for o := 0; o < co; o++ {
					for i := (c*co + o) * per; i < (c*co+o+1)*per; i++ {
						nw.Float[i] *= k[o]
					}
				}
			}
			for o := 0; o < co; o++ {
				nb.Float[o] *= k[o]
			}
		} else {
			for o := 0; o < co; o++ {
				nb.Float[o] += k[o]
			}
		}
		g.Initializers[nw.Name], g.Initializers[nb.Name] = nw, nb
		conv.Inputs = []string{conv.Inputs[0], nw.Name, nb.Name}
		conv.Outputs = []string{next.Outputs[0]}
		dropNode(g, next)
		dropUnread(g)
		return 1 // g.Nodes changed: the caller rescans
	}
	return 0
}

// scalarConst returns the value of a one-element float constant.
func scalarConst(g *graph.Graph, name string) (float32, bool) {
	t := g.Initializers[name]
	if t == nil || t.DType != graph.Float32 || len(t.Float) != 1 {
		return 0, false
	}
	return t.Float[0], true
}

// fuseHardSwish replaces one hard-swish chain and returns the number of
// nodes removed (0 or 3).
func fuseHardSwish(g *graph.Graph) int {
	readers := readersOf(g)
	for _, add := range g.Nodes {
		if add.Op != "Add" || len(add.Outputs) != 1 || len(add.Inputs) != 2 {
			continue
		}
		x := ""
		for i, in := range add.Inputs {
			if v, ok := scalarConst(g, in); ok && v == 3 && g.Initializers[add.Inputs[1-i]] == nil {
				x = add.Inputs[1-i]
			}
		}
		if x == "" {
			continue
		}
		clip := onlyReader(g, readers, add.Outputs[0])
		if clip == nil || clip.Op != "Clip" || len(clip.Outputs) != 1 || !clipIs06(g, clip) {
			continue
		}
		mul := onlyReader(g, readers, clip.Outputs[0])
		if mul == nil || mul.Op != "Mul" || len(mul.Outputs) != 1 || otherInput(mul, clip.Outputs[0]) != x {
			continue
		}
		div := onlyReader(g, readers, mul.Outputs[0])
		if div == nil || div.Op != "Div" || len(div.Outputs) != 1 || div.Inputs[0] != mul.Outputs[0] {
			continue
		}
		if v, ok := scalarConst(g, div.Inputs[1]); !ok || v != 6 {
			continue
		}
		hs := &graph.Node{Name: div.Name, Op: "HardSwish", Inputs: []string{x}, Outputs: []string{div.Outputs[0]}}
		for i, n := range g.Nodes {
			if n == div {
				g.Nodes[i] = hs
			}
		}
		dropNode(g, add)
		dropNode(g, clip)
		dropNode(g, mul)
		dropUnread(g)
		return 3 // g.Nodes changed: the caller rescans
	}
	return 0
}

// clipIs06 reports whether a Clip bounds to [0, 6] (attributes before
// opset 11, constant inputs after).
func clipIs06(g *graph.Graph, n *graph.Node) bool {
	if len(n.Inputs) == 3 {
		lo, ok1 := scalarConst(g, n.Inputs[1])
		hi, ok2 := scalarConst(g, n.Inputs[2])
		return ok1 && ok2 && lo == 0 && hi == 6
	}
	if len(n.Inputs) == 1 {
		lo, ok1 := n.Attrs["min"]
		hi, ok2 := n.Attrs["max"]
		return ok1 && ok2 && lo.Float == 0 && hi.Float == 6
	}
	return false
}

// dropNode removes n from g's nodes.
func dropNode(g *graph.Graph, n *graph.Node) {
	kept := g.Nodes[:0]
	for _, m := range g.Nodes {
		if m != n {
			kept = append(kept, m)
		}
	}
	g.Nodes = kept
}
