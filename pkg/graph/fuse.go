package graph

import (
	"fmt"
	"maps"

	"vireo/pkg/kernels"
)

// fusedDomain is the op domain of the nodes FuseConvEpilogues writes. It is
// internal to Compile: no ONNX file can name it (the importer accepts only
// the default domain), and analyze takes its ops from fusedOps only.
const fusedDomain = "vireo.fused"

// fusedOps are the analysers of fusedDomain's ops.
var fusedOps = map[string]opFunc{
	"Conv":               opFusedConv,
	"BatchNormalization": opFusedBNRelu,
}

// Attributes a fused Conv carries on top of Conv's.
const (
	attrFusedAct   = "vireo_act"
	attrFusedAlpha = "vireo_act_alpha"
	attrFusedBeta  = "vireo_act_beta"
	// The scalar affine after the activation (kernels.Act.Affine).
	attrFusedScale = "vireo_act_scale"
	attrFusedShift = "vireo_act_shift"
)

// fusableActs maps the activation ops a fused Conv can absorb to their
// kinds.
var fusableActs = map[string]kernels.ActKind{
	"Relu": kernels.ActRelu, "LeakyRelu": kernels.ActLeakyRelu, "Sigmoid": kernels.ActSigmoid,
	"HardSigmoid": kernels.ActHardSigmoid, "HardSwish": kernels.ActHardSwish, "Clip": kernels.ActClip,
}

// FuseConvEpilogues returns a copy of g in which each 2-D Conv followed by
// an Add of a tensor of the Conv output's shape (a residual), by one of
// the activations Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish or Clip
// (constant bounds), or by an Add then such an activation, is one fused
// node computing
//
//	y = act((conv(x, w) + b) + res)
//
// through kernels.FusedConvOps (the same arithmetic in the same order as
// the separate nodes). A step is absorbed only when the value before it
// is read by that node alone and is not a graph output. shapes are the
// value shapes (InferShapes); actOK says which activations the backend
// fuses. It returns g itself when nothing fuses, and the number of nodes
// absorbed. For inference: the fused nodes have no backward.
func FuseConvEpilogues(g *Graph, shapes map[string][]int, actOK func(kernels.ActKind) bool) (*Graph, int, error) {
	return FuseConvEpiloguesAffine(g, shapes, actOK, false)
}

// FuseConvEpiloguesAffine is FuseConvEpilogues that, with affine set (a
// backend implementing kernels.FusedAffineOps), also absorbs a Mul by a
// scalar constant, an Add of a scalar constant, or the Mul then the Add,
// that follow an absorbed activation:
//
//	y = act((conv(x, w) + b) + res)*scale + shift
//
// An activation that follows a permutation of a Conv's output (Conv ->
// DepthToSpace -> Relu: a U-Net's pixel-shuffle upsampling) is first
// moved before it (hoistActs), so the Conv absorbs it too.
func FuseConvEpiloguesAffine(g *Graph, shapes map[string][]int, actOK func(kernels.ActKind) bool, affine bool) (*Graph, int, error) {
	g, shapes, err := hoistActs(g, shapes, actOK)
	if err != nil {
		return nil, 0, err
	}
	order, err := Sort(g)
	if err != nil {
		return nil, 0, err
	}
	single := singleReaders(g, order)
	dropped := map[*Node]bool{}
	replaced := map[*Node]*Node{}
	absorbed := 0
	for _, conv := range order {
		if conv.Op != "Conv" || (conv.Domain != "" && conv.Domain != "ai.onnx") || dropped[conv] ||
			len(conv.Inputs) < 2 || len(conv.Outputs) != 1 || len(shapes[conv.Inputs[0]]) != 4 {
			continue
		}
		out := conv.Outputs[0]
		res := ""
		var chain []*Node
		if n := single(out); n != nil && !dropped[n] && n.Op == "Add" && n.Domain == "" && len(n.Inputs) == 2 && len(n.Outputs) == 1 &&
			n.Inputs[0] != n.Inputs[1] {
			other := n.Inputs[0]
			if other == out {
				other = n.Inputs[1]
			}
			if other != "" && equalInts(shapes[other], shapes[out]) && equalInts(shapes[n.Outputs[0]], shapes[out]) {
				res = other
				chain = append(chain, n)
				out = n.Outputs[0]
			}
		}
		act := kernels.Act{Kind: kernels.ActIdentity}
		if n := single(out); n != nil && !dropped[n] && n.Domain == "" && len(n.Outputs) == 1 {
			if a, ok := fusableAct(g, n); ok && actOK(a.Kind) {
				act = a
				chain = append(chain, n)
				out = n.Outputs[0]
			}
		}
		if affine && act.Kind != kernels.ActIdentity {
			act.Scale = 1
			for _, op := range []string{"Mul", "Add"} {
				n := single(out)
				if n == nil || dropped[n] || n.Op != op || n.Domain != "" || len(n.Inputs) != 2 || len(n.Outputs) != 1 ||
					!equalInts(shapes[n.Outputs[0]], shapes[out]) {
					continue
				}
				other := n.Inputs[0]
				if other == out {
					other = n.Inputs[1]
				}
				t := floatInit(g, other)
				if t == nil || len(t.Float) != 1 || (n.Inputs[0] != out && n.Inputs[1] != out) {
					continue
				}
				if op == "Mul" {
					act.Scale = t.Float[0]
				} else {
					act.Shift = t.Float[0]
				}
				act.Affine = true
				chain = append(chain, n)
				out = n.Outputs[0]
			}
			if !act.Affine {
				act.Scale = 0
			}
		}
		if len(chain) == 0 {
			continue
		}
		f := &Node{Name: conv.Name, Op: "Conv", Domain: fusedDomain, Outputs: []string{out}, Attrs: map[string]Attr{}}
		for k, v := range conv.Attrs {
			f.Attrs[k] = v
		}
		f.Attrs[attrFusedAct] = Attr{Kind: AttrInt, Int: int64(act.Kind)}
		f.Attrs[attrFusedAlpha] = Attr{Kind: AttrFloat, Float: act.Alpha}
		f.Attrs[attrFusedBeta] = Attr{Kind: AttrFloat, Float: act.Beta}
		if act.Affine {
			f.Attrs[attrFusedScale] = Attr{Kind: AttrFloat, Float: act.Scale}
			f.Attrs[attrFusedShift] = Attr{Kind: AttrFloat, Float: act.Shift}
		}
		b := ""
		if len(conv.Inputs) > 2 {
			b = conv.Inputs[2]
		}
		f.Inputs = []string{conv.Inputs[0], conv.Inputs[1], b, res}
		replaced[conv] = f
		for _, n := range chain {
			dropped[n] = true
		}
		absorbed += len(chain)
	}
	if absorbed == 0 {
		return g, 0, nil
	}
	out := *g
	out.Nodes = rewriteNodes(g.Nodes, replaced, dropped)
	return &out, absorbed, nil
}

// rewriteNodes returns nodes in order with each replaced one swapped for
// its replacement and the dropped ones left out.
func rewriteNodes(nodes []*Node, replaced map[*Node]*Node, dropped map[*Node]bool) []*Node {
	out := make([]*Node, 0, len(nodes)-len(dropped))
	for _, n := range nodes {
		if dropped[n] {
			continue
		}
		if r := replaced[n]; r != nil {
			n = r
		}
		out = append(out, n)
	}
	return out
}

// FuseBatchNormRelu returns a copy of g in which each BatchNormalization
// whose output only a Relu reads (and is not a graph output) is one fused
// training node computing Relu(BatchNormalization(x)) through
// kernels.FusedBNReluOps, forward and backward, with the same values as
// the two nodes. For training programs (inference folds BatchNormalization
// into the Conv before it instead). It returns g itself when nothing
// fuses, and the number of Relus absorbed.
func FuseBatchNormRelu(g *Graph) (*Graph, int, error) {
	order, err := Sort(g)
	if err != nil {
		return nil, 0, err
	}
	single := singleReaders(g, order)
	replaced := map[*Node]*Node{}
	dropped := map[*Node]bool{}
	for _, bn := range order {
		if bn.Op != "BatchNormalization" || (bn.Domain != "" && bn.Domain != "ai.onnx") || len(bn.Inputs) != 5 || len(bn.Outputs) != 1 {
			continue
		}
		r := single(bn.Outputs[0])
		if r == nil || r.Op != "Relu" || r.Domain != "" || len(r.Inputs) != 1 || len(r.Outputs) != 1 || len(r.Attrs) != 0 {
			continue
		}
		f := &Node{Name: bn.Name, Op: "BatchNormalization", Domain: fusedDomain, Inputs: bn.Inputs, Outputs: r.Outputs, Attrs: bn.Attrs}
		replaced[bn] = f
		dropped[r] = true
	}
	if len(dropped) == 0 {
		return g, 0, nil
	}
	out := *g
	out.Nodes = rewriteNodes(g.Nodes, replaced, dropped)
	return &out, len(dropped), nil
}

// singleReaders returns, for a value, the only node that reads it (nil
// when several do, none does, or it is a graph output). order is g's
// nodes sorted.
func singleReaders(g *Graph, order []*Node) func(v string) *Node {
	uses := map[string]int{}
	consumer := map[string]*Node{}
	for _, n := range order {
		for _, in := range n.Inputs {
			if in != "" {
				uses[in]++
				consumer[in] = n
			}
		}
	}
	for _, o := range g.Outputs {
		uses[o.Name] += 2 // never absorbed
	}
	return func(v string) *Node {
		if uses[v] != 1 {
			return nil
		}
		return consumer[v]
	}
}

// permuteOps only move their input's elements (one input, one output):
// an element-wise activation commutes with them.
var permuteOps = map[string]bool{"DepthToSpace": true, "SpaceToDepth": true, "Transpose": true}

// hoistActs returns g with each fusable activation A that reads a
// permutation P (permuteOps) of a Conv's output moved before it:
// Conv -> P -> A becomes Conv -> A -> P, which computes the same values
// (A(P(v)) = P(A(v)) element for element) and lets the Conv absorb A.
// Only when the Conv's output is read by P alone and P's by A alone, and
// neither is a graph output. The value between A and P gets a new name
// (P's old output name is gone); shapes gains it. g itself is returned
// when nothing moves.
func hoistActs(g *Graph, shapes map[string][]int, actOK func(kernels.ActKind) bool) (*Graph, map[string][]int, error) {
	order, err := Sort(g)
	if err != nil {
		return nil, nil, err
	}
	single := singleReaders(g, order)
	names := g.ValueNames()
	swap := map[*Node]*Node{} // P -> A', A -> P'
	for _, conv := range order {
		if conv.Op != "Conv" || (conv.Domain != "" && conv.Domain != "ai.onnx") || len(conv.Outputs) != 1 {
			continue
		}
		v := conv.Outputs[0]
		p := single(v)
		if p == nil || !permuteOps[p.Op] || p.Domain != "" || len(p.Inputs) != 1 || len(p.Outputs) != 1 {
			continue
		}
		a := single(p.Outputs[0])
		if a == nil || a.Domain != "" || len(a.Outputs) != 1 || a.Inputs[0] != p.Outputs[0] {
			continue
		}
		if act, ok := fusableAct(g, a); !ok || !actOK(act.Kind) {
			continue
		}
		mid := v + "/" + a.Op
		for i := 2; names[mid]; i++ {
			mid = fmt.Sprintf("%s/%s%d", v, a.Op, i)
		}
		names[mid] = true
		a2, p2 := *a, *p
		a2.Inputs = append([]string{v}, a.Inputs[1:]...)
		a2.Outputs = []string{mid}
		p2.Inputs = []string{mid}
		p2.Outputs = a.Outputs
		swap[p], swap[a] = &a2, &p2
		if len(swap) == 2 { // first move: copy shapes before adding to it
			shapes = maps.Clone(shapes)
		}
		shapes[mid] = shapes[v]
	}
	if len(swap) == 0 {
		return g, shapes, nil
	}
	// A' takes P's place and P' A's: A' still follows the Conv, P' still
	// precedes A's readers.
	out := *g
	out.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		if r := swap[n]; r != nil {
			n = r
		}
		out.Nodes[i] = n
	}
	return &out, shapes, nil
}

// fusableAct is n as a fused activation (ok=false when n is not one of
// fusableActs or its params are not constants).
func fusableAct(g *Graph, n *Node) (kernels.Act, bool) {
	kind, ok := fusableActs[n.Op]
	if !ok || len(n.Inputs) == 0 {
		return kernels.Act{}, false
	}
	a := kernels.Act{Kind: kind}
	attrF := func(name string, def float32) (float32, bool) {
		at, ok := n.Attrs[name]
		if !ok {
			return def, true
		}
		return at.Float, at.Kind == AttrFloat
	}
	switch kind {
	case kernels.ActLeakyRelu:
		a.Alpha, ok = attrF("alpha", 0.01)
	case kernels.ActHardSigmoid:
		var ok2 bool
		a.Alpha, ok = attrF("alpha", 0.2)
		a.Beta, ok2 = attrF("beta", 0.5)
		ok = ok && ok2
	case kernels.ActClip:
		var ok2 bool
		a.Alpha, ok = attrF("min", -maxFloat32)
		a.Beta, ok2 = attrF("max", maxFloat32)
		ok = ok && ok2
		for i, dst := range []*float32{&a.Alpha, &a.Beta} {
			if len(n.Inputs) > i+1 && n.Inputs[i+1] != "" {
				t := floatInit(g, n.Inputs[i+1])
				if t == nil || len(t.Float) != 1 {
					return a, false
				}
				*dst = t.Float[0]
			}
		}
	default:
		ok = len(n.Attrs) == 0
	}
	if len(n.Inputs) > 1 && kind != kernels.ActClip {
		return a, false
	}
	return a, ok
}

// opFusedConv is a fused Conv: Conv's inputs and attributes, a residual
// as input 3 ("" for none) and the activation in attributes.
func opFusedConv(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 2, 4); err != nil {
		return nil, err
	}
	plan, p, err := convPlanOf(n, ins[:min(len(ins), 3)], at)
	if err != nil {
		return nil, err
	}
	act := kernels.Act{
		Kind:  kernels.ActKind(at.int(attrFusedAct, int64(kernels.ActIdentity))),
		Alpha: at.float(attrFusedAlpha, 0),
		Beta:  at.float(attrFusedBeta, 0),
	}
	if _, ok := n.Attrs[attrFusedScale]; ok {
		act.Affine, act.Scale, act.Shift = true, at.float(attrFusedScale, 1), at.float(attrFusedShift, 0)
	}
	if len(ins) > 3 && ins[3] != nil && !equalInts(ins[3].shape, plan.outShapes[0]) {
		return nil, nodeErr(n, kernels.ErrShape, "residual %v (want %v)", ins[3].shape, plan.outShapes[0])
	}
	plan.diff = nil
	plan.bwd = nil
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xt, wt, bt, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		rt, err := c.in(s, 3)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		if fb, ok := b.(kernels.FusedConvOps); ok && fb.FusedActOK(act.Kind) && (!act.Affine || affineOK(b)) {
			return func() error { return fb.Conv2DFused(y, xt, wt, bt, rt, p, act) }, nil
		}
		if act.Affine {
			return nil, nodeErr(n, kernels.ErrUnsupported, "the backend does not fuse the affine after the activation")
		}
		// A backend without the fused kernel: the three ops in turn.
		return func() error {
			if err := b.Conv2D(y, xt, wt, bt, p); err != nil {
				return err
			}
			if rt != nil {
				if err := b.Binary(y, y, rt, kernels.OpAdd); err != nil {
					return err
				}
			}
			if act.Kind == kernels.ActIdentity {
				return nil
			}
			return b.Activation(y, y, act)
		}, nil
	}
	return plan, nil
}

// affineOK reports whether b's Conv2DFused takes kernels.Act.Affine.
func affineOK(b kernels.Backend) bool {
	fa, ok := b.(kernels.FusedAffineOps)
	return ok && fa.FusedAffineOK()
}
