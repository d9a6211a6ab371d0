package onnximport

import (
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
)

// dynamicBatch lets a graph whose only runtime input is declared with batch
// 1 (common in TensorFlow exports) run any batch, which the serving path
// needs (it batches frames). Exporters bake the batch into constants in
// two ways, and both are rewritten:
//
//   - Reshape to a constant shape (1, ...): the leading 1 becomes 0 ("copy
//     dim 0 of the data"), when the data is a runtime value whose dim 0 is
//     1 at batch 1;
//   - Concat of a runtime value with an all-zero constant of batch 1 along
//     a non-batch axis (channel padding): Pad with zeros on that axis.
//
// The input's batch dim then becomes dynamic. The result is kept only if
// shapes infer at batch 1 exactly as before and at batch 2 every output
// has batch 2; otherwise g is left as it was. It returns whether the batch
// is now dynamic.
func dynamicBatch(g *graph.Graph, given map[string][]int) bool {
	if len(g.Inputs) != 1 || len(g.Inputs[0].Shape) == 0 || g.Inputs[0].Shape[0] != 1 {
		return false
	}
	name := g.Inputs[0].Name
	probe1 := probeShapes(g, given)
	before, err := graph.InferShapes(g, probe1)
	if err != nil {
		return false
	}
	inits := make(map[string]*graph.Tensor, len(g.Initializers))
	for k, v := range g.Initializers {
		inits[k] = v
	}
	nodes := make([]*graph.Node, len(g.Nodes))
	for i, n := range g.Nodes {
		c := *n
		c.Inputs = append([]string(nil), n.Inputs...)
		nodes[i] = &c
	}
	ng := *g
	ng.Nodes, ng.Initializers = nodes, inits
	ng.Inputs = append([]graph.ValueInfo(nil), g.Inputs...)
	ng.Inputs[0].Shape = append([]int(nil), g.Inputs[0].Shape...)
	ng.Inputs[0].Shape[0] = -1
	for i, n := range nodes {
		switch n.Op {
		case "Reshape":
			if len(n.Inputs) < 2 || inits[n.Inputs[0]] != nil {
				continue
			}
			s := inits[n.Inputs[1]]
			x := before[n.Inputs[0]]
			if s == nil || s.DType != graph.Int64 || len(s.Int) == 0 || s.Int[0] != 1 || len(x) == 0 || x[0] != 1 {
				continue
			}
			if a, ok := n.Attrs["allowzero"]; ok && a.Int != 0 {
				continue
			}
			ns := &graph.Tensor{Name: uniqueName(&ng, s.Name+"/batch"), DType: graph.Int64, Shape: s.Shape, Int: append([]int64(nil), s.Int...)}
			ns.Int[0] = 0
			inits[ns.Name] = ns
			n.Inputs[1] = ns.Name
		case "Concat":
			if p := zeroConcatToPad(&ng, n, before); p != nil {
				nodes[i] = p
			}
		}
	}
	after1, err := graph.InferShapes(&ng, probe1)
	if err != nil {
		return false
	}
	for _, o := range g.Outputs {
		if !kernels.Shape(after1[o.Name]).Equal(kernels.Shape(before[o.Name])) {
			return false
		}
	}
	probe2 := map[string][]int{}
	for k, v := range probe1 {
		probe2[k] = append([]int(nil), v...)
	}
	probe2[name][0] = 2
	after2, err := graph.InferShapes(&ng, probe2)
	if err != nil {
		return false
	}
	for _, o := range g.Outputs {
		if s := after2[o.Name]; len(s) == 0 || s[0] != 2 {
			return false
		}
	}
	ng.Outputs = append([]graph.ValueInfo(nil), g.Outputs...)
	for i, o := range ng.Outputs {
		if len(o.Shape) > 0 {
			ng.Outputs[i].Shape = append([]int{-1}, o.Shape[1:]...)
		}
	}
	dropUnread(&ng)
	*g = ng
	return true
}

// zeroConcatToPad returns a Pad node equal to n when n concatenates one
// runtime value with one all-zero constant along a non-batch axis, or nil.
func zeroConcatToPad(g *graph.Graph, n *graph.Node, shapes map[string][]int) *graph.Node {
	if len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		return nil
	}
	zi := -1
	for i, in := range n.Inputs {
		if t := g.Initializers[in]; t != nil {
			if zi >= 0 || t.DType != graph.Float32 || !allZero(t.Float) {
				return nil
			}
			zi = i
		}
	}
	if zi < 0 {
		return nil
	}
	x := n.Inputs[1-zi]
	xs, zs := shapes[x], g.Initializers[n.Inputs[zi]].Shape
	if len(xs) == 0 || len(xs) != len(zs) || xs[0] != 1 || zs[0] != 1 {
		return nil
	}
	a, ok := n.Attrs["axis"]
	if !ok {
		return nil
	}
	axis := int(a.Int)
	if axis < 0 {
		axis += len(xs)
	}
	if axis <= 0 || axis >= len(xs) {
		return nil
	}
	pads := make([]int64, 2*len(xs))
	if zi == 0 {
		pads[axis] = int64(zs[axis])
	} else {
		pads[len(xs)+axis] = int64(zs[axis])
	}
	p := &graph.Node{Name: n.Name, Op: "Pad", Inputs: []string{x}, Outputs: n.Outputs}
	if g.Opset >= 11 {
		t := &graph.Tensor{Name: uniqueName(g, n.Outputs[0]+"/pads"), DType: graph.Int64, Shape: []int{len(pads)}, Int: pads}
		g.Initializers[t.Name] = t
		p.Inputs = append(p.Inputs, t.Name)
	} else {
		p.Attrs = map[string]graph.Attr{"pads": {Kind: graph.AttrInts, Ints: pads}}
	}
	return p
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// dropUnread removes initializers no node reads.
func dropUnread(g *graph.Graph) {
	read := map[string]bool{}
	for _, n := range g.Nodes {
		for _, x := range n.Inputs {
			read[x] = true
		}
	}
	for _, o := range g.Outputs {
		read[o.Name] = true
	}
	for k := range g.Initializers {
		if !read[k] {
			delete(g.Initializers, k)
		}
	}
}
