package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

// linTolSum is the tolerance for a float32 sum of k products of values of
// magnitude about 1: rounding grows with the number of terms.
func linTolSum(k int) Tol {
	return Tol{Abs: 2e-6 * float64(k+8), Rel: 1e-4}
}

func testLinear(t *testing.T, b kernels.Backend) {
	t.Run("gemm_hand", func(t *testing.T) { testGemmHand(t, b) })
	t.Run("gemm_random", func(t *testing.T) { testGemmRandom(t, b) })
	t.Run("matmul_hand", func(t *testing.T) { testMatMulHand(t, b) })
	t.Run("matmul_random", func(t *testing.T) { testMatMulRandom(t, b) })
	t.Run("matmul_grad", func(t *testing.T) { testMatMulGrad(t, b) })
	t.Run("errors", func(t *testing.T) { testLinearErrors(t, b) })
}

func testGemmHand(t *testing.T, b kernels.Backend) {
	// a = [1 2; 3 4], b = [5 6; 7 8]:
	//   a*b   = [1*5+2*7 1*6+2*8; 3*5+4*7 3*6+4*8] = [19 22; 43 50]
	//   a^T*b = [1*5+3*7 1*6+3*8; 2*5+4*7 2*6+4*8] = [26 30; 38 44]
	//   a*b^T = [1*5+2*6 1*7+2*8; 3*5+4*6 3*7+4*8] = [17 23; 39 53]
	// With alpha=2, beta=0.5 and c = all 1: 2*ab + 0.5.
	a := Upload(t, b, []float32{1, 2, 3, 4}, 2, 2)
	bb := Upload(t, b, []float32{5, 6, 7, 8}, 2, 2)
	cases := []struct {
		p    kernels.GemmParams
		want []float32
	}{
		{kernels.GemmParams{Alpha: 1}, []float32{19, 22, 43, 50}},
		{kernels.GemmParams{Alpha: 2, Beta: 0.5}, []float32{38.5, 44.5, 86.5, 100.5}},
		{kernels.GemmParams{TransA: true, Alpha: 1}, []float32{26, 30, 38, 44}},
		{kernels.GemmParams{TransB: true, Alpha: 1}, []float32{17, 23, 39, 53}},
	}
	for i, tc := range cases {
		c := NewGuarded(t, b, kernels.Shape{2, 2}, 1)
		if err := b.Gemm(c.T, a, bb, tc.p); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		AssertClose(t, fmt.Sprintf("gemm case %d", i), c.Check(t, "gemm"), tc.want, TolExact)
	}
	// beta = 0 overwrites c even where it holds NaN.
	c := NewGuarded(t, b, kernels.Shape{2, 2}, float32(math.NaN()))
	if err := b.Gemm(c.T, a, bb, kernels.GemmParams{Alpha: 1}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "gemm beta=0 over NaN", c.Check(t, "gemm"), []float32{19, 22, 43, 50}, TolExact)
}

func testGemmRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := [][3]int{{1, 1, 1}, {7, 5, 3}, {3, 17, 9}, {70, 90, 80}, {130, 33, 70}, {33, 130, 65}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			p := kernels.GemmParams{TransA: tr[0], TransB: tr[1], Alpha: 0.75, Beta: -0.5}
			as, bs := kernels.Shape{m, k}, kernels.Shape{k, n}
			if p.TransA {
				as = kernels.Shape{k, m}
			}
			if p.TransB {
				bs = kernels.Shape{n, k}
			}
			av, bv, cv := Rand(r, m*k, -1, 1), Rand(r, k*n, -1, 1), Rand(r, m*n, -1, 1)
			want := RefGemm(av, as, bv, bs, cv, p)
			c := NewGuarded(t, b, kernels.Shape{m, n}, 0)
			if err := b.Upload(c.T, cv); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("gemm m=%d n=%d k=%d trans=%v", m, n, k, tr)
			if err := b.Gemm(c.T, Upload(t, b, av, as...), Upload(t, b, bv, bs...), p); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			AssertClose(t, name, c.Check(t, name), want, linTolSum(k))
		}
	}
}

func testMatMulHand(t *testing.T, b kernels.Backend) {
	// Rank-1 a promoted to (1,3) then squeezed: [1 2 3] @ [1 0; 0 1; 1 1]
	// = [1+3, 2+3] = [4 5], shape (2).
	c := NewGuarded(t, b, kernels.Shape{2}, 0)
	if err := b.MatMul(c.T, Upload(t, b, []float32{1, 2, 3}, 3), Upload(t, b, []float32{1, 0, 0, 1, 1, 1}, 3, 2)); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "matmul rank-1 a", c.Check(t, "matmul"), []float32{4, 5}, TolExact)
	// Broadcast batch: a (2,1,2) = [[1 2]], [[3 4]]; b (2,1) = [10; 1]:
	// c (2,1,1) = [1*10+2*1], [3*10+4*1] = [12], [34].
	c = NewGuarded(t, b, kernels.Shape{2, 1, 1}, 0)
	if err := b.MatMul(c.T, Upload(t, b, []float32{1, 2, 3, 4}, 2, 1, 2), Upload(t, b, []float32{10, 1}, 2, 1)); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "matmul batch", c.Check(t, "matmul"), []float32{12, 34}, TolExact)
	// a (1,2) = [1 1] shared over b (2,2,1) = [[2],[3]], [[4],[5]]:
	// c (2,1,1) = [5], [9]. Backward with dc = [1], [1]:
	// da = sum_t dc[t] b[t]^T = [2 3] + [4 5] = [6 8];
	// db[t] = a^T dc[t] = [1;1] each.
	a := Upload(t, b, []float32{1, 1}, 1, 2)
	bb := Upload(t, b, []float32{2, 3, 4, 5}, 2, 2, 1)
	c = NewGuarded(t, b, kernels.Shape{2, 1, 1}, 0)
	if err := b.MatMul(c.T, a, bb); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "matmul shared a", c.Check(t, "matmul"), []float32{5, 9}, TolExact)
	da := NewGuarded(t, b, kernels.Shape{1, 2}, 99)
	db := NewGuarded(t, b, kernels.Shape{2, 2, 1}, 99)
	if err := b.MatMulBackward(da.T, db.T, Upload(t, b, []float32{1, 1}, 2, 1, 1), a, bb); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "matmul backward da", da.Check(t, "da"), []float32{6, 8}, TolExact)
	AssertClose(t, "matmul backward db", db.Check(t, "db"), []float32{1, 1, 1, 1}, TolExact)
}

// matmulCases are (a shape, b shape) pairs covering rank-1 promotion,
// batch broadcasting on either side and both, and sizes that take the
// backends' parallel paths.
var matmulCases = [][2]kernels.Shape{
	{{3, 4}, {4, 5}},
	{{5}, {5}},
	{{4}, {2, 4, 3}},
	{{3, 4}, {4}},
	{{2, 3, 4}, {4}},
	{{2, 3, 4}, {4, 5}},
	{{2, 3, 4}, {2, 4, 5}},
	{{3, 4}, {3, 4, 5}},
	{{2, 1, 3, 4}, {3, 4, 2}},
	{{2, 1, 3, 4}, {1, 5, 4, 2}},
	{{1, 3, 4}, {2, 4, 6}},
	{{3, 40, 50}, {50, 60}},
	{{4, 40, 50}, {4, 50, 60}},
	{{40, 50}, {3, 50, 60}},
	{{64, 70}, {70, 90}},
}

func testMatMulRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sc := range matmulCases {
		as, bs := sc[0], sc[1]
		name := fmt.Sprintf("matmul %v x %v", as, bs)
		out, err := kernels.MatMulOutShape(as, bs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		av, bv := Rand(r, as.Numel(), -1, 1), Rand(r, bs.Numel(), -1, 1)
		a, bb := Upload(t, b, av, as...), Upload(t, b, bv, bs...)
		k := as[len(as)-1]
		c := NewGuarded(t, b, out, 7)
		if err := b.MatMul(c.T, a, bb); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name, c.Check(t, name), RefMatMul(av, as, bv, bs), linTolSum(k))

		dcv := Rand(r, out.Numel(), -1, 1)
		wantA, wantB := RefMatMulBackward(dcv, av, as, bv, bs)
		da, db := NewGuarded(t, b, as, 7), NewGuarded(t, b, bs, 7)
		if err := b.MatMulBackward(da.T, db.T, Upload(t, b, dcv, out...), a, bb); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		// Gradients sum over the batch and the other operand's free dim.
		pl, _ := kernels.PlanMatMul(as, bs)
		terms := pl.Batch.Numel() * max(pl.M, pl.N)
		AssertClose(t, name+" da", da.Check(t, "da"), wantA, linTolSum(terms))
		AssertClose(t, name+" db", db.Check(t, "db"), wantB, linTolSum(terms))
		// Each gradient alone (the other nil) gives the same values.
		da1 := NewGuarded(t, b, as, 7)
		if err := b.MatMulBackward(da1.T, nil, Upload(t, b, dcv, out...), a, bb); err != nil {
			t.Fatalf("%s backward da only: %v", name, err)
		}
		AssertClose(t, name+" da only", da1.Check(t, "da"), wantA, linTolSum(terms))
		db1 := NewGuarded(t, b, bs, 7)
		if err := b.MatMulBackward(nil, db1.T, Upload(t, b, dcv, out...), a, bb); err != nil {
			t.Fatalf("%s backward db only: %v", name, err)
		}
		AssertClose(t, name+" db only", db1.Check(t, "db"), wantB, linTolSum(terms))
	}
}

// testMatMulGrad checks MatMulBackward against central differences of
// L = Dot(MatMul(a,b), r), including batch broadcasting on both sides.
func testMatMulGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sc := range [][2]kernels.Shape{{{2, 1, 3, 4}, {1, 2, 4, 2}}, {{3}, {2, 3, 2}}, {{2, 3, 4}, {4}}} {
		as, bs := sc[0], sc[1]
		name := fmt.Sprintf("matmul grad %v x %v", as, bs)
		out, _ := kernels.MatMulOutShape(as, bs)
		a := Upload(t, b, Rand(r, as.Numel(), -1, 1), as...)
		bb := Upload(t, b, Rand(r, bs.Numel(), -1, 1), bs...)
		proj := Rand(r, out.Numel(), -1, 1)
		c, _ := b.Alloc(out)
		loss := func() float64 {
			if err := b.MatMul(c, a, bb); err != nil {
				t.Fatal(err)
			}
			return Dot(Download(t, b, c), proj)
		}
		da, _ := b.Alloc(as)
		db, _ := b.Alloc(bs)
		if err := b.MatMulBackward(da, db, Upload(t, b, proj, out...), a, bb); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name+" da", Download(t, b, da), NumericGrad(t, b, a, 1e-2, loss), TolGrad)
		AssertClose(t, name+" db", Download(t, b, db), NumericGrad(t, b, bb, 1e-2, loss), TolGrad)
	}
}

func testLinearErrors(t *testing.T, b kernels.Backend) {
	alloc := func(s ...int) *kernels.Tensor {
		x, err := b.Alloc(kernels.Shape(s))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	wantShape := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, kernels.ErrShape) {
			t.Errorf("%s: got error %v (want one wrapping kernels.ErrShape)", name, err)
		}
	}
	wantShape("gemm inner", b.Gemm(alloc(2, 2), alloc(2, 3), alloc(2, 2), kernels.GemmParams{Alpha: 1}))
	wantShape("gemm out", b.Gemm(alloc(2, 3), alloc(2, 3), alloc(3, 2), kernels.GemmParams{Alpha: 1}))
	wantShape("gemm rank", b.Gemm(alloc(2, 2), alloc(1, 2, 2), alloc(2, 2), kernels.GemmParams{Alpha: 1}))
	wantShape("matmul inner", b.MatMul(alloc(2, 2), alloc(2, 3), alloc(2, 2)))
	wantShape("matmul batch", b.MatMul(alloc(3, 2, 2), alloc(3, 2, 2), alloc(2, 2, 2)))
	wantShape("matmul out", b.MatMul(alloc(2, 3), alloc(2, 2), alloc(2, 2)))
	wantShape("matmul scalar", b.MatMul(alloc(1), alloc(), alloc(2)))
	wantShape("matmul backward da", b.MatMulBackward(alloc(2, 3), nil, alloc(2, 2), alloc(2, 2), alloc(2, 2)))
	wantShape("matmul backward dc", b.MatMulBackward(nil, alloc(2, 2), alloc(2, 3), alloc(2, 2), alloc(2, 2)))
	if s, err := kernels.MatMulOutShape(kernels.Shape{5, 1, 3, 4}, kernels.Shape{2, 4, 6}); err != nil || !s.Equal(kernels.Shape{5, 2, 3, 6}) {
		t.Errorf("MatMulOutShape((5,1,3,4),(2,4,6)) = %v, %v (want (5,2,3,6))", s, err)
	}
	if s, err := kernels.GemmOutShape(kernels.Shape{4, 3}, kernels.Shape{5, 4}, kernels.GemmParams{TransA: true, TransB: true}); err != nil || !s.Equal(kernels.Shape{3, 5}) {
		t.Errorf("GemmOutShape((4,3)^T,(5,4)^T) = %v, %v (want (3,5))", s, err)
	}
}
