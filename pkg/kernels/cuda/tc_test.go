//go:build cuda

package cuda

import (
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// Tolerances of the tensor-core math modes against the FP32 mode of the
// same backend: the largest |tc - fp32| over the largest |fp32| of the
// output. Each operand is rounded once (relative 2^-11 for fp16, 2^-8
// for bf16) and the products are summed in FP32, so the error of a
// K-term dot product of random operands is about sqrt(K) * u * |a||b|
// against an output scale of a few sqrt(K) * |a||b|: a few u. 1e-2 and
// 2e-2 leave room over that and still catch a wrong tile, index or
// epilogue (those move outputs by O(1) of scale).
var tcRelTol = map[string]float64{kernels.MathFP16: 1e-2, kernels.MathBF16: 2e-2}

// tcCompare runs op in FP32 mode and in each tensor-core mode and checks
// every output within tcRelTol; op returns its outputs on the host. It
// also requires that some case differ from FP32 at all (proof that the
// tensor-core kernel ran), reported through differed.
func tcCompare(t *testing.T, b *Backend, name string, op func() [][]float32, differed map[string]bool) {
	t.Helper()
	if err := b.SetMath(kernels.MathFP32); err != nil {
		t.Fatal(err)
	}
	want := op()
	for _, mode := range []string{kernels.MathFP16, kernels.MathBF16} {
		if err := b.SetMath(mode); err != nil {
			t.Fatal(err)
		}
		got := op()
		for i := range want {
			rel := kernelstest.RelToScale(got[i], want[i], 1e-30)
			if rel > 0 {
				differed[mode] = true
			}
			if !(rel <= tcRelTol[mode]) {
				t.Errorf("%s %s output %d: %.3g of scale from fp32 (want <= %g)", name, mode, i, rel, tcRelTol[mode])
			} else {
				t.Logf("%s %s output %d: %.3g of scale from fp32", name, mode, i, rel)
			}
		}
	}
	if err := b.SetMath(kernels.MathFP32); err != nil {
		t.Fatal(err)
	}
}

// TestTensorCoreMath compares Gemm (every transpose, alpha and beta),
// batched and broadcast MatMul, MatMulBackward and Conv2D/Conv2DFused
// (grouped, strided, dilated, padded, with bias, residual, activation
// and affine) in the fp16 and bf16 math modes with the FP32 mode, on
// shapes that are not multiples of the tiles and on both tile heights
// (M <= 64 and M > 64).
func TestTensorCoreMath(t *testing.T) {
	b := newTestBackend(t)
	if err := b.SetMath("fp8"); err == nil {
		t.Errorf("SetMath(fp8): nil error, want ErrParam")
	}
	r := rand.New(rand.NewPCG(3, 0x7c))
	differed := map[string]bool{}
	free := func(ts ...*kernels.Tensor) {
		for _, x := range ts {
			b.Free(x)
		}
	}

	for _, c := range []struct {
		m, k, n    int
		ta, tb     bool
		alpha, bet float32
	}{
		{1, 1, 1, false, false, 1, 0},
		{17, 33, 65, false, false, 1, 0},
		{64, 64, 64, true, false, 1, 0},
		{65, 200, 130, false, true, 0.5, 2},
		{130, 37, 257, true, true, 1, 1},
		{300, 1000, 200, false, false, 1, 0},
	} {
		as, bs := []int{c.m, c.k}, []int{c.k, c.n}
		if c.ta {
			as = []int{c.k, c.m}
		}
		if c.tb {
			bs = []int{c.n, c.k}
		}
		x := kernelstest.Upload(t, b, kernelstest.Rand(r, c.m*c.k, -1, 1), as...)
		y := kernelstest.Upload(t, b, kernelstest.Rand(r, c.k*c.n, -1, 1), bs...)
		c0 := kernelstest.Rand(r, c.m*c.n, -1, 1)
		out := kernelstest.Upload(t, b, c0, c.m, c.n)
		tcCompare(t, b, "gemm", func() [][]float32 {
			if err := b.Upload(out, c0); err != nil {
				t.Fatal(err)
			}
			if err := b.Gemm(out, x, y, kernels.GemmParams{TransA: c.ta, TransB: c.tb, Alpha: c.alpha, Beta: c.bet}); err != nil {
				t.Fatalf("gemm %+v: %v", c, err)
			}
			return [][]float32{kernelstest.Download(t, b, out)}
		}, differed)
		free(x, y, out)
	}

	for _, c := range []struct{ a, bb []int }{
		{[]int{2, 3, 40, 50}, []int{3, 50, 70}},
		{[]int{4, 40, 50}, []int{50, 70}},
		{[]int{3, 100, 20}, []int{3, 20, 9}},
	} {
		p, err := kernels.PlanMatMul(c.a, c.bb)
		if err != nil {
			t.Fatal(err)
		}
		x := kernelstest.Upload(t, b, kernelstest.Rand(r, kernels.Shape(c.a).Numel(), -1, 1), c.a...)
		y := kernelstest.Upload(t, b, kernelstest.Rand(r, kernels.Shape(c.bb).Numel(), -1, 1), c.bb...)
		out := kernelstest.Upload(t, b, make([]float32, p.Out.Numel()), p.Out...)
		dc := kernelstest.Upload(t, b, kernelstest.Rand(r, p.Out.Numel(), -1, 1), p.Out...)
		da := kernelstest.Upload(t, b, make([]float32, kernels.Shape(c.a).Numel()), c.a...)
		db := kernelstest.Upload(t, b, make([]float32, kernels.Shape(c.bb).Numel()), c.bb...)
		tcCompare(t, b, "matmul and backward", func() [][]float32 {
			if err := b.MatMul(out, x, y); err != nil {
				t.Fatalf("matmul %v x %v: %v", c.a, c.bb, err)
			}
			if err := b.MatMulBackward(da, db, dc, x, y); err != nil {
				t.Fatalf("matmul backward %v x %v: %v", c.a, c.bb, err)
			}
			return [][]float32{kernelstest.Download(t, b, out), kernelstest.Download(t, b, da), kernelstest.Download(t, b, db)}
		}, differed)
		free(x, y, out, dc, da, db)
	}

	for _, c := range []struct {
		x, w  []int
		p     kernels.ConvParams
		bias  bool
		res   bool
		act   kernels.Act
		plain bool // Conv2D instead of Conv2DFused
	}{
		{[]int{2, 16, 13, 11}, []int{32, 16, 3, 3}, kernels.ConvParams{Pads: [4]int{1, 1, 1, 1}}, false, false, kernels.Act{}, true},
		{[]int{2, 16, 13, 11}, []int{32, 8, 3, 3}, kernels.ConvParams{Strides: [2]int{2, 2}, Dilations: [2]int{2, 2}, Pads: [4]int{2, 1, 0, 2}, Group: 2}, true, false, kernels.Act{Kind: kernels.ActRelu}, false},
		{[]int{3, 64, 9, 9}, []int{130, 64, 1, 1}, kernels.ConvParams{}, true, true, kernels.Act{Kind: kernels.ActLeakyRelu, Alpha: 0.1, Affine: true, Scale: 0.5, Shift: 0.25}, false},
		{[]int{1, 3, 40, 40}, []int{24, 3, 7, 7}, kernels.ConvParams{Strides: [2]int{2, 2}, Pads: [4]int{3, 3, 3, 3}}, true, true, kernels.Act{Kind: kernels.ActHardSwish}, false},
	} {
		p := c.p.WithDefaults()
		oh := (c.x[2]+p.Pads[0]+p.Pads[2]-p.Dilations[0]*(c.w[2]-1)-1)/p.Strides[0] + 1
		ow := (c.x[3]+p.Pads[1]+p.Pads[3]-p.Dilations[1]*(c.w[3]-1)-1)/p.Strides[1] + 1
		ys := []int{c.x[0], c.w[0], oh, ow}
		ny := kernels.Shape(ys).Numel()
		x := kernelstest.Upload(t, b, kernelstest.Rand(r, kernels.Shape(c.x).Numel(), -1, 1), c.x...)
		w := kernelstest.Upload(t, b, kernelstest.Rand(r, kernels.Shape(c.w).Numel(), -0.5, 0.5), c.w...)
		y := kernelstest.Upload(t, b, make([]float32, ny), ys...)
		var bias, res *kernels.Tensor
		if c.bias {
			bias = kernelstest.Upload(t, b, kernelstest.Rand(r, c.w[0], -1, 1), c.w[0])
		}
		if c.res {
			res = kernelstest.Upload(t, b, kernelstest.Rand(r, ny, -1, 1), ys...)
		}
		tcCompare(t, b, "conv", func() [][]float32 {
			var err error
			if c.plain {
				err = b.Conv2D(y, x, w, bias, c.p)
			} else {
				err = b.Conv2DFused(y, x, w, bias, res, c.p, c.act)
			}
			if err != nil {
				t.Fatalf("conv x %v w %v: %v", c.x, c.w, err)
			}
			return [][]float32{kernelstest.Download(t, b, y)}
		}, differed)
		free(x, w, y)
		if bias != nil {
			b.Free(bias)
		}
		if res != nil {
			b.Free(res)
		}
	}
	for _, mode := range []string{kernels.MathFP16, kernels.MathBF16} {
		if !differed[mode] {
			t.Errorf("%s: every output equals fp32's bit for bit: the tensor-core kernels did not run", mode)
		}
	}
}
