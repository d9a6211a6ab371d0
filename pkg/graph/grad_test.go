package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels/kernelstest"
)

// gradCheck compiles g for training, projects its single output onto a
// random direction w (loss = sum(out*w), so dLoss/dout = w), runs Backward
// and compares every parameter's and the input's gradient with central
// differences of the same loss.
func gradCheck(t *testing.T, g *Graph, xShape []int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	be := newCPU(t, 1)
	p := compile(t, g, be, Options{Training: true, InputGrads: true})
	xv := randVals(r, numel(xShape), -1, 1)
	x := hostTensor(xv, xShape...)
	outs, err := p.Run(x)
	if err != nil {
		must(t, err)
	}
	w := randVals(r, outs[0].Numel(), -1, 1)
	wt := hostTensor(w, outs[0].Shape...)
	loss := func() float64 {
		o, err := p.Run(x)
		if err != nil {
			must(t, err)
		}
		return kernelstest.Dot(download(t, be, o[0]), w)
	}
	loss()
	if err := p.Backward(wt); err != nil {
		must(t, err)
	}
	// Backward twice must give the same (overwritten, not accumulated
	// across calls) gradients.
	if err := p.Backward(wt); err != nil {
		must(t, err)
	}
	// A small step: with BatchNorm in training mode a weight moves every
	// pre-activation of its channel, and at 1e-2 several of them cross a
	// Relu or MaxPool kink (the finite difference, not the gradient, is
	// then wrong); 1e-3 keeps float32 rounding well under TolGrad.
	const eps = 1e-3
	if len(p.Params()) == 0 {
		t.Fatal("no parameters")
	}
	for _, prm := range p.Params() {
		got := download(t, be, prm.Grad)
		want := kernelstest.NumericGrad(t, be, prm.Value, eps, loss)
		assertGrad(t, "d/d"+prm.Name, got, want)
	}
	gx := p.Grad(g.Inputs[0].Name)
	if gx == nil {
		t.Fatal("no input gradient")
	}
	got := download(t, be, gx)
	xs := kernelstest.Upload(t, be, xv, xShape...)
	x = xs
	want := kernelstest.NumericGrad(t, be, xs, eps, loss)
	assertGrad(t, "d/dx", got, want)
}

// assertGrad allows a few elements near a kink (Relu, MaxPool ties) to
// differ; everything else must match to TolGrad.
func assertGrad(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values (want %d)", name, len(got), len(want))
	}
	bad := 0
	first := -1
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > kernelstest.TolGrad.Abs+kernelstest.TolGrad.Rel*math.Abs(float64(want[i])) {
			bad++
			if first < 0 {
				first = i
			}
		}
	}
	if bad > len(got)/50 {
		t.Fatalf("%s: %d of %d elements differ; first %d: got %v want %v", name, bad, len(got), first, got[first], want[first])
	}
}

func convNode(b *builder, r *rand.Rand, x, y string, cin, cout, k int, attrs map[string]Attr) {
	wn, bn := y+"_w", y+"_b"
	b.init(wn, randVals(r, cout*cin*k*k, -0.5, 0.5), cout, cin, k, k)
	b.init(bn, randVals(r, cout, -0.2, 0.2), cout)
	b.node("Conv", in(x, wn, bn), in(y), attrs)
}

func bnNode(b *builder, r *rand.Rand, x, y string, c int) {
	b.init(y+"_s", randVals(r, c, 0.5, 1.5), c).init(y+"_bb", randVals(r, c, -0.5, 0.5), c)
	b.init(y+"_m", make([]float32, c), c).init(y+"_v", ones(c), c)
	b.node("BatchNormalization", in(x, y+"_s", y+"_bb", y+"_m", y+"_v"), in(y), nil)
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func TestGradConvBNReluPoolGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	b := newBuilder().input("x", 2, 2, 6, 6)
	convNode(b, r, "x", "c", 2, 3, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	bnNode(b, r, "c", "n", 3)
	b.node("Relu", in("n"), in("a"), nil)
	b.node("MaxPool", in("a"), in("p"), map[string]Attr{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)})
	b.node("Flatten", in("p"), in("f"), nil)
	b.init("fw", randVals(r, 4*27, -0.3, 0.3), 4, 27).init("fb", randVals(r, 4, -0.1, 0.1), 4)
	b.node("Gemm", in("f", "fw", "fb"), in("y"), map[string]Attr{"transB": aInt(1)})
	b.output("y")
	gradCheck(t, b.g, []int{2, 2, 6, 6}, 1)
}

// A value used twice (the skip) and a value multiplied by itself: the
// gradient contributions must add up.
func TestGradSkipAndReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	b := newBuilder().input("x", 1, 2, 4, 4)
	convNode(b, r, "x", "c", 2, 2, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	b.node("Sigmoid", in("c"), in("a"), nil)
	b.node("Add", in("a", "x"), in("s"), nil)   // x used by the conv and the skip
	b.node("Mul", in("s", "s"), in("sq"), nil)  // s used twice by one node
	b.node("Add", in("sq", "c"), in("y0"), nil) // c used by Sigmoid and here
	b.init("scale", randVals(r, 2, 0.5, 1.5), 1, 2, 1, 1)
	b.node("Mul", in("y0", "scale"), in("y"), nil) // broadcast parameter
	b.output("y")
	gradCheck(t, b.g, []int{1, 2, 4, 4}, 2)
}

func TestGradConcatBranches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	b := newBuilder().input("x", 2, 2, 5, 5)
	convNode(b, r, "x", "b1", 2, 3, 3, map[string]Attr{"pads": aInts(1, 1, 1, 1)})
	convNode(b, r, "x", "b2", 2, 2, 1, nil)
	b.node("Tanh", in("b2"), in("b2a"), nil)
	b.node("Concat", in("b1", "b2a", "x"), in("cat"), map[string]Attr{"axis": aInt(1)})
	convNode(b, r, "cat", "y0", 7, 2, 3, map[string]Attr{"strides": aInts(2, 2)})
	b.node("GlobalAveragePool", in("y0"), in("y"), nil)
	b.output("y")
	gradCheck(t, b.g, []int{2, 2, 5, 5}, 3)
}

func TestGradResizeDepthToSpace(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	b := newBuilder().input("x", 1, 4, 3, 3)
	convNode(b, r, "x", "c", 4, 8, 1, nil)
	b.node("DepthToSpace", in("c"), in("d"), map[string]Attr{"blocksize": aInt(2)}) // (1,2,6,6)
	b.init("sc", []float32{1, 1, 2, 2}, 4)
	b.node("Resize", in("x", "", "sc"), in("u"), map[string]Attr{"mode": aStr("linear")}) // (1,4,6,6)
	b.node("Resize", in("d", "", "sc"), in("un"), map[string]Attr{"mode": aStr("nearest")})
	convNode(b, r, "u", "uc", 4, 2, 1, nil)
	b.node("Add", in("uc", "d"), in("s"), nil)
	b.node("ReduceMean", in("un"), in("m"), map[string]Attr{"axes": aInts(2, 3)})
	b.node("Mul", in("s", "m"), in("y"), nil)
	b.output("y")
	gradCheck(t, b.g, []int{1, 4, 3, 3}, 4)
}

// Layout and linear ops: Split, Slice, Pad, Transpose, MatMul, Softmax,
// Reshape, Gather on a float tensor, LeakyRelu, ConvTranspose, AveragePool.
func TestGradLayoutLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	b := newBuilder().input("x", 2, 3, 4, 4)
	b.init("tw", randVals(r, 3*2*2*2, -0.5, 0.5), 3, 2, 2, 2)
	b.node("ConvTranspose", in("x", "tw"), in("ct"), map[string]Attr{"strides": aInts(2, 2)}) // (2,2,8,8)
	b.node("AveragePool", in("ct"), in("ap"), map[string]Attr{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)})
	b.node("Split", in("x"), in("s0", "s1"), map[string]Attr{"axis": aInt(1), "split": aInts(1, 2)})
	b.initInt("st", []int64{1}, 1).initInt("en", []int64{4}, 1).initInt("ax", []int64{3}, 1)
	b.node("Slice", in("s1", "st", "en", "ax"), in("sl"), nil) // (2,2,4,3)
	b.initInt("pd", []int64{0, 0, 0, 1, 0, 0, 0, 0}, 8)
	b.node("Pad", in("sl", "pd"), in("pa"), nil) // (2,2,4,4)
	b.node("Add", in("pa", "ap"), in("z"), nil)
	b.node("Transpose", in("z"), in("zt"), map[string]Attr{"perm": aInts(0, 1, 3, 2)})
	b.init("mw", randVals(r, 4*5, -0.5, 0.5), 4, 5)
	b.node("MatMul", in("zt", "mw"), in("mm"), nil) // (2,2,4,5)
	b.node("LeakyRelu", in("mm"), in("lr"), map[string]Attr{"alpha": aFloat(0.1)})
	b.node("Softmax", in("lr"), in("sm"), nil)
	b.initInt("gi", []int64{2})
	b.node("Gather", in("sm", "gi"), in("g"), map[string]Attr{"axis": aInt(2)}) // (2,2,5)
	b.initInt("rs", []int64{2, 1, 2, 5}, 4)
	b.node("Reshape", in("g", "rs"), in("gr"), nil)
	b.node("ReduceSum", in("s0"), in("s0r"), map[string]Attr{"axes": aInts(2, 3)}) // (2,1,1,1)
	b.node("Mul", in("gr", "s0r"), in("y"), nil)                                   // (2,1,2,5)
	b.output("y")
	gradCheck(t, b.g, []int{2, 3, 4, 4}, 5)
}
