package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// refBackend is the CPU backend with plain reference loops for the few
// element-wise kernels the graph's own logic tests need (same-shape binary
// ops only), so planner and autodiff bugs show up independently of the
// optimised kernels.
type refBackend struct{ *cpu.CPU }

func (refBackend) Activation(y, x *kernels.Tensor, a kernels.Act) error {
	for i, v := range x.Data {
		switch a.Kind {
		case kernels.ActTanh:
			y.Data[i] = float32(math.Tanh(float64(v)))
		case kernels.ActSigmoid:
			y.Data[i] = float32(1 / (1 + math.Exp(-float64(v))))
		default:
			return kernels.ErrUnsupported
		}
	}
	return nil
}

func (refBackend) ActivationBackward(dx, dy, x, y *kernels.Tensor, a kernels.Act) error {
	for i := range dx.Data {
		switch a.Kind {
		case kernels.ActTanh:
			dx.Data[i] = dy.Data[i] * (1 - y.Data[i]*y.Data[i])
		case kernels.ActSigmoid:
			dx.Data[i] = dy.Data[i] * y.Data[i] * (1 - y.Data[i])
		default:
			return kernels.ErrUnsupported
		}
	}
	return nil
}

func (refBackend) Binary(c, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	if a.Numel() != b.Numel() {
		return kernels.ErrUnsupported
	}
	for i := range c.Data {
		switch op {
		case kernels.OpAdd:
			c.Data[i] = a.Data[i] + b.Data[i]
		case kernels.OpMul:
			c.Data[i] = a.Data[i] * b.Data[i]
		default:
			return kernels.ErrUnsupported
		}
	}
	return nil
}

func (refBackend) BinaryBackward(da, db, dc, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	for i := range dc.Data {
		ga, gb := dc.Data[i], dc.Data[i]
		if op == kernels.OpMul {
			ga, gb = dc.Data[i]*b.Data[i], dc.Data[i]*a.Data[i]
		}
		if da != nil {
			da.Data[i] = ga
		}
		if db != nil {
			db.Data[i] = gb
		}
	}
	return nil
}

func (refBackend) Axpy(y *kernels.Tensor, alpha float32, x *kernels.Tensor) error {
	for i := range y.Data {
		y.Data[i] += alpha * x.Data[i]
	}
	return nil
}

func (refBackend) Scale(y *kernels.Tensor, alpha float32) error {
	for i := range y.Data {
		y.Data[i] *= alpha
	}
	return nil
}

// The planner and the autodiff on a graph that reuses values: x feeds two
// Gemms, h is read by Tanh, Mul (twice) and Add; the weight w1 is used by
// two Gemms. Gradients must match central differences; reuse must not
// change outputs; Run must not allocate.
func TestRefGraphLogic(t *testing.T) {
	c := newCPU(t, 1)
	be := refBackend{c}
	r := rand.New(rand.NewPCG(9, 9))
	const n = 5
	b := newBuilder().input("x", n, n)
	b.init("w1", randVals(r, n*n, -0.5, 0.5), n, n).init("w2", randVals(r, n*n, -0.5, 0.5), n, n)
	b.node("Gemm", in("x", "w1"), in("h"), nil)
	b.node("Tanh", in("h"), in("a"), nil)
	b.node("Mul", in("h", "h"), in("sq"), nil)
	b.node("Add", in("a", "sq"), in("s"), nil)
	b.node("Gemm", in("s", "w1"), in("h2"), map[string]Attr{"transB": aInt(1)})
	b.node("Gemm", in("x", "w2"), in("h3"), nil)
	b.node("Sigmoid", in("h3"), in("a3"), nil)
	b.node("Add", in("h2", "a3"), in("s2"), nil)
	b.node("Add", in("s2", "h"), in("y"), nil)
	b.initInt("shape", []int64{1, -1}, 2)
	b.node("Reshape", in("y", "shape"), in("yflat"), nil)
	b.node("Tanh", in("yflat"), in("out"), nil)
	b.output("out", "s")

	xv := randVals(r, n*n, -1, 1)
	pi := compile(t, b.g, be, Options{})
	st := pi.Stats()
	t.Logf("ref graph: planned %d bytes in %d buffers, naive %d", st.PlannedBytes, st.Buffers, st.NaiveBytes)
	if st.PlannedBytes >= st.NaiveBytes {
		t.Fatalf("no reuse: planned %d naive %d", st.PlannedBytes, st.NaiveBytes)
	}
	oi, err := pi.Run(hostTensor(xv, n, n))
	if err != nil {
		t.Fatal(err)
	}
	gotOut, gotS := download(t, be, oi[0]), download(t, be, oi[1])

	p := compile(t, b.g, be, Options{Training: true, InputGrads: true})
	x := kernelstest.Upload(t, be, xv, n, n)
	ot, err := p.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	kernelstest.AssertClose(t, "out: reuse vs training", gotOut, download(t, be, ot[0]), kernelstest.TolF32)
	kernelstest.AssertClose(t, "s: reuse vs training", gotS, download(t, be, ot[1]), kernelstest.TolF32)

	w0 := randVals(r, n*n, -1, 1)
	w1 := randVals(r, n*n, -1, 1)
	loss := func() float64 {
		o, err := p.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		return kernelstest.Dot(download(t, be, o[0]), w0) + kernelstest.Dot(download(t, be, o[1]), w1)
	}
	loss()
	if err := p.Backward(hostTensor(w0, 1, n*n), hostTensor(w1, n, n)); err != nil {
		t.Fatal(err)
	}
	for _, prm := range p.Params() {
		got := download(t, be, prm.Grad)
		want := kernelstest.NumericGrad(t, be, prm.Value, 1e-2, loss)
		kernelstest.AssertClose(t, "d/d"+prm.Name, got, want, kernelstest.TolGrad)
	}
	got := download(t, be, p.Grad("x"))
	want := kernelstest.NumericGrad(t, be, x, 1e-2, loss)
	kernelstest.AssertClose(t, "d/dx", got, want, kernelstest.TolGrad)

	// Only the first output's gradient (nil = zero for the second).
	loss0 := func() float64 {
		o, err := p.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		return kernelstest.Dot(download(t, be, o[0]), w0)
	}
	loss0()
	if err := p.Backward(hostTensor(w0, 1, n*n), nil); err != nil {
		t.Fatal(err)
	}
	got = download(t, be, p.Grad("w2"))
	want = kernelstest.NumericGrad(t, be, p.Params()[1].Value, 1e-2, loss0)
	kernelstest.AssertClose(t, "d/dw2 with a nil output gradient", got, want, kernelstest.TolGrad)

	runAllocs, kernelAllocs := runOverhead(t, pi, x)
	if runAllocs != kernelAllocs {
		t.Fatalf("Run allocates %v times, its kernels alone %v (want equal)", runAllocs, kernelAllocs)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := p.Backward(hostTensor(w0, 1, n*n), nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Backward allocs per call: %v", allocs)
}
