package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testElementwise(t *testing.T, b kernels.Backend) {
	t.Run("shapes", func(t *testing.T) { testBroadcastShapes(t) })
	t.Run("hand", func(t *testing.T) { testBinaryHand(t, b) })
	t.Run("random", func(t *testing.T) { testBinaryRandom(t, b) })
	t.Run("grad", func(t *testing.T) { testBinaryGrad(t, b) })
	t.Run("alias", func(t *testing.T) { testBinaryAlias(t, b) })
	t.Run("axpy_scale", func(t *testing.T) { testAxpyScale(t, b) })
	t.Run("errors", func(t *testing.T) { testElementwiseErrors(t, b) })
}

var ewOps = []kernels.BinaryOp{kernels.OpAdd, kernels.OpSub, kernels.OpMul, kernels.OpDiv, kernels.OpPow, kernels.OpMax, kernels.OpMin}

var ewOpNames = map[kernels.BinaryOp]string{kernels.OpAdd: "add", kernels.OpSub: "sub", kernels.OpMul: "mul",
	kernels.OpDiv: "div", kernels.OpPow: "pow", kernels.OpMax: "max", kernels.OpMin: "min"}

func testBroadcastShapes(t *testing.T) {
	for _, c := range []struct{ a, b, want kernels.Shape }{
		{kernels.Shape{2, 3, 4}, kernels.Shape{4}, kernels.Shape{2, 3, 4}},
		{kernels.Shape{2, 1, 4}, kernels.Shape{3, 1}, kernels.Shape{2, 3, 4}},
		{kernels.Shape{}, kernels.Shape{2, 3}, kernels.Shape{2, 3}},
		{kernels.Shape{8, 16, 5, 5}, kernels.Shape{1, 16, 1, 1}, kernels.Shape{8, 16, 5, 5}},
		{kernels.Shape{1, 0}, kernels.Shape{3, 1}, kernels.Shape{3, 0}},
	} {
		for _, swap := range []bool{false, true} {
			a, bb := c.a, c.b
			if swap {
				a, bb = bb, a
			}
			got, err := kernels.BroadcastShape(a, bb)
			if err != nil || !got.Equal(c.want) {
				t.Errorf("BroadcastShape(%v, %v) = %v, %v (want %v)", a, bb, got, err, c.want)
			}
		}
	}
	for _, c := range []struct{ a, b kernels.Shape }{{kernels.Shape{2, 3}, kernels.Shape{3, 2}}, {kernels.Shape{0}, kernels.Shape{3}}, {kernels.Shape{-1}, kernels.Shape{1}}} {
		if _, err := kernels.BroadcastShape(c.a, c.b); !errors.Is(err, kernels.ErrShape) {
			t.Errorf("BroadcastShape(%v, %v): error %v (want ErrShape)", c.a, c.b, err)
		}
	}
	for _, c := range []struct{ axis, rank, want int }{{0, 1, 0}, {-1, 4, 3}, {-4, 4, 0}, {2, 3, 2}} {
		if got, err := kernels.NormalizeAxis(c.axis, c.rank); err != nil || got != c.want {
			t.Errorf("NormalizeAxis(%d, %d) = %d, %v (want %d)", c.axis, c.rank, got, err, c.want)
		}
	}
	for _, c := range []struct{ axis, rank int }{{1, 1}, {-5, 4}, {0, 0}} {
		if _, err := kernels.NormalizeAxis(c.axis, c.rank); !errors.Is(err, kernels.ErrParam) {
			t.Errorf("NormalizeAxis(%d, %d): error %v (want ErrParam)", c.axis, c.rank, err)
		}
	}
}

// ewBinary runs Binary into a guarded output and compares with want.
func ewBinary(t *testing.T, b kernels.Backend, name string, op kernels.BinaryOp, a *kernels.Tensor, bb *kernels.Tensor, want []float32, tol Tol) {
	t.Helper()
	cs, err := kernels.BroadcastShape(a.Shape, bb.Shape)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := NewGuarded(t, b, cs, 77)
	if err := b.Binary(c.T, a, bb, op); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	AssertClose(t, name, c.Check(t, name), want, tol)
}

// ewBackward runs BinaryBackward into guarded da and db and compares both.
func ewBackward(t *testing.T, b kernels.Backend, name string, op kernels.BinaryOp, dc, a, bb *kernels.Tensor, wantA, wantB []float32, tol Tol) {
	t.Helper()
	da, db := NewGuarded(t, b, a.Shape, 5), NewGuarded(t, b, bb.Shape, 6)
	if err := b.BinaryBackward(da.T, db.T, dc, a, bb, op); err != nil {
		t.Fatalf("%s backward: %v", name, err)
	}
	AssertClose(t, name+" da", da.Check(t, name+" da"), wantA, tol)
	AssertClose(t, name+" db", db.Check(t, name+" db"), wantB, tol)
	// Each gradient alone gives the same values.
	da2 := NewGuarded(t, b, a.Shape, 7)
	if err := b.BinaryBackward(da2.T, nil, dc, a, bb, op); err != nil {
		t.Fatalf("%s backward da only: %v", name, err)
	}
	AssertClose(t, name+" da only", da2.Check(t, name+" da only"), wantA, tol)
	db2 := NewGuarded(t, b, bb.Shape, 8)
	if err := b.BinaryBackward(nil, db2.T, dc, a, bb, op); err != nil {
		t.Fatalf("%s backward db only: %v", name, err)
	}
	AssertClose(t, name+" db only", db2.Check(t, name+" db only"), wantB, tol)
}

func testBinaryHand(t *testing.T, b kernels.Backend) {
	// Bias row: [[1,2,3],[4,5,6]] + [10,20,30].
	x := Upload(t, b, plSeq(6), 2, 3)
	row := Upload(t, b, []float32{10, 20, 30}, 3)
	ewBinary(t, b, "add bias row", kernels.OpAdd, x, row, []float32{11, 22, 33, 14, 25, 36}, TolExact)
	ewBinary(t, b, "sub row - x", kernels.OpSub, row, x, []float32{9, 18, 27, 6, 15, 24}, TolExact)
	// Mul's gradients: da = dc*b = the row twice; db = column sums of
	// dc*a = [1+4, 2+5, 3+6].
	ones := Upload(t, b, []float32{1, 1, 1, 1, 1, 1}, 2, 3)
	ewBackward(t, b, "mul bias row", kernels.OpMul, ones, x, row, []float32{10, 20, 30, 10, 20, 30}, []float32{5, 7, 9}, TolF32)
	// Add and Sub: db sums dc over the broadcast axis, negated for Sub.
	ewBackward(t, b, "sub bias row", kernels.OpSub, ones, x, row, []float32{1, 1, 1, 1, 1, 1}, []float32{-2, -2, -2}, TolExact)
	// Per channel: (1,2,2,2) 1..8 times (1,2,1,1) [10, -1].
	x8 := Upload(t, b, plSeq(8), 1, 2, 2, 2)
	ch := Upload(t, b, []float32{10, -1}, 1, 2, 1, 1)
	ewBinary(t, b, "mul per channel", kernels.OpMul, x8, ch, []float32{10, 20, 30, 40, -5, -6, -7, -8}, TolExact)
	// Scalar (rank 0) on either side.
	two := Upload(t, b, []float32{2}, []int{}...)
	ewBinary(t, b, "div by scalar", kernels.OpDiv, x, two, []float32{0.5, 1, 1.5, 2, 2.5, 3}, TolExact)
	ewBinary(t, b, "scalar div", kernels.OpDiv, two, x, []float32{2, 1, 2.0 / 3, 0.5, 0.4, 2.0 / 6}, TolF32)
	ewBinary(t, b, "scalar pow", kernels.OpPow, two, x, []float32{2, 4, 8, 16, 32, 64}, TolF32)
	// Outer broadcast (2,1) / (1,2): [[1],[3]] / [[2, 4]]; dc = 1:
	// da = sum_j 1/b = 1/2+1/4 = 0.75 for each row; db[j] = -sum_i a_i/b_j^2
	// = -4/4 = -1, -4/16 = -0.25.
	col := Upload(t, b, []float32{1, 3}, 2, 1)
	rw := Upload(t, b, []float32{2, 4}, 1, 2)
	ewBinary(t, b, "div outer", kernels.OpDiv, col, rw, []float32{0.5, 0.25, 1.5, 0.75}, TolExact)
	ewBackward(t, b, "div outer", kernels.OpDiv, Upload(t, b, []float32{1, 1, 1, 1}, 2, 2), col, rw, []float32{0.75, 0.75}, []float32{-1, -0.25}, TolF32)
	// Pow: [2, 9] ^ [3, 0.5] = [8, 3]; da = y*x^(y-1) = [12, 1/6],
	// db = x^y*ln x = [8 ln 2, 3 ln 9].
	pa, pb := Upload(t, b, []float32{2, 9}, 2), Upload(t, b, []float32{3, 0.5}, 2)
	ewBinary(t, b, "pow", kernels.OpPow, pa, pb, []float32{8, 3}, TolF32)
	ewBackward(t, b, "pow", kernels.OpPow, Upload(t, b, []float32{1, 1}, 2), pa, pb,
		[]float32{12, 1.0 / 6}, []float32{float32(8 * math.Ln2), float32(3 * math.Log(9))}, TolF32)
	// Max and Min with a tie: the gradient is split evenly there.
	ma, mb := Upload(t, b, []float32{1, 2, 5}, 3), Upload(t, b, []float32{1, 3, 4}, 3)
	dc := Upload(t, b, []float32{2, 2, 2}, 3)
	ewBinary(t, b, "max", kernels.OpMax, ma, mb, []float32{1, 3, 5}, TolExact)
	ewBinary(t, b, "min", kernels.OpMin, ma, mb, []float32{1, 2, 4}, TolExact)
	ewBackward(t, b, "max", kernels.OpMax, dc, ma, mb, []float32{1, 0, 2}, []float32{1, 2, 0}, TolExact)
	ewBackward(t, b, "min", kernels.OpMin, dc, ma, mb, []float32{1, 2, 0}, []float32{1, 0, 2}, TolExact)
	// Empty broadcast: (1,0) with (3,1) is (3,0); b's gradient sums nothing.
	e := Upload(t, b, nil, 1, 0)
	ewBinary(t, b, "empty", kernels.OpAdd, e, Upload(t, b, []float32{1, 2, 3}, 3, 1), nil, TolExact)
	ewBackward(t, b, "empty", kernels.OpMul, Upload(t, b, nil, 3, 0), e, Upload(t, b, []float32{1, 2, 3}, 3, 1), nil, []float32{0, 0, 0}, TolExact)
}

// ewShapePairs are operand shapes: the cases graphs hit (same shape,
// scalar, per channel, bias row), long rows split across threads, mixed
// ranks and both operands broadcast.
var ewShapePairs = []struct{ a, b kernels.Shape }{
	{kernels.Shape{2, 3, 4}, kernels.Shape{2, 3, 4}},
	{kernels.Shape{3, 5}, kernels.Shape{}},
	{kernels.Shape{1}, kernels.Shape{4, 3}},
	{kernels.Shape{2, 3, 4, 5}, kernels.Shape{1, 3, 1, 1}},
	{kernels.Shape{1, 3, 1, 1}, kernels.Shape{2, 3, 4, 5}},
	{kernels.Shape{6, 7}, kernels.Shape{7}},
	{kernels.Shape{3, 1, 5}, kernels.Shape{4, 1}},
	{kernels.Shape{2, 1, 3, 1}, kernels.Shape{1, 4, 1, 5}},
	{kernels.Shape{2, 3, 1}, kernels.Shape{2, 1, 4}},
	{kernels.Shape{3, 1}, kernels.Shape{3, 1}},
	{kernels.Shape{2, 3, 700}, kernels.Shape{3, 1}},
	{kernels.Shape{40000}, kernels.Shape{40000}},
	{kernels.Shape{3, 16, 700}, kernels.Shape{700}},
}

// ewOperands returns random operands suited to op: Pow gets a positive
// base; Div a divisor away from 0; Max and Min values on interleaved grids
// (never equal, at least 0.05 apart) so finite differences see no kink.
func ewOperands(r *rand.Rand, op kernels.BinaryOp, na, nb int) ([]float32, []float32) {
	a, b := Rand(r, na, -1, 1), Rand(r, nb, -1, 1)
	switch op {
	case kernels.OpPow:
		for i := range a {
			a[i] = 0.5 + float32(math.Abs(float64(a[i])))
		}
		for i := range b {
			b[i] *= 2
		}
	case kernels.OpDiv:
		for i := range b {
			b[i] = float32(math.Copysign(0.5+math.Abs(float64(b[i])), float64(b[i])))
		}
	case kernels.OpMax, kernels.OpMin:
		for i := range a {
			a[i] = float32(r.IntN(20)-10) / 10
		}
		for i := range b {
			b[i] = float32(r.IntN(20)-10)/10 + 0.05
		}
	}
	return a, b
}

func testBinaryRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, sp := range ewShapePairs {
		cs, err := kernels.BroadcastShape(sp.a, sp.b)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ewOps {
			name := fmt.Sprintf("%s %v %v", ewOpNames[op], sp.a, sp.b)
			av, bv := ewOperands(r, op, sp.a.Numel(), sp.b.Numel())
			at, bt := Upload(t, b, av, sp.a...), Upload(t, b, bv, sp.b...)
			ewBinary(t, b, name, op, at, bt, refBinary(op, av, sp.a, bv, sp.b, cs), TolF32)
			dcv := Rand(r, cs.Numel(), -1, 1)
			wantA, wantB := refBinaryBackward(op, dcv, av, sp.a, bv, sp.b, cs)
			// Sums over up to 2100 broadcast elements: an absolute floor.
			ewBackward(t, b, name, op, Upload(t, b, dcv, cs...), at, bt, wantA, wantB, Tol{Abs: 1e-4, Rel: 1e-4})
		}
	}
}

func testBinaryGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, sp := range ewShapePairs {
		cs, _ := kernels.BroadcastShape(sp.a, sp.b)
		if cs.Numel() > 150 {
			continue // two forwards per element
		}
		for _, op := range ewOps {
			av, bv := ewOperands(r, op, sp.a.Numel(), sp.b.Numel())
			at, bt := Upload(t, b, av, sp.a...), Upload(t, b, bv, sp.b...)
			name := fmt.Sprintf("%s %v %v", ewOpNames[op], sp.a, sp.b)
			fwd := func(c *kernels.Tensor) error { return b.Binary(c, at, bt, op) }
			plGradCheck(t, b, name+" da", at, cs, 1e-2, fwd, func(da, dc *kernels.Tensor) error { return b.BinaryBackward(da, nil, dc, at, bt, op) })
			plGradCheck(t, b, name+" db", bt, cs, 1e-2, fwd, func(db, dc *kernels.Tensor) error { return b.BinaryBackward(nil, db, dc, at, bt, op) })
		}
	}
}

func testBinaryAlias(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(25, 26))
	s, bs := kernels.Shape{3, 4, 50}, kernels.Shape{4, 1}
	for _, op := range ewOps {
		av, bv := ewOperands(r, op, s.Numel(), s.Numel())
		want := refBinary(op, av, s, bv, s, s)
		// c is a.
		a, bt := Upload(t, b, av, s...), Upload(t, b, bv, s...)
		if err := b.Binary(a, a, bt, op); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, ewOpNames[op]+" c=a", Download(t, b, a), want, TolF32)
		// c is b.
		a = Upload(t, b, av, s...)
		if err := b.Binary(bt, a, bt, op); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, ewOpNames[op]+" c=b", Download(t, b, bt), want, TolF32)
		// c is a, b broadcast.
		bv2 := bv[:bs.Numel()]
		a, bt = Upload(t, b, av, s...), Upload(t, b, bv2, bs...)
		if err := b.Binary(a, a, bt, op); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, ewOpNames[op]+" c=a broadcast b", Download(t, b, a), refBinary(op, av, s, bv2, bs, s), TolF32)
	}
}

func testAxpyScale(t *testing.T, b kernels.Backend) {
	y := NewGuarded(t, b, kernels.Shape{2, 3}, 0)
	if err := b.Upload(y.T, plSeq(6)); err != nil {
		t.Fatal(err)
	}
	// Shapes may differ when the sizes agree.
	if err := b.Axpy(y.T, -2, Upload(t, b, []float32{1, 1, 1, 0, 0, 0.5}, 6)); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "axpy", y.Check(t, "axpy"), []float32{-1, 0, 1, 4, 5, 5}, TolExact)
	if err := b.Scale(y.T, 0.5); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "scale", y.Check(t, "scale"), []float32{-0.5, 0, 0.5, 2, 2.5, 2.5}, TolExact)
	// Long vectors (split across threads) against plain loops.
	r := rand.New(rand.NewPCG(27, 28))
	n := 100003
	xv, yv := Rand(r, n, -1, 1), Rand(r, n, -1, 1)
	yl := NewGuarded(t, b, kernels.Shape{n}, 0)
	if err := b.Upload(yl.T, yv); err != nil {
		t.Fatal(err)
	}
	if err := b.Axpy(yl.T, 0.25, Upload(t, b, xv, n)); err != nil {
		t.Fatal(err)
	}
	if err := b.Scale(yl.T, -3); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n)
	for i := range want {
		want[i] = float32(-3 * (float64(yv[i]) + 0.25*float64(xv[i])))
	}
	AssertClose(t, "axpy+scale long", yl.Check(t, "axpy+scale long"), want, TolF32)
}

func testElementwiseErrors(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, plSeq(6), 2, 3)
	x32 := Upload(t, b, plSeq(6), 3, 2)
	c := Upload(t, b, make([]float32, 6), 2, 3)
	plWantErr(t, "binary no broadcast", b.Binary(c, x, x32, kernels.OpAdd), kernels.ErrShape)
	plWantErr(t, "binary c shape", b.Binary(x32, x, x, kernels.OpAdd), kernels.ErrShape)
	plWantErr(t, "binary c rank", b.Binary(Upload(t, b, make([]float32, 6), 6), x, x, kernels.OpMul), kernels.ErrShape)
	plWantErr(t, "binary op", b.Binary(c, x, x, kernels.BinaryOp(99)), kernels.ErrParam)
	plWantErr(t, "binary nil b", b.Binary(c, x, nil, kernels.OpAdd), kernels.ErrShape)
	row := Upload(t, b, []float32{1, 2, 3}, 3)
	plWantErr(t, "backward dc shape", b.BinaryBackward(c, nil, x32, x, row, kernels.OpAdd), kernels.ErrShape)
	plWantErr(t, "backward db shape", b.BinaryBackward(nil, c, x, x, row, kernels.OpMul), kernels.ErrShape)
	plWantErr(t, "backward da shape", b.BinaryBackward(row, nil, x, x, row, kernels.OpMul), kernels.ErrShape)
	plWantErr(t, "axpy size", b.Axpy(x, 1, row), kernels.ErrShape)
	if err := b.BinaryBackward(nil, nil, x, x, row, kernels.OpDiv); err != nil {
		t.Errorf("binary backward with no gradients: %v (want nil)", err)
	}
}
