package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// Gemm with a bias, then Relu: numbers by hand.
//
//	x = [[1 2 3] [-1 0 1]], w (transB) = [[1 0 1] [0 -1 0]], c = [0.5 -1]
//	x w^T = [[4 -2] [0 0]]; + c = [[4.5 -3] [0.5 -1]]; relu = [[4.5 0] [0.5 0]]
func TestRunGemmRelu(t *testing.T) {
	b := newBuilder().input("x", 2, 3)
	b.init("w", []float32{1, 0, 1, 0, -1, 0}, 2, 3).init("c", []float32{0.5, -1}, 2)
	b.node("Gemm", in("x", "w", "c"), in("h"), map[string]Attr{"transB": aInt(1)})
	b.node("Relu", in("h"), in("y"), nil)
	b.output("y", "h")
	be := newCPU(t, 1)
	p := compile(t, b.g, be, Options{})
	outs, err := p.Run(hostTensor([]float32{1, 2, 3, -1, 0, 1}, 2, 3))
	if err != nil {
		must(t, err)
	}
	kernelstest.AssertClose(t, "y", download(t, be, outs[0]), []float32{4.5, 0, 0.5, 0}, kernelstest.TolF32)
	kernelstest.AssertClose(t, "h", download(t, be, outs[1]), []float32{4.5, -3, 0.5, -1}, kernelstest.TolF32)
	// Wrong input shape: an error, not a panic.
	if _, err := p.Run(hostTensor(make([]float32, 6), 3, 2)); !errors.Is(err, kernels.ErrShape) {
		t.Fatalf("run with a (3,2) input: err = %v (want ErrShape)", err)
	}
	if _, err := p.Run(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("run without inputs: err = %v (want ErrInvalid)", err)
	}
}

// A 1x1 convolution with bias, an Add of the input (a skip), a max pool.
//
//	x (1,1,2,2) = [1 -2; 3 4], w = 2, b = 1: conv = [3 -3; 7 9]; + x = [4 -5; 10 13]
//	maxpool 2x2 = 13; global average of the sum = 22/4 = 5.5
func TestRunConvSkipPool(t *testing.T) {
	b := newBuilder().input("x", 1, 1, 2, 2)
	b.init("w", []float32{2}, 1, 1, 1, 1).init("b", []float32{1}, 1)
	b.node("Conv", in("x", "w", "b"), in("c"), nil)
	b.node("Add", in("c", "x"), in("s"), nil)
	b.node("MaxPool", in("s"), in("m"), map[string]Attr{"kernel_shape": aInts(2, 2)})
	b.node("GlobalAveragePool", in("s"), in("g"), nil)
	b.node("Flatten", in("g"), in("gf"), nil)
	b.output("m", "gf", "s")
	be := newCPU(t, 1)
	p := compile(t, b.g, be, Options{})
	outs, err := p.Run(hostTensor([]float32{1, -2, 3, 4}, 1, 1, 2, 2))
	if err != nil {
		must(t, err)
	}
	kernelstest.AssertClose(t, "m", download(t, be, outs[0]), []float32{13}, kernelstest.TolF32)
	kernelstest.AssertClose(t, "gf", download(t, be, outs[1]), []float32{5.5}, kernelstest.TolF32)
	kernelstest.AssertClose(t, "s", download(t, be, outs[2]), []float32{4, -5, 10, 13}, kernelstest.TolF32)
	if !outs[1].Shape.Equal(kernels.Shape{1, 1}) {
		t.Fatalf("gf shape %v (want (1,1))", outs[1].Shape)
	}
}

// Concat, Split, Softmax, Transpose, Slice: hand-checked.
func TestRunLayout(t *testing.T) {
	b := newBuilder().input("x", 2, 2).init("z", []float32{5, 6}, 2, 1)
	b.initInt("st", []int64{1}, 1).initInt("en", []int64{3}, 1).initInt("ax", []int64{1}, 1)
	b.node("Concat", in("x", "z"), in("c"), map[string]Attr{"axis": aInt(1)}) // [[1 2 5] [3 4 6]]
	b.node("Transpose", in("c"), in("ct"), nil)                               // [[1 3] [2 4] [5 6]]
	b.node("Slice", in("c", "st", "en", "ax"), in("sl"), nil)                 // [[2 5] [4 6]]
	b.node("Split", in("c"), in("s0", "s1"), map[string]Attr{"axis": aInt(0)})
	b.node("Sub", in("s1", "s0"), in("d"), nil) // [2 2 1]
	b.node("Softmax", in("d"), in("sm"), nil)
	b.output("ct", "sl", "sm")
	be := newCPU(t, 1)
	p := compile(t, b.g, be, Options{})
	outs, err := p.Run(hostTensor([]float32{1, 2, 3, 4}, 2, 2))
	if err != nil {
		must(t, err)
	}
	kernelstest.AssertClose(t, "ct", download(t, be, outs[0]), []float32{1, 3, 2, 4, 5, 6}, kernelstest.TolF32)
	kernelstest.AssertClose(t, "sl", download(t, be, outs[1]), []float32{2, 5, 4, 6}, kernelstest.TolF32)
	// softmax([2 2 1]) = e/(2e+1) twice, 1/(2e+1)
	e := float32(2.718281828)
	kernelstest.AssertClose(t, "sm", download(t, be, outs[2]), []float32{e / (2*e + 1), e / (2*e + 1), 1 / (2*e + 1)}, kernelstest.TolF32)
}

// gemmChain is x -> (Gemm -> Tanh) x depth: every intermediate is (n, n).
func gemmChain(r *rand.Rand, n, depth int) *Graph {
	b := newBuilder().input("x", n, n)
	prev := "x"
	for i := 0; i < depth; i++ {
		w := fmt.Sprintf("w%d", i)
		b.init(w, randVals(r, n*n, -0.3, 0.3), n, n)
		h, a := fmt.Sprintf("h%d", i), fmt.Sprintf("a%d", i)
		b.node("Gemm", in(prev, w), in(h), nil)
		b.node("Tanh", in(h), in(a), nil)
		prev = a
	}
	b.output(prev)
	return b.g
}

func TestBufferReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := gemmChain(r, 16, 8)
	be := newCPU(t, 1)
	p := compile(t, g, be, Options{})
	st := p.Stats()
	t.Logf("gemm chain depth 8: planned %d bytes in %d buffers, naive %d bytes", st.PlannedBytes, st.Buffers, st.NaiveBytes)
	// 16 values of 16x16 floats naively; Tanh runs in place and Gemm
	// ping-pongs between two buffers.
	if st.NaiveBytes != 16*16*16*4 || st.PlannedBytes != 2*16*16*4 {
		t.Fatalf("planned %d, naive %d bytes (want %d and %d)", st.PlannedBytes, st.NaiveBytes, 2*16*16*4, 16*16*16*4)
	}
	// Reuse must not change the result: compare with a training-mode
	// program (no reuse) on the same input.
	pt := compile(t, g, be, Options{Training: true})
	if pt.Stats().PlannedBytes != pt.Stats().NaiveBytes {
		t.Fatalf("training program reuses buffers: planned %d naive %d", pt.Stats().PlannedBytes, pt.Stats().NaiveBytes)
	}
	x := hostTensor(randVals(r, 16*16, -1, 1), 16, 16)
	o1, err := p.Run(x)
	if err != nil {
		must(t, err)
	}
	o2, err := pt.Run(x)
	if err != nil {
		must(t, err)
	}
	kernelstest.AssertClose(t, "reuse vs none", download(t, be, o1[0]), download(t, be, o2[0]), kernelstest.TolF32)
}

func TestRunAllocs(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			g := gemmChain(r, 64, 4)
			be := newCPU(t, threads)
			p := compile(t, g, be, Options{})
			x := hostTensor(randVals(r, 64*64, -1, 1), 64, 64)
			if _, err := p.Run(x); err != nil {
				must(t, err)
			}
			runAllocs, kernelAllocs := runOverhead(t, p, x)
			t.Logf("AllocsPerRun (gemm chain, 8 kernels, threads=%d): Run %v, the kernels alone %v", threads, runAllocs, kernelAllocs)
			if runAllocs != 0 || kernelAllocs != 0 {
				t.Fatalf("Run allocates %v times, its kernels alone %v (want 0: steady-state inference allocates nothing)", runAllocs, kernelAllocs)
			}
		})
	}
}

// runOverhead measures allocations of a steady-state Run and of calling the
// same kernels directly: the difference is the executor's own cost.
func runOverhead(t *testing.T, p *Program, x *kernels.Tensor) (run, kernelsOnly float64) {
	t.Helper()
	if _, err := p.Run(x); err != nil {
		must(t, err)
	}
	run = testing.AllocsPerRun(20, func() {
		if _, err := p.Run(x); err != nil {
			must(t, err)
		}
	})
	kernelsOnly = testing.AllocsPerRun(20, func() {
		for _, s := range p.steps {
			if s.fwd != nil {
				if err := s.fwd(); err != nil {
					must(t, err)
				}
			}
		}
	})
	return run, kernelsOnly
}
