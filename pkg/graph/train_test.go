package graph

import (
	"math/rand/v2"
	"strings"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

func tinyConvNet(r *rand.Rand, batch int) *Graph {
	b := newBuilder()
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: "x", DType: Float32, Shape: []int{-1, 1, 6, 6}})
	convNode(b, r, "x", "c1", 1, 4, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	bnNode(b, r, "c1", "n1", 4)
	b.node("Relu", in("n1"), in("a1"), nil)
	convNode(b, r, "a1", "c2", 4, 6, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1), "strides": aInts(2, 2)})
	b.node("Relu", in("c2"), in("a2"), nil)
	b.node("GlobalAveragePool", in("a2"), in("p"), nil)
	b.node("Flatten", in("p"), in("f"), nil)
	b.init("fw", randVals(r, 3*6, -0.5, 0.5), 3, 6).init("fb", make([]float32, 3), 3)
	b.node("Gemm", in("f", "fw", "fb"), in("logits"), map[string]Attr{"transB": aInt(1)})
	b.output("logits")
	return b.g
}

// A tiny conv net overfits a fixed batch with plain SGD.
func TestTrainOverfit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const batch = 6
	g := tinyConvNet(r, batch)
	be := newCPU(t, 2)
	p := compile(t, g, be, Options{Training: true, InputShapes: map[string][]int{"x": {batch, 1, 6, 6}}})
	x := kernelstest.Upload(t, be, randVals(r, batch*36, -1, 1), batch, 1, 6, 6)
	target := kernelstest.Upload(t, be, []float32{0, 1, 2, 1, 0, 2}, batch)
	loss, _ := be.Alloc(kernels.Shape{1})
	dlogits, _ := be.Alloc(kernels.Shape{batch, 3})
	vel := map[string]*kernels.Tensor{}
	for _, prm := range p.Params() {
		v, err := be.Alloc(prm.Value.Shape)
		if err != nil {
			must(t, err)
		}
		vel[prm.Name] = v
	}
	// Two convs (w, b), BN (scale, bias), fc (w, b); not the running stats.
	if got := len(p.Params()); got != 8 {
		t.Fatalf("%d params (want 8)", got)
	}
	var first, last float32
	for it := 0; it < 300; it++ {
		outs, err := p.Run(x)
		if err != nil {
			must(t, err)
		}
		if err := be.CrossEntropy(loss, outs[0], target, nil, -1); err != nil {
			must(t, err)
		}
		last = download(t, be, loss)[0]
		if it == 0 {
			first = last
		}
		if err := be.CrossEntropyBackward(dlogits, outs[0], target, nil, -1, 1); err != nil {
			must(t, err)
		}
		if err := p.Backward(dlogits); err != nil {
			must(t, err)
		}
		for _, prm := range p.Params() {
			if err := be.SGDStep(prm.Value, prm.Grad, vel[prm.Name], kernels.SGDParams{LR: 0.1, Momentum: 0.9}); err != nil {
				must(t, err)
			}
		}
	}
	t.Logf("cross-entropy: first %.4f, after 300 SGD steps %.5f", first, last)
	if first < 0.5 || last > 0.05 {
		t.Fatalf("loss %.4f -> %.4f (want from > 0.5 to < 0.05)", first, last)
	}
	// The running statistics moved (momentum 0.9) and sync back.
	oldMean := g.Initializers["n1_m"]
	if err := p.SyncToGraph(); err != nil {
		must(t, err)
	}
	if g.Initializers["n1_m"] == oldMean || allZero(g.Initializers["n1_m"].Float) {
		t.Fatal("running mean not updated/synced")
	}
	if g.Initializers["fw"].Float[0] == 0 {
		t.Fatal("weights not synced")
	}
	// The synced graph, compiled for inference (BN folded), classifies the
	// batch as training did.
	pi := compile(t, g, be, Options{InputShapes: map[string][]int{"x": {batch, 1, 6, 6}}})
	outs, err := pi.Run(x)
	if err != nil {
		must(t, err)
	}
	if err := be.CrossEntropy(loss, outs[0], target, nil, -1); err != nil {
		must(t, err)
	}
	t.Logf("inference-mode loss with running statistics: %.4f", download(t, be, loss)[0])
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// Dropout draws a new mask per Run in training and is the identity in
// inference.
func TestDropoutModes(t *testing.T) {
	b := newBuilder().input("x", 1, 1000)
	b.node("Dropout", in("x"), in("y"), map[string]Attr{"ratio": aFloat(0.5)})
	b.output("y")
	be := newCPU(t, 1)
	x := hostTensor(ones(1000), 1, 1000)
	pi := compile(t, b.g, be, Options{})
	o, err := pi.Run(x)
	if err != nil {
		must(t, err)
	}
	kernelstest.AssertClose(t, "inference dropout", download(t, be, o[0]), ones(1000), kernelstest.TolExact)
	pt := compile(t, b.g, be, Options{Training: true})
	o, err = pt.Run(x)
	if err != nil {
		must(t, err)
	}
	m1 := download(t, be, o[0])
	o, err = pt.Run(x)
	if err != nil {
		must(t, err)
	}
	m2 := download(t, be, o[0])
	zeros, diff := 0, 0
	for i := range m1 {
		if m1[i] == 0 {
			zeros++
		} else if m1[i] != 2 {
			t.Fatalf("kept value %v (want 2 = 1/(1-0.5))", m1[i])
		}
		if m1[i] != m2[i] {
			diff++
		}
	}
	if zeros < 400 || zeros > 600 || diff < 300 {
		t.Fatalf("%d zeros of 1000, %d changed between runs (want ~500 and ~500)", zeros, diff)
	}
}

// BackwardProfiled writes the gradients Backward writes, bit for bit, and
// times one entry per node that needed a backward, in reverse order,
// saying which nodes computed their input's gradient: the first conv (on
// the graph's input) only its weight gradient, the second also its data
// gradient.
func TestBackwardProfiled(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const batch = 4
	g := tinyConvNet(r, batch)
	be := newCPU(t, 2)
	p := compile(t, g, be, Options{Training: true, InputShapes: map[string][]int{"x": {batch, 1, 6, 6}}})
	x := kernelstest.Upload(t, be, randVals(r, batch*36, -1, 1), batch, 1, 6, 6)
	dy := kernelstest.Upload(t, be, randVals(r, batch*3, -1, 1), batch, 3)
	grads := func(profiled bool) ([][]float32, []StepTime) {
		if _, err := p.Run(x); err != nil {
			must(t, err)
		}
		var st []StepTime
		var err error
		if profiled {
			st, err = p.BackwardProfiled(dy)
		} else {
			err = p.Backward(dy)
		}
		if err != nil {
			must(t, err)
		}
		var gs [][]float32
		for _, prm := range p.Params() {
			gs = append(gs, download(t, be, prm.Grad))
		}
		return gs, st
	}
	want, _ := grads(false)
	got, steps := grads(true)
	for i := range want {
		kernelstest.AssertClose(t, p.Params()[i].Name, got[i], want[i], kernelstest.TolExact)
	}
	var ops []string
	conv := map[string]bool{}
	for _, s := range steps {
		if !s.Backward || s.Time < 0 || s.CPU < 0 {
			t.Errorf("%s %s: backward %v time %v cpu %v", s.Node, s.Op, s.Backward, s.Time, s.CPU)
		}
		ops = append(ops, s.Op)
		if s.Op == "Conv" {
			conv[s.Node] = s.InputGrad
		}
	}
	// Flatten is a view; the Relu after BatchNormalization is fused into it.
	if w := "Gemm GlobalAveragePool Relu Conv BatchNormalization Conv"; strings.Join(ops, " ") != w {
		t.Errorf("backward steps %v, want %s", ops, w)
	}
	if len(conv) != 2 || conv[steps[len(steps)-1].Node] || !conv[steps[3].Node] {
		t.Errorf("conv input gradients %v: want the first conv without, the second with", conv)
	}
}
