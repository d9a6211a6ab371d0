package onnximport

import (
	"strconv"

	"vireo/pkg/graph"
)

// toNCHW makes g's first input NCHW: the input keeps its name and gets the
// shape (N,C,H,W); a Transpose (perm 0,2,3,1) rebuilds the NHWC value the
// graph reads, under a new name. given (input shapes in the model's
// layout) is updated the same way.
func toNCHW(g *graph.Graph, given map[string][]int) {
	in := &g.Inputs[0]
	name := in.Name
	inner := uniqueName(g, name+"/nhwc")
	for _, n := range g.Nodes {
		for i, x := range n.Inputs {
			if x == name {
				n.Inputs[i] = inner
			}
		}
	}
	for i, o := range g.Outputs {
		if o.Name == name { // an identity model: the output stays NHWC
			g.Outputs[i].Name = inner
		}
	}
	nhwc := in.Shape
	in.Shape = []int{nhwc[0], nhwc[3], nhwc[1], nhwc[2]}
	if len(in.DimParams) == 4 {
		p := in.DimParams
		in.DimParams = []string{p[0], p[3], p[1], p[2]}
	}
	if s, ok := given[name]; ok && len(s) == 4 {
		given[name] = []int{s[0], s[3], s[1], s[2]}
	}
	t := &graph.Node{
		Name:    inner,
		Op:      "Transpose",
		Inputs:  []string{name},
		Outputs: []string{inner},
		Attrs:   map[string]graph.Attr{"perm": {Kind: graph.AttrInts, Ints: []int64{0, 2, 3, 1}}},
	}
	g.Nodes = append([]*graph.Node{t}, g.Nodes...)
}

func uniqueName(g *graph.Graph, base string) string {
	used := g.ValueNames()
	name := base
	for i := 1; used[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	return name
}

// cancelTransposes removes Transpose pairs whose permutations compose to
// the identity: readers of the second read the first's input instead. The
// first Transpose goes too when nothing else reads it. It returns the
// number of pairs removed.
func cancelTransposes(g *graph.Graph) int {
	removed := 0
	for {
		producer := map[string]*graph.Node{}
		readers := map[string]int{}
		for _, n := range g.Nodes {
			for _, o := range n.Outputs {
				producer[o] = n
			}
			for _, x := range n.Inputs {
				readers[x]++
			}
		}
		isOut := map[string]bool{}
		for _, o := range g.Outputs {
			isOut[o.Name] = true
			readers[o.Name]++
		}
		changed := false
		for _, n := range g.Nodes {
			if n.Op != "Transpose" || len(n.Inputs) != 1 || len(n.Outputs) != 1 || isOut[n.Outputs[0]] {
				continue
			}
			p := producer[n.Inputs[0]]
			if p == nil || p.Op != "Transpose" || len(p.Inputs) != 1 {
				continue
			}
			p1, ok1 := perm(p)
			p2, ok2 := perm(n)
			if !ok1 || !ok2 || len(p1) != len(p2) {
				continue
			}
			identity := true
			for i := range p2 {
				// y[i] = mid[p2[i]] = x[p1[p2[i]]]
				if p2[i] < 0 || p2[i] >= int64(len(p1)) || p1[p2[i]] != int64(i) {
					identity = false
				}
			}
			if !identity {
				continue
			}
			src, dst := p.Inputs[0], n.Outputs[0]
			for _, m := range g.Nodes {
				for i, x := range m.Inputs {
					if x == dst {
						m.Inputs[i] = src
					}
				}
			}
			drop := map[*graph.Node]bool{n: true}
			if readers[p.Outputs[0]] == 1 {
				drop[p] = true
			}
			kept := g.Nodes[:0]
			for _, m := range g.Nodes {
				if !drop[m] {
					kept = append(kept, m)
				}
			}
			g.Nodes = kept
			removed++
			changed = true
			break
		}
		if !changed {
			return removed
		}
	}
}

// perm is a Transpose's permutation (nil, false without one: the default
// reverses the axes, whose rank is not known here).
func perm(n *graph.Node) ([]int64, bool) {
	a, ok := n.Attrs["perm"]
	if !ok || a.Kind != graph.AttrInts {
		return nil, false
	}
	return a.Ints, true
}
