package graph

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// fuseGraph is a graph with every fusable shape and the ones that must
// not fuse: a residual block Conv -> Add -> Relu (depthwise then 1x1), a
// Conv -> HardSwish, a Conv -> Clip with constant bounds, Add of two Convs
// (only one absorbs it), a Conv read twice (nothing to absorb), a Conv
// feeding a graph output (kept), a broadcasting Add (not a residual) and
// a Tanh (not fusable).
func fuseGraph(r *rand.Rand) *builder {
	b := newBuilder().input("x", 2, 4, 9, 9)
	b.init("dw", randVals(r, 4*25, -0.5, 0.5), 4, 1, 5, 5).init("dw_b", randVals(r, 4, -0.5, 0.5), 4)
	b.node("Conv", in("x", "dw", "dw_b"), in("d"), map[string]Attr{"group": aInt(4), "pads": aInts(2, 2, 2, 2)})
	b.init("pw", randVals(r, 4*4, -0.5, 0.5), 4, 4, 1, 1).init("pw_b", randVals(r, 4, -0.5, 0.5), 4)
	b.node("Conv", in("d", "pw", "pw_b"), in("p"), nil)
	b.node("Add", in("p", "x"), in("s"), nil)
	b.node("Relu", in("s"), in("a"), nil)
	b.init("c3", randVals(r, 6*4*9, -0.5, 0.5), 6, 4, 3, 3)
	b.node("Conv", in("a", "c3"), in("h0"), map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	b.node("HardSwish", in("h0"), in("h"), nil)
	b.init("c4", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1).init("lo", []float32{-0.25}).init("hi", []float32{0.5})
	b.node("Conv", in("h", "c4"), in("k0"), nil)
	b.node("Clip", in("k0", "lo", "hi"), in("k"), nil)
	b.init("c5", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1).init("c6", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1)
	b.node("Conv", in("k", "c5"), in("e5"), nil)
	b.node("Conv", in("k", "c6"), in("e6"), nil)
	b.node("Add", in("e5", "e6"), in("e"), nil)
	b.node("Conv", in("e", "c5"), in("t0"), nil) // read twice: not absorbed
	b.node("Relu", in("t0"), in("t1"), nil)
	b.node("Sigmoid", in("t0"), in("t2"), nil)
	b.node("Add", in("t1", "t2"), in("t"), nil)
	b.init("c7", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1).init("chan", randVals(r, 6, -0.5, 0.5), 1, 6, 1, 1)
	b.node("Conv", in("t", "c7"), in("o"), nil) // a graph output: kept
	b.node("Add", in("o", "chan"), in("u0"), nil)
	b.node("Tanh", in("u0"), in("u"), nil)
	b.output("u", "o")
	return b
}

// TestFuseConvEpilogues: the fused program gives the unfused program's
// outputs within float rounding, on 1 and 2 threads, with the expected
// nodes absorbed and steps saved.
func TestFuseConvEpilogues(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	b := fuseGraph(r)
	shapes, err := InferShapes(b.g, nil)
	must(t, err)
	fused, n, err := FuseConvEpilogues(b.g, shapes, func(kernels.ActKind) bool { return true })
	must(t, err)
	// Add+Relu, HardSwish, Clip, one Add of two Convs.
	if n != 5 || len(fused.Nodes) != len(b.g.Nodes)-5 {
		t.Fatalf("absorbed %d nodes, %d -> %d nodes (want 5 absorbed)", n, len(b.g.Nodes), len(fused.Nodes))
	}
	for _, nd := range fused.Nodes {
		if nd.Domain == fusedDomain {
			t.Logf("fused %s: inputs %v -> %v act %d", nd.Name, nd.Inputs, nd.Outputs, nd.Attrs[attrFusedAct].Int)
		}
	}
	x := hostTensor(randVals(r, 2*4*81, -1, 1), 2, 4, 9, 9)
	for _, threads := range []int{1, 2} {
		be := newCPU(t, threads)
		pu, ou := compareFused(t, b.g, be, x, 5)
		// A backend without kernels.FusedConvOps runs the fused nodes as
		// the three ops in turn.
		pp := compile(t, fused, plainBackend{be}, Options{})
		op, err := pp.Run(x)
		must(t, err)
		for i := range op {
			kernelstest.AssertClose(t, fmt.Sprintf("threads %d output %d, plain backend", threads, i), download(t, be, op[i]), download(t, be, ou[i]), kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
		}
		// Training programs never fuse (the fused node has no backward).
		pt := compile(t, b.g, be, Options{Training: true})
		if pt.Stats().Steps != pu.Stats().Steps {
			t.Errorf("threads %d: training program has %d steps (want the unfused %d)", threads, pt.Stats().Steps, pu.Stats().Steps)
		}
	}
}

// plainBackend hides the optional interfaces of the backend it wraps.
type plainBackend struct{ kernels.Backend }

// TestFusedDomainIsInternal: a graph that names the fused domain itself
// with a bad residual is refused with a shape error, not run.
func TestFusedDomainIsInternal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	b := newBuilder().input("x", 1, 2, 4, 4).input("res", 1, 3, 4, 4)
	b.init("w", randVals(r, 2*2, -1, 1), 2, 2, 1, 1)
	b.g.Nodes = append(b.g.Nodes, &Node{Op: "Conv", Domain: fusedDomain, Inputs: in("x", "w", "", "res"), Outputs: in("y")})
	b.output("y")
	_, err := Compile(b.g, newCPU(t, 1), Options{})
	if !errors.Is(err, kernels.ErrShape) {
		t.Fatalf("err = %v (want ErrShape)", err)
	}
}

// TestFuseConvAffine: a scalar Mul and Add after a fused activation (in
// either input order, together or alone) join the epilogue when the
// backend takes kernels.Act.Affine; a per-channel Mul does not; results
// match the unfused program; a backend without the affine refuses the
// affine-fused graph instead of dropping the affine.
func TestFuseConvAffine(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	b := newBuilder().input("x", 2, 4, 9, 11)
	b.init("w1", randVals(r, 6*4*9, -0.5, 0.5), 6, 4, 3, 3).init("b1", randVals(r, 6, -0.5, 0.5), 6)
	b.init("s1", []float32{0.75}).init("t1", []float32{-0.3})
	b.node("Conv", in("x", "w1", "b1"), in("c1"), map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	b.node("HardSwish", in("c1"), in("h1"), nil)
	b.node("Mul", in("s1", "h1"), in("m1"), nil)
	b.node("Add", in("m1", "t1"), in("a1"), nil)
	b.init("w2", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1).init("t2", []float32{0.2})
	b.node("Conv", in("a1", "w2"), in("c2"), nil)
	b.node("Relu", in("c2"), in("h2"), nil)
	b.node("Add", in("t2", "h2"), in("a2"), nil) // Add alone
	b.init("w3", randVals(r, 6*6, -0.5, 0.5), 6, 6, 1, 1).init("chan", randVals(r, 6, 0.5, 1.5), 1, 6, 1, 1)
	b.node("Conv", in("a2", "w3"), in("c3"), nil)
	b.node("Relu", in("c3"), in("h3"), nil)
	b.node("Mul", in("h3", "chan"), in("m3"), nil) // per channel: stays
	b.output("m3")
	shapes, err := InferShapes(b.g, nil)
	must(t, err)
	all := func(kernels.ActKind) bool { return true }
	_, n0, err := FuseConvEpiloguesAffine(b.g, shapes, all, false)
	must(t, err)
	fused, n1, err := FuseConvEpiloguesAffine(b.g, shapes, all, true)
	must(t, err)
	if n0 != 3 || n1 != 6 {
		t.Fatalf("absorbed %d nodes without the affine (want 3: the activations), %d with it (want 6: plus Mul, Add, Add)", n0, n1)
	}
	x := hostTensor(randVals(r, 2*4*9*11, -2, 2), 2, 4, 9, 11)
	for _, threads := range []int{1, 2} {
		be := newCPU(t, threads)
		compareFused(t, b.g, be, x, 6)
		if _, err := Compile(fused, plainBackend{be}, Options{}); !errors.Is(err, kernels.ErrUnsupported) {
			t.Errorf("threads %d: affine-fused graph on a backend without the affine: err = %v (want ErrUnsupported)", threads, err)
		}
	}
}

// compareFused compiles g fused and unfused on be, checks that fusing
// saves fewer steps exactly, and that both give the same outputs on x
// within float rounding; it returns the unfused program and its outputs.
func compareFused(t *testing.T, g *Graph, be kernels.Backend, x *kernels.Tensor, fewer int) (*Program, []*kernels.Tensor) {
	t.Helper()
	pf := compile(t, g, be, Options{})
	pu := compile(t, g, be, Options{NoFuse: true})
	if pf.Stats().Steps != pu.Stats().Steps-fewer {
		t.Fatalf("steps fused %d, unfused %d (want %d fewer)", pf.Stats().Steps, pu.Stats().Steps, fewer)
	}
	of, err := pf.Run(x)
	must(t, err)
	ou, err := pu.Run(x)
	must(t, err)
	for i := range of {
		kernelstest.AssertClose(t, fmt.Sprintf("output %d", i), download(t, be, of[i]), download(t, be, ou[i]), kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
	}
	return pu, ou
}

// TestFuseActThroughPermute: an activation after a DepthToSpace or a
// Transpose of a Conv's output is moved before it and absorbed by the
// Conv (a U-Net's Conv -> DepthToSpace -> Relu upsampling), with the same
// outputs; not when the permuted value has another reader.
func TestFuseActThroughPermute(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	b := newBuilder().input("x", 2, 4, 5, 6)
	b.init("w1", randVals(r, 16*4*9, -0.5, 0.5), 16, 4, 3, 3).init("b1", randVals(r, 16, -0.5, 0.5), 16)
	b.node("Conv", in("x", "w1", "b1"), in("c1"), map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	b.node("DepthToSpace", in("c1"), in("d1"), map[string]Attr{"blocksize": aInt(2)})
	b.node("Relu", in("d1"), in("r1"), nil) // moved and absorbed
	b.init("w2", randVals(r, 4*4, -0.5, 0.5), 4, 4, 1, 1)
	b.node("Conv", in("r1", "w2"), in("c2"), nil)
	b.node("Transpose", in("c2"), in("t2"), map[string]Attr{"perm": aInts(0, 2, 3, 1)})
	b.node("Sigmoid", in("t2"), in("s2"), nil) // moved and absorbed
	b.init("w3", randVals(r, 16*4, -0.5, 0.5), 16, 4, 1, 1)
	b.node("Conv", in("r1", "w3"), in("c3"), nil)
	b.node("DepthToSpace", in("c3"), in("d3"), map[string]Attr{"blocksize": aInt(2), "mode": aStr("CRD")})
	b.node("Relu", in("d3"), in("r3"), nil) // d3 is also an output: stays
	b.output("s2", "r3", "d3")
	shapes, err := InferShapes(b.g, nil)
	must(t, err)
	fused, n, err := FuseConvEpilogues(b.g, shapes, func(kernels.ActKind) bool { return true })
	must(t, err)
	if n != 2 {
		t.Fatalf("absorbed %d nodes (want 2: the Relu and the Sigmoid moved before their permutations)", n)
	}
	for _, nd := range fused.Nodes {
		if nd.Op == "DepthToSpace" && nd.Outputs[0] == "r1" && nd.Inputs[0] == "c1" {
			t.Fatalf("DepthToSpace reads the Conv's output directly: %v", nd.Inputs)
		}
	}
	x := hostTensor(randVals(r, 2*4*5*6, -1, 1), 2, 4, 5, 6)
	for _, threads := range []int{1, 2} {
		compareFused(t, b.g, newCPU(t, threads), x, 2)
	}
}

// TestFuseBatchNormRelu: a training program fuses BatchNormalization ->
// Relu (not when the BatchNormalization's output has another reader or is
// a graph output, nor a Relu after an Add) and gives the unfused
// program's outputs, gradients and running statistics to the bit, on 1
// and 2 threads, over two steps, with a Dropout after it.
func TestFuseBatchNormRelu(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const n = 4
	b := newBuilder().input("x", n, 3, 6, 6)
	bn := func(name, x, y string, c int) {
		b.init(name+"_s", randVals(r, c, 0.5, 1.5), c).init(name+"_b", randVals(r, c, -0.5, 0.5), c)
		b.init(name+"_m", make([]float32, c), c).init(name+"_v", ones(c), c)
		b.node("BatchNormalization", in(x, name+"_s", name+"_b", name+"_m", name+"_v"), in(y), nil)
	}
	b.init("w1", randVals(r, 4*3*9, -0.5, 0.5), 4, 3, 3, 3)
	b.node("Conv", in("x", "w1"), in("c1"), map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	bn("bn1", "c1", "n1", 4)
	b.node("Relu", in("n1"), in("r1"), nil) // fused
	b.init("w2", randVals(r, 4*4*9, -0.5, 0.5), 4, 4, 3, 3)
	b.node("Conv", in("r1", "w2"), in("c2"), map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	bn("bn2", "c2", "n2", 4)
	b.node("Add", in("n2", "r1"), in("s2"), nil)
	b.node("Relu", in("s2"), in("r2"), nil) // after an Add: stays
	bn("bn3", "r2", "n3", 4)
	b.node("Relu", in("n3"), in("r3"), nil)
	b.node("Sigmoid", in("n3"), in("g3"), nil) // n3 read twice: stays
	b.node("Mul", in("r3", "g3"), in("m3"), nil)
	bn("bn4", "m3", "n4", 4)
	b.node("Relu", in("n4"), in("r4"), nil) // n4 is an output: stays
	b.node("GlobalAveragePool", in("r4"), in("p0"), nil)
	// A Dropout after the fused node draws the same masks: fusing drops a
	// step before it, and its masks must not depend on step positions.
	b.node("Dropout", in("p0"), in("p"), map[string]Attr{"ratio": aFloat(0.5)})
	b.output("p", "n4")
	fused, k, err := FuseBatchNormRelu(b.g)
	must(t, err)
	if k != 1 || len(fused.Nodes) != len(b.g.Nodes)-1 {
		t.Fatalf("absorbed %d Relus (want 1: after bn1 only)", k)
	}
	x := hostTensor(randVals(r, n*3*36, -2, 2), n, 3, 6, 6)
	for _, threads := range []int{1, 2} {
		be := newCPU(t, threads)
		gf, gu := *b.g, *b.g // own initializer maps: SyncToGraph writes them
		gf.Initializers, gu.Initializers = maps.Clone(b.g.Initializers), maps.Clone(b.g.Initializers)
		pf := compile(t, &gf, be, Options{Training: true})
		pu := compile(t, &gu, be, Options{Training: true, NoFuse: true})
		if pf.Stats().Steps != pu.Stats().Steps-1 {
			t.Fatalf("steps fused %d, unfused %d (want 1 fewer)", pf.Stats().Steps, pu.Stats().Steps)
		}
		dp := hostTensor(randVals(r, n*4, -1, 1), n, 4, 1, 1)
		dn := hostTensor(randVals(r, n*4*36, -1, 1), n, 4, 6, 6)
		for step := range 2 {
			var outs [2][][]float32
			for i, p := range []*Program{pf, pu} {
				o, err := p.Run(x)
				must(t, err)
				for _, v := range o {
					outs[i] = append(outs[i], download(t, be, v))
				}
				must(t, p.Backward(dp, dn))
			}
			for i := range outs[0] {
				kernelstest.AssertClose(t, fmt.Sprintf("threads %d step %d output %d", threads, step, i), outs[0][i], outs[1][i], kernelstest.TolExact)
			}
			for i, prm := range pf.Params() {
				kernelstest.AssertClose(t, fmt.Sprintf("threads %d step %d grad %s", threads, step, prm.Name), download(t, be, prm.Grad), download(t, be, pu.Params()[i].Grad), kernelstest.TolExact)
			}
		}
		must(t, pf.SyncToGraph())
		must(t, pu.SyncToGraph())
		for _, name := range []string{"bn1_m", "bn1_v", "bn4_m", "bn4_v"} {
			if gf.Initializers[name] == b.g.Initializers[name] {
				t.Fatalf("%s: running statistic not synced", name)
			}
			kernelstest.AssertClose(t, fmt.Sprintf("threads %d running %s", threads, name), gf.Initializers[name].Float, gu.Initializers[name].Float, kernelstest.TolExact)
		}
	}
}
