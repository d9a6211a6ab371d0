package graph

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"testing"

	"vireo/pkg/kernels"
)

// baseGraph uses many ops; mutations of it make broken graphs.
func baseGraph(r *rand.Rand) *Graph {
	b := newBuilder().input("x", 1, 4, 6, 6)
	convNode(b, r, "x", "c", 4, 4, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	bnNode(b, r, "c", "n", 4)
	b.node("Relu", in("n"), in("a"), nil)
	b.node("MaxPool", in("a"), in("p"), map[string]Attr{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)})
	b.node("Concat", in("p", "p"), in("cat"), map[string]Attr{"axis": aInt(1)})
	b.node("DepthToSpace", in("cat"), in("d"), map[string]Attr{"blocksize": aInt(2)})
	b.init("sc", []float32{1, 1, 0.5, 0.5}, 4)
	b.node("Resize", in("d", "", "sc"), in("rs"), nil)
	b.node("Shape", in("rs"), in("shp"), nil)
	b.initInt("i0", []int64{0})
	b.node("Gather", in("shp", "i0"), in("n0"), nil)
	b.initInt("ax0", []int64{0}, 1).initInt("m1", []int64{-1}, 1)
	b.node("Unsqueeze", in("n0", "ax0"), in("n1"), nil)
	b.node("Concat", in("n1", "m1"), in("tgt"), map[string]Attr{"axis": aInt(0)})
	b.node("Reshape", in("rs", "tgt"), in("f"), nil)
	b.init("fw", randVals(r, 3*18, -0.1, 0.1), 3, 18)
	b.node("Gemm", in("f", "fw"), in("g"), map[string]Attr{"transB": aInt(1)})
	b.node("Softmax", in("g"), in("y"), nil)
	b.output("y")
	return b.g
}

func cloneGraph(g *Graph) *Graph {
	out := *g
	out.Nodes = nil
	for _, n := range g.Nodes {
		c := *n
		c.Inputs = append([]string(nil), n.Inputs...)
		c.Outputs = append([]string(nil), n.Outputs...)
		c.Attrs = map[string]Attr{}
		for k, v := range n.Attrs {
			c.Attrs[k] = v
		}
		out.Nodes = append(out.Nodes, &c)
	}
	out.Initializers = map[string]*Tensor{}
	for k, v := range g.Initializers {
		c := *v
		c.Shape = append([]int(nil), v.Shape...)
		out.Initializers[k] = &c
	}
	out.Inputs = append([]ValueInfo(nil), g.Inputs...)
	out.Outputs = append([]ValueInfo(nil), g.Outputs...)
	return &out
}

// Broken graphs give errors, never panics: random mutations of a valid
// graph are compiled (inference and training) and, when they compile, run.
func TestBrokenGraphsNeverPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := baseGraph(r)
	ops := make([]string, 0, len(opTable))
	for op := range opTable {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	attrNames := []string{"axis", "pads", "strides", "kernel_shape", "group", "perm", "blocksize", "mode", "split", "axes", "keepdims", "transA", "alpha", "to", "value", "dilations", "auto_pad", "ceil_mode"}
	randAttr := func() Attr {
		switch r.IntN(6) {
		case 0:
			return aInt(int64(r.IntN(9) - 4))
		case 1:
			n := r.IntN(5)
			v := make([]int64, n)
			for i := range v {
				v[i] = int64(r.IntN(9) - 3)
			}
			return aInts(v...)
		case 2:
			return aFloat(r.Float32()*4 - 2)
		case 3:
			return aStr([]string{"SAME_UPPER", "linear", "DCR", "CRD", "edge", "bogus", ""}[r.IntN(7)])
		case 4:
			return Attr{Kind: AttrTensor, Tensor: &Tensor{DType: Int64, Shape: []int{2}, Int: []int64{1}}}
		}
		return Attr{Kind: AttrKind(r.IntN(9))}
	}
	iters := 600
	if testing.Short() {
		iters = 200
	}
	be := newCPU(t, 1)
	if _, err := Compile(base, be, Options{}); err != nil {
		t.Fatalf("the base graph does not compile: %v", err)
	}
	compiled := 0
	for it := 0; it < iters; it++ {
		g := cloneGraph(base)
		var desc []string
		for m := 0; m < 1+r.IntN(3); m++ {
			n := g.Nodes[r.IntN(len(g.Nodes))]
			switch r.IntN(8) {
			case 0:
				n.Op = ops[r.IntN(len(ops))]
				desc = append(desc, "op "+n.Op)
			case 1:
				if len(n.Inputs) > 0 {
					n.Inputs = n.Inputs[:r.IntN(len(n.Inputs))]
				}
				desc = append(desc, "drop inputs of "+n.Name)
			case 2:
				n.Inputs = append(n.Inputs, []string{"x", "fw", "", "i0", "shp", "ghost"}[r.IntN(6)])
				desc = append(desc, "extra input of "+n.Name)
			case 3:
				k := attrNames[r.IntN(len(attrNames))]
				n.Attrs[k] = randAttr()
				desc = append(desc, fmt.Sprintf("attr %s of %s = %+v", k, n.Name, n.Attrs[k]))
			case 4:
				names := make([]string, 0, len(g.Initializers))
				for k := range g.Initializers {
					names = append(names, k)
				}
				sort.Strings(names)
				init := g.Initializers[names[r.IntN(len(names))]]
				init.Shape = []int{r.IntN(5), 1 + r.IntN(4)}
				desc = append(desc, "reshape initializer "+init.Name)
			case 5:
				g.Inputs[0].Shape = []int{1 + r.IntN(2), 1 + r.IntN(8), 1 + r.IntN(9), r.IntN(9) - 1}
				desc = append(desc, fmt.Sprintf("input shape %v", g.Inputs[0].Shape))
			case 6:
				n.Outputs = append(n.Outputs, "extra")
				desc = append(desc, "extra output of "+n.Name)
			case 7:
				j := r.IntN(len(g.Nodes))
				g.Nodes[j].Inputs = append(g.Nodes[j].Inputs[:0:0], n.Outputs...)
				desc = append(desc, "rewire "+g.Nodes[j].Name)
			}
		}
		for _, training := range []bool{false, true} {
			func() {
				defer func() {
					if e := recover(); e != nil {
						t.Fatalf("iteration %d (%v, training=%v): panic: %v\n%s", it, desc, training, e, debug.Stack())
					}
				}()
				p, err := Compile(g, be, Options{Training: training})
				if err != nil {
					return
				}
				defer p.Close()
				compiled++
				var ins []*kernels.Tensor
				for _, v := range p.a.inputs {
					ins = append(ins, kernels.NewHost(v.shape...))
				}
				if _, err := p.Run(ins...); err != nil || !training {
					return
				}
				grads := make([]*kernels.Tensor, len(p.outs))
				_ = p.Backward(grads...)
			}()
		}
	}
	t.Logf("%d mutated graphs, %d compiled", 2*iters, compiled)
}
