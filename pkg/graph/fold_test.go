package graph

import (
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels/kernelstest"
)

func TestFoldConvBatchNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	b := newBuilder().input("x", 2, 3, 8, 8)
	convNode(b, r, "x", "c", 3, 5, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	b.init("n_s", randVals(r, 5, 0.5, 1.5), 5).init("n_bb", randVals(r, 5, -0.5, 0.5), 5)
	b.init("n_m", randVals(r, 5, -0.5, 0.5), 5).init("n_v", randVals(r, 5, 0.2, 2), 5)
	b.node("BatchNormalization", in("c", "n_s", "n_bb", "n_m", "n_v"), in("n"), map[string]Attr{"epsilon": aFloat(1e-3)})
	b.node("Relu", in("n"), in("a"), nil)
	// A second conv without bias whose output also feeds a graph output:
	// its BN must not be folded.
	b.init("c2_w", randVals(r, 5*5, -0.5, 0.5), 5, 5, 1, 1)
	b.node("Conv", in("a", "c2_w"), in("c2"), nil)
	b.init("m_s", randVals(r, 5, 0.5, 1.5), 5).init("m_bb", randVals(r, 5, -0.5, 0.5), 5)
	b.init("m_m", randVals(r, 5, -0.5, 0.5), 5).init("m_v", randVals(r, 5, 0.2, 2), 5)
	b.node("BatchNormalization", in("c2", "m_s", "m_bb", "m_m", "m_v"), in("y"), nil)
	b.output("y", "c2")
	folded, err := FoldConvBatchNorm(b.g)
	if err != nil {
		must(t, err)
	}
	if len(folded.Nodes) != len(b.g.Nodes)-1 || len(b.g.Nodes) != 5 {
		t.Fatalf("folded graph has %d nodes, original %d (want 4 and 5)", len(folded.Nodes), len(b.g.Nodes))
	}
	if _, ok := b.g.Initializers["c_w_bnfold"]; ok {
		t.Fatal("FoldConvBatchNorm changed the original graph")
	}
	be := newCPU(t, 1)
	// NoFuse: the folded Conv's Relu would fuse too (FuseConvEpilogues).
	pf := compile(t, b.g, be, Options{NoFuse: true})
	pu := compile(t, b.g, be, Options{NoFold: true, NoFuse: true})
	if pf.Stats().Steps != pu.Stats().Steps-1 {
		t.Fatalf("steps folded %d, unfolded %d (want one fewer)", pf.Stats().Steps, pu.Stats().Steps)
	}
	x := hostTensor(randVals(r, 2*3*64, -1, 1), 2, 3, 8, 8)
	of, err := pf.Run(x)
	if err != nil {
		must(t, err)
	}
	ou, err := pu.Run(x)
	if err != nil {
		must(t, err)
	}
	tol := kernelstest.Tol{Abs: 1e-4, Rel: 1e-4}
	kernelstest.AssertClose(t, "y folded vs unfolded", download(t, be, of[0]), download(t, be, ou[0]), tol)
	kernelstest.AssertClose(t, "c2 folded vs unfolded", download(t, be, of[1]), download(t, be, ou[1]), tol)
	t.Logf("folded: %d steps, %d bytes planned; unfolded: %d steps, %d bytes", pf.Stats().Steps, pf.Stats().PlannedBytes, pu.Stats().Steps, pu.Stats().PlannedBytes)
}

// TestFoldConvTransposeBatchNorm: a BatchNormalization after a one-group
// ConvTranspose (weights (C,M,kH,kW): output channel m is w[:, m]) folds
// into it and computes what the unfolded graph does; after a two-group
// one it stays.
func TestFoldConvTransposeBatchNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	b := newBuilder().input("x", 2, 4, 5, 6)
	bn := func(x, y, p string, m int) {
		b.init(p+"_s", randVals(r, m, 0.5, 1.5), m).init(p+"_bb", randVals(r, m, -0.5, 0.5), m)
		b.init(p+"_m", randVals(r, m, -0.5, 0.5), m).init(p+"_v", randVals(r, m, 0.2, 2), m)
		b.node("BatchNormalization", in(x, p+"_s", p+"_bb", p+"_m", p+"_v"), in(y), map[string]Attr{"epsilon": aFloat(1e-3)})
	}
	b.init("t_w", randVals(r, 4*3*2*2, -0.5, 0.5), 4, 3, 2, 2).init("t_b", randVals(r, 3, -0.5, 0.5), 3)
	b.node("ConvTranspose", in("x", "t_w", "t_b"), in("t"), map[string]Attr{"strides": aInts(2, 2)})
	bn("t", "n", "n", 3)
	b.init("u_w", randVals(r, 4*2*3*3, -0.5, 0.5), 4, 2, 3, 3)
	b.node("ConvTranspose", in("x", "u_w"), in("u"), map[string]Attr{"strides": aInts(2, 1), "pads": aInts(1, 0, 1, 1), "group": aInt(1)})
	bn("u", "v", "m", 2)
	b.init("g_w", randVals(r, 4*2*3*3, -0.5, 0.5), 4, 2, 3, 3)
	b.node("ConvTranspose", in("x", "g_w"), in("gt"), map[string]Attr{"group": aInt(2)})
	bn("gt", "gn", "g", 4)
	b.output("n", "v", "gn")
	folded, err := FoldConvBatchNorm(b.g)
	if err != nil {
		must(t, err)
	}
	if len(folded.Nodes) != len(b.g.Nodes)-2 {
		t.Fatalf("folded graph has %d nodes, original %d (want 2 fewer: the two-group one stays)", len(folded.Nodes), len(b.g.Nodes))
	}
	be := newCPU(t, 1)
	pf := compile(t, b.g, be, Options{NoFuse: true})
	pu := compile(t, b.g, be, Options{NoFold: true, NoFuse: true})
	x := hostTensor(randVals(r, 2*4*30, -1, 1), 2, 4, 5, 6)
	of, err := pf.Run(x)
	if err != nil {
		must(t, err)
	}
	ou, err := pu.Run(x)
	if err != nil {
		must(t, err)
	}
	tol := kernelstest.Tol{Abs: 1e-4, Rel: 1e-4}
	for i, name := range []string{"n", "v", "gn"} {
		kernelstest.AssertClose(t, name+" folded vs unfolded", download(t, be, of[i]), download(t, be, ou[i]), tol)
	}
}
