package graph

import (
	"fmt"
	"math"
)

// FoldConvBatchNorm returns a copy of g in which every inference
// BatchNormalization fed only by a Conv (or a one-group ConvTranspose,
// whose output channel m is w[:, m]) is folded into its weights and bias:
//
//	s = scale / sqrt(var + eps)
//	W'[m] = W[m] * s[m]
//	b'[m] = (b[m] - mean[m]) * s[m] + bias[m]
//
// The fold applies when the Conv output is read by that BatchNormalization
// alone (and is not a graph output) and every tensor involved is a float
// initializer. g itself is not changed; the folded weights get new
// initializer names. A following Relu then runs in place on the Conv's
// output (the planner does that for any activation whose input dies).
func FoldConvBatchNorm(g *Graph) (*Graph, error) {
	order, err := Sort(g)
	if err != nil {
		return nil, err
	}
	uses := map[string]int{}
	for _, n := range order {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	for _, o := range g.Outputs {
		uses[o.Name]++
	}
	producer := map[string]*Node{}
	for _, n := range order {
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	out := *g
	out.Initializers = make(map[string]*Tensor, len(g.Initializers))
	for k, v := range g.Initializers {
		out.Initializers[k] = v
	}
	replaced := map[*Node]*Node{}
	dropped := map[*Node]bool{}
	for _, bn := range order {
		if bn.Op != "BatchNormalization" || len(bn.Inputs) != 5 || len(bn.Outputs) == 0 {
			continue
		}
		if len(bn.Outputs) > 1 && bn.Outputs[1] != "" {
			continue
		}
		conv := producer[bn.Inputs[0]]
		if conv == nil || (conv.Op != "Conv" && conv.Op != "ConvTranspose") || replaced[conv] != nil || uses[bn.Inputs[0]] != 1 || len(conv.Inputs) < 2 {
			continue
		}
		if a, ok := conv.Attrs["group"]; ok && a.Int != 1 && conv.Op == "ConvTranspose" {
			continue
		}
		if at, ok := bn.Attrs["spatial"]; ok && at.Int != 1 {
			continue
		}
		w := floatInit(g, conv.Inputs[1])
		var bias *Tensor
		if len(conv.Inputs) > 2 && conv.Inputs[2] != "" {
			if bias = floatInit(g, conv.Inputs[2]); bias == nil {
				continue
			}
		}
		// Output channel c's weights: Conv's w[c] (M,C/g,kH,kW), or
		// ConvTranspose's w[:, c] (C,M,kH,kW; one group).
		m, ci := 0, 1
		if w != nil && len(w.Shape) >= 1 {
			m = w.Shape[0]
		}
		if conv.Op == "ConvTranspose" {
			if w == nil || len(w.Shape) < 2 {
				continue
			}
			m, ci = w.Shape[1], w.Shape[0]
		}
		ps := make([]*Tensor, 4)
		ok := w != nil && m >= 1
		for i := range ps {
			ps[i] = floatInit(g, bn.Inputs[1+i])
			ok = ok && ps[i] != nil && len(ps[i].Float) == m
		}
		if !ok || (bias != nil && len(bias.Float) != m) {
			continue
		}
		eps := float32(1e-5)
		if at, ok := bn.Attrs["epsilon"]; ok {
			eps = at.Float
		}
		per := len(w.Float) / (m * ci)
		nw := &Tensor{DType: Float32, Shape: cloneInts(w.Shape), Float: make([]float32, len(w.Float))}
		nb := &Tensor{DType: Float32, Shape: []int{m}, Float: make([]float32, m)}
		for c := 0; c < m; c++ {
			s := float64(ps[0].Float[c]) / math.Sqrt(float64(ps[3].Float[c])+float64(eps))
			for i := 0; i < ci; i++ {
				for k := (i*m + c) * per; k < (i*m+c+1)*per; k++ {
					nw.Float[k] = float32(float64(w.Float[k]) * s)
				}
			}
			b0 := 0.0
			if bias != nil {
				b0 = float64(bias.Float[c])
			}
			nb.Float[c] = float32((b0-float64(ps[2].Float[c]))*s + float64(ps[1].Float[c]))
		}
		nw.Name = uniqueName(out.Initializers, conv.Inputs[1]+"_bnfold")
		out.Initializers[nw.Name] = nw
		nb.Name = uniqueName(out.Initializers, conv.Inputs[1]+"_bnfold_bias")
		out.Initializers[nb.Name] = nb
		nc := *conv
		nc.Inputs = []string{conv.Inputs[0], nw.Name, nb.Name}
		nc.Outputs = []string{bn.Outputs[0]}
		replaced[conv] = &nc
		dropped[bn] = true
	}
	if len(dropped) == 0 {
		return g, nil
	}
	out.Nodes = rewriteNodes(g.Nodes, replaced, dropped)
	return &out, nil
}

func floatInit(g *Graph, name string) *Tensor {
	t := g.Initializers[name]
	if t == nil || t.DType != Float32 || len(t.Float) != t.Numel() {
		return nil
	}
	return t
}

func uniqueName(m map[string]*Tensor, base string) string {
	name := base
	for i := 1; ; i++ {
		if _, ok := m[name]; !ok {
			return name
		}
		name = fmt.Sprintf("%s_%d", base, i)
	}
}
