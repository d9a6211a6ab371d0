package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestConv2DFused checks the fused convolution against Conv2D, then a
// Binary add of the residual, then Activation, on every forward path
// (depthwise 3x3 and 5x5 with strides, pointwise over several column
// chunks, im2col for few channels, shifted GEMMs for many), with and
// without bias and residual, for each fused activation, on 1 and 2
// threads; NaN inputs must give NaN where the unfused ops do.
func TestConv2DFused(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		{kernels.Shape{2, 6, 17, 19}, kernels.Shape{6, 1, 5, 5}, kernels.ConvParams{Pads: [4]int{2, 2, 2, 2}, Group: 6}},
		{kernels.Shape{1, 8, 16, 16}, kernels.Shape{8, 1, 3, 3}, kernels.ConvParams{Pads: [4]int{0, 0, 1, 1}, Strides: [2]int{2, 2}, Group: 8}},
		{kernels.Shape{2, 3, 9, 10}, kernels.Shape{6, 1, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 3}}, // depthwise, multiplier 2
		{kernels.Shape{1, 64, 40, 40}, kernels.Shape{64, 64, 1, 1}, kernels.ConvParams{}},
		{kernels.Shape{2, 5, 9, 7}, kernels.Shape{7, 5, 1, 1}, kernels.ConvParams{}},
		{kernels.Shape{1, 3, 33, 31}, kernels.Shape{8, 3, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Strides: [2]int{2, 2}}},
		{kernels.Shape{1, 40, 30, 26}, kernels.Shape{12, 40, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{2, 48, 13, 11}, kernels.Shape{16, 24, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 0, 1, 2}, Strides: [2]int{2, 1}, Group: 2}},
		// Above convParallelFlops: split across threads.
		{kernels.Shape{1, 48, 40, 40}, kernels.Shape{16, 48, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{1, 64, 64, 64}, kernels.Shape{64, 1, 5, 5}, kernels.ConvParams{Pads: [4]int{2, 2, 2, 2}, Group: 64}},
		{kernels.Shape{1, 4, 96, 96}, kernels.Shape{32, 4, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
	}
	acts := []kernels.Act{
		{Kind: kernels.ActIdentity}, {Kind: kernels.ActRelu}, {Kind: kernels.ActLeakyRelu, Alpha: 0.1},
		{Kind: kernels.ActHardSigmoid, Alpha: 0.2, Beta: 0.5}, {Kind: kernels.ActHardSwish},
		{Kind: kernels.ActClip, Alpha: -0.5, Beta: 0.75}, {Kind: kernels.ActSigmoid},
	}
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for ci, tc := range cases {
			if threads == 2 {
				_, q, _ := conv2DPlan("test", &kernels.Tensor{Shape: tc.xs}, &kernels.Tensor{Shape: tc.ws}, tc.p)
				t.Logf("case %d: %.1f MFLOP, split across threads: %v", ci, q.flops()/1e6, q.flops() >= convParallelFlops)
			}
			ys, err := kernels.Conv2DOutShape(tc.xs, tc.ws, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			xd := kernelstest.Rand(r, tc.xs.Numel(), -1, 1)
			xd[r.IntN(len(xd))] = float32(math.NaN())
			x := kernels.FromSlice(xd, tc.xs...)
			w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
			b := kernels.FromSlice(kernelstest.Rand(r, tc.ws[0], -1, 1), tc.ws[0])
			res := kernels.FromSlice(kernelstest.Rand(r, ys.Numel(), -1, 1), ys...)
			for _, withB := range []bool{false, true} {
				for _, withRes := range []bool{false, true} {
					for _, a := range acts {
						bt, rt := b, res
						if !withB {
							bt = nil
						}
						if !withRes {
							rt = nil
						}
						name := fmt.Sprintf("threads=%d case %d x%v w%v bias=%v res=%v act=%d", threads, ci, tc.xs, tc.ws, withB, withRes, a.Kind)
						want := kernels.FromSlice(make([]float32, ys.Numel()), ys...)
						if err := c.Conv2D(want, x, w, bt, tc.p); err != nil {
							t.Fatal(err)
						}
						if rt != nil {
							if err := c.Binary(want, want, rt, kernels.OpAdd); err != nil {
								t.Fatal(err)
							}
						}
						if err := c.Activation(want, want, a); err != nil {
							t.Fatal(err)
						}
						got := kernels.FromSlice(make([]float32, ys.Numel()), ys...)
						if err := c.Conv2DFused(got, x, w, bt, rt, tc.p, a); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						kernelstest.AssertClose(t, name, got.Data, want.Data, kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
					}
				}
			}
		}
	}
}

// TestConv2DFusedErrors: unsupported activations, bad residual shapes and
// outputs sharing storage with an input are refused with errors.
func TestConv2DFusedErrors(t *testing.T) {
	c, err := New(Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := kernels.FromSlice(make([]float32, 2*4*4), 1, 2, 4, 4)
	w := kernels.FromSlice(make([]float32, 3*2), 3, 2, 1, 1)
	y := kernels.FromSlice(make([]float32, 3*4*4), 1, 3, 4, 4)
	p := kernels.ConvParams{}
	if err := c.Conv2DFused(y, x, w, nil, nil, p, kernels.Act{Kind: kernels.ActTanh}); err == nil {
		t.Error("tanh: no error")
	}
	bad := kernels.FromSlice(make([]float32, 2*4*4), 1, 2, 4, 4)
	if err := c.Conv2DFused(y, x, w, nil, bad, p, kernels.Act{}); err == nil {
		t.Error("residual of the wrong shape: no error")
	}
	if err := c.Conv2DFused(y, x, w, nil, y, p, kernels.Act{}); err == nil {
		t.Error("y == res: no error")
	}
}

// TestForwardAll: the forward of tiny grids over the whole batch
// (forwardAll) gives the per-image paths' result (shifted GEMMs for many
// channels, im2col for few, pointwise), with bias, residual and
// activation, for 3x3 convolutions with and without stride, a strided 1x1
// (a ResNet's downsample), a pointwise 1x1 and a grouped conv, on 1 and 2
// threads.
func TestForwardAll(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		xs, ws kernels.Shape
		p      kernels.ConvParams
	}{
		{kernels.Shape{5, 40, 2, 2}, kernels.Shape{24, 40, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}},
		{kernels.Shape{3, 36, 8, 8}, kernels.Shape{20, 36, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Strides: [2]int{2, 2}}},
		{kernels.Shape{4, 8, 7, 7}, kernels.Shape{16, 8, 1, 1}, kernels.ConvParams{Strides: [2]int{2, 2}}},
		{kernels.Shape{6, 12, 3, 3}, kernels.Shape{10, 12, 1, 1}, kernels.ConvParams{}},
		{kernels.Shape{2, 48, 4, 3}, kernels.Shape{16, 24, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}, Group: 2}},
	}
	relu := kernels.Act{Kind: kernels.ActRelu}
	defer func(v int) { fwdAllMaxP = v }(fwdAllMaxP)
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for ci, tc := range cases {
			_, q, err := conv2DPlan("test", &kernels.Tensor{Shape: tc.xs}, &kernels.Tensor{Shape: tc.ws}, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			fwdAllMaxP = 16
			if !q.forwardAllFits() {
				t.Fatalf("case %d: %d positions, forwardAll not taken", ci, q.p())
			}
			ys, _ := kernels.Conv2DOutShape(tc.xs, tc.ws, tc.p)
			x := kernels.FromSlice(kernelstest.Rand(r, tc.xs.Numel(), -1, 1), tc.xs...)
			w := kernels.FromSlice(kernelstest.Rand(r, tc.ws.Numel(), -1, 1), tc.ws...)
			b := kernels.FromSlice(kernelstest.Rand(r, tc.ws[0], -1, 1), tc.ws[0])
			res := kernels.FromSlice(kernelstest.Rand(r, ys.Numel(), -1, 1), ys...)
			run := func(maxP int) []float32 {
				fwdAllMaxP = maxP
				y := kernels.FromSlice(make([]float32, ys.Numel()), ys...)
				if err := c.Conv2DFused(y, x, w, b, res, tc.p, relu); err != nil {
					t.Fatal(err)
				}
				return y.Data
			}
			kernelstest.AssertClose(t, fmt.Sprintf("threads=%d case %d x%v w%v", threads, ci, tc.xs, tc.ws), run(16), run(0), kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
		}
	}
}
