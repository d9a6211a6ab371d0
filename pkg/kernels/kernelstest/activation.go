package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testActivation(t *testing.T, b kernels.Backend) {
	t.Run("hand", func(t *testing.T) { testActHand(t, b) })
	t.Run("random", func(t *testing.T) { testActRandom(t, b) })
	t.Run("kinks", func(t *testing.T) { testActKinks(t, b) })
	t.Run("grad", func(t *testing.T) { testActGrad(t, b) })
	t.Run("dropout", func(t *testing.T) { testDropout(t, b) })
	t.Run("errors", func(t *testing.T) { testActErrors(t, b) })
}

// actRun runs Activation on x into a guarded y and returns y's values.
func actRun(t *testing.T, b kernels.Backend, a kernels.Act, x []float32) []float32 {
	t.Helper()
	name := actNames[a.Kind]
	y := NewGuarded(t, b, kernels.Shape{len(x)}, 99)
	if err := b.Activation(y.T, Upload(t, b, x, len(x)), a); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return y.Check(t, name)
}

// actBackward runs ActivationBackward with dy on x (and y = f(x) from the
// backend) into a guarded dx.
func actBackward(t *testing.T, b kernels.Backend, a kernels.Act, x, dy []float32) []float32 {
	t.Helper()
	name := actNames[a.Kind] + " backward"
	n := len(x)
	xt := Upload(t, b, x, n)
	y, _ := b.Alloc(kernels.Shape{n})
	if err := b.Activation(y, xt, a); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dx := NewGuarded(t, b, kernels.Shape{n}, 99)
	if err := b.ActivationBackward(dx.T, Upload(t, b, dy, n), xt, y, a); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return dx.Check(t, name)
}

func actKind(k kernels.ActKind) kernels.Act {
	for _, a := range actAll {
		if a.Kind == k {
			return a
		}
	}
	panic("unknown kind")
}

func testActHand(t *testing.T, b kernels.Backend) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	e := float32(math.E)
	xs := []float32{-4, -3, -1, 0, 0.5, 1, 3, 4}
	cases := []struct {
		a       kernels.Act
		x, want []float32
	}{
		{actKind(kernels.ActIdentity), xs, xs},
		{actKind(kernels.ActRelu), xs, []float32{0, 0, 0, 0, 0.5, 1, 3, 4}},
		{actKind(kernels.ActLeakyRelu), xs, []float32{-0.4, -0.3, -0.1, 0, 0.5, 1, 3, 4}},
		// 0.2x + 0.5 clamped to [0,1]: -4 -> -0.3 -> 0, -1 -> 0.3, 4 -> 1.3 -> 1.
		{actKind(kernels.ActHardSigmoid), xs, []float32{0, 0, 0.3, 0.5, 0.6, 0.7, 1, 1}},
		// x*clamp(x/6+0.5): -1 -> -1/3, 0.5 -> 0.5*(7/12), 1 -> 2/3.
		{actKind(kernels.ActHardSwish), xs, []float32{0, 0, -1.0 / 3, 0, 0.5 * 7 / 12, 2.0 / 3, 3, 4}},
		// Clip to [-1, 2].
		{actKind(kernels.ActClip), xs, []float32{-1, -1, -1, 0, 0.5, 1, 2, 2}},
		{actKind(kernels.ActNeg), xs, []float32{4, 3, 1, 0, -0.5, -1, -3, -4}},
		{actKind(kernels.ActAbs), xs, []float32{4, 3, 1, 0, 0.5, 1, 3, 4}},
		{actKind(kernels.ActExp), []float32{0, 1, -1, 2}, []float32{1, e, 1 / e, e * e}},
		{actKind(kernels.ActLog), []float32{1, e, 0, -1, e * e}, []float32{0, 1, -inf, nan, 2}},
		{actKind(kernels.ActSqrt), []float32{0, 4, 2.25, -1}, []float32{0, 2, 1.5, nan}},
		{actKind(kernels.ActTanh), []float32{0, 20, -20}, []float32{0, 1, -1}},
		// Sigmoid must not overflow or divide Inf by Inf at large |x|:
		// sigmoid(-100) = 3.72e-44 (a float32 denormal), sigmoid(-1000)
		// underflows to 0, the positive side rounds to 1.
		{actKind(kernels.ActSigmoid), []float32{0, 100, 1000, -30, -100, -1000, 88.8, -88.8},
			[]float32{0.5, 1, 1, 9.357623e-14, 3.7200760e-44, 0, 1, 2.7205e-39}},
	}
	// NaN propagates (as in PyTorch) through every kind.
	for _, a := range actAll {
		cases = append(cases, struct {
			a       kernels.Act
			x, want []float32
		}{a, []float32{nan, 1}, []float32{nan, float32(refAct(a, 1))}})
	}
	for _, c := range cases {
		name := actNames[c.a.Kind]
		got := actRun(t, b, c.a, c.x)
		AssertClose(t, name, got, c.want, Tol{Abs: 2e-44, Rel: 1e-4})
		for i, v := range got {
			if !math.IsNaN(float64(c.want[i])) && math.IsNaN(float64(v)) {
				t.Errorf("%s(%v) is NaN (want %v)", name, c.x[i], c.want[i])
			}
		}
	}
	// Gradients at large |x| are finite too.
	g := actBackward(t, b, actKind(kernels.ActSigmoid), []float32{1000, -1000, 0}, []float32{1, 1, 1})
	AssertClose(t, "sigmoid backward at large |x|", g, []float32{0, 0, 0.25}, TolF32)
}

// actDomain returns n random inputs in f's domain.
func actDomain(r *rand.Rand, a kernels.Act, n int) []float32 {
	switch a.Kind {
	case kernels.ActLog, kernels.ActSqrt:
		return Rand(r, n, 0.05, 5)
	case kernels.ActExp:
		return Rand(r, n, -8, 8)
	}
	return Rand(r, n, -6, 6)
}

func testActRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(31, 32))
	// 40000 values is large enough to split across threads.
	for _, n := range []int{1, 37, 1000, 40000} {
		for _, a := range actAll {
			name := fmt.Sprintf("%s n=%d", actNames[a.Kind], n)
			x := actDomain(r, a, n)
			want, wantDx := make([]float32, n), make([]float32, n)
			dy := Rand(r, n, -1, 1)
			for i, v := range x {
				want[i] = float32(refAct(a, float64(v)))
				wantDx[i] = float32(float64(dy[i]) * refActGrad(a, float64(v)))
			}
			AssertClose(t, name, actRun(t, b, a, x), want, TolF32)
			AssertClose(t, name+" backward", actBackward(t, b, a, x, dy), wantDx, Tol{Abs: 1e-5, Rel: 1e-3})
			// In place: y is x.
			xt := Upload(t, b, x, n)
			if err := b.Activation(xt, xt, a); err != nil {
				t.Fatalf("%s in place: %v", name, err)
			}
			AssertClose(t, name+" in place", Download(t, b, xt), want, TolF32)
		}
	}
}

// testActKinks checks f' exactly where f is not differentiable (PyTorch's
// choices, see refActGrad), with dy = 2.
func testActKinks(t *testing.T, b kernels.Backend) {
	cases := []struct {
		k    kernels.ActKind
		x    []float32
		want []float32
	}{
		{kernels.ActRelu, []float32{0, -1, 1}, []float32{0, 0, 2}},
		{kernels.ActLeakyRelu, []float32{0, -1, 1}, []float32{0.2, 0.2, 2}},
		// 0.2x+0.5 reaches 0 at -2.5 and 1 at 2.5: gradient 0 there.
		{kernels.ActHardSigmoid, []float32{-2.5, 2.5, 0, -3, 3}, []float32{0, 0, 0.4, 0, 0}},
		// x/3+0.5 on [-3, 3]: -0.5 at -3, 1.5 at 3.
		{kernels.ActHardSwish, []float32{-3, 3, -3.01, 3.01, 0}, []float32{-1, 3, 0, 2, 1}},
		// Clip to [-1, 2] passes the gradient at both bounds.
		{kernels.ActClip, []float32{-1, 2, -1.01, 2.01, 0}, []float32{2, 2, 0, 0, 2}},
		{kernels.ActAbs, []float32{0, -1, 1}, []float32{0, -2, 2}},
		{kernels.ActNeg, []float32{0}, []float32{-2}},
		{kernels.ActIdentity, []float32{0}, []float32{2}},
	}
	for _, c := range cases {
		dy := make([]float32, len(c.x))
		for i := range dy {
			dy[i] = 2
		}
		AssertClose(t, actNames[c.k]+" at kinks", actBackward(t, b, actKind(c.k), c.x, dy), c.want, TolF32)
	}
}

// actKinks are the points where each f is not differentiable.
func actKinks(a kernels.Act) []float64 {
	switch a.Kind {
	case kernels.ActRelu, kernels.ActLeakyRelu, kernels.ActAbs:
		return []float64{0}
	case kernels.ActHardSigmoid:
		return []float64{-float64(a.Beta) / float64(a.Alpha), (1 - float64(a.Beta)) / float64(a.Alpha)}
	case kernels.ActHardSwish:
		return []float64{-3, 3}
	case kernels.ActClip:
		return []float64{float64(a.Alpha), float64(a.Beta)}
	}
	return nil
}

// testActGrad compares ActivationBackward with central differences of the
// forward (loss = Dot(f(x), w)) at points at least 0.05 from any kink.
func testActGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, a := range actAll {
		name := actNames[a.Kind] + " grad"
		n := 24
		x := actDomain(r, a, n)
		for i := range x {
			for near := true; near; {
				near = false
				for _, k := range actKinks(a) {
					if math.Abs(float64(x[i])-k) < 0.05 {
						near = true
					}
				}
				if near {
					x[i] = actDomain(r, a, 1)[0]
				}
			}
			if a.Kind == kernels.ActExp {
				x[i] /= 4 // keep exp's values (and the float32 loss) small
			}
		}
		xt := Upload(t, b, x, n)
		w := Rand(r, n, -1, 1)
		y, _ := b.Alloc(kernels.Shape{n})
		loss := func() float64 {
			if err := b.Activation(y, xt, a); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return Dot(Download(t, b, y), w)
		}
		num := NumericGrad(t, b, xt, 1e-2, loss)
		loss()
		dx := NewGuarded(t, b, kernels.Shape{n}, 99)
		if err := b.ActivationBackward(dx.T, Upload(t, b, w, n), xt, y, a); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name, dx.Check(t, name), num, TolGrad)
	}
}

func testDropout(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(35, 36))
	n := 20000
	xv := Rand(r, n, -1, 1)
	x := Upload(t, b, xv, n)
	run := func(ratio float32, seed uint64) (y, mask []float32) {
		t.Helper()
		yg, mg := NewGuarded(t, b, kernels.Shape{n}, 99), NewGuarded(t, b, kernels.Shape{n}, 99)
		if err := b.Dropout(yg.T, mg.T, x, ratio, seed); err != nil {
			t.Fatalf("dropout ratio %v seed %d: %v", ratio, seed, err)
		}
		return yg.Check(t, "dropout y"), mg.Check(t, "dropout mask")
	}
	for _, ratio := range []float32{0.1, 0.5, 0.75} {
		y, mask := run(ratio, 42)
		zeros := 0
		for i, m := range mask {
			if m != 0 && m != 1 {
				t.Fatalf("ratio %v: mask[%d] = %v (want 0 or 1)", ratio, i, m)
			}
			if m == 0 {
				zeros++
			}
			if want := xv[i] * m / (1 - ratio); math.Abs(float64(y[i]-want)) > 1e-6 {
				t.Fatalf("ratio %v: y[%d] = %v (want x*mask/(1-ratio) = %v)", ratio, i, y[i], want)
			}
		}
		// The dropped fraction is a binomial proportion: its standard
		// deviation is sqrt(p(1-p)/n) <= 0.0036; allow 5 of them.
		if frac := float64(zeros) / float64(n); math.Abs(frac-float64(ratio)) > 0.018 {
			t.Errorf("ratio %v: dropped %.4f of the values", ratio, frac)
		}
		y2, mask2 := run(ratio, 42)
		AssertClose(t, fmt.Sprintf("ratio %v same seed mask", ratio), mask2, mask, TolExact)
		AssertClose(t, fmt.Sprintf("ratio %v same seed y", ratio), y2, y, TolExact)
		_, mask3 := run(ratio, 43)
		if _, same := Close(mask3, mask, TolExact); same {
			t.Errorf("ratio %v: seeds 42 and 43 give the same mask", ratio)
		}
		// Backward: dx = dy*mask/(1-ratio).
		dyv := Rand(r, n, -1, 1)
		want := make([]float32, n)
		for i := range want {
			want[i] = dyv[i] * mask[i] / (1 - ratio)
		}
		dx := NewGuarded(t, b, kernels.Shape{n}, 99)
		if err := b.DropoutBackward(dx.T, Upload(t, b, dyv, n), Upload(t, b, mask, n), ratio); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, fmt.Sprintf("dropout backward ratio %v", ratio), dx.Check(t, "dropout backward"), want, TolF32)
	}
	// Ratio 0 is the identity with an all-ones mask.
	y, mask := run(0, 7)
	AssertClose(t, "dropout ratio 0 y", y, xv, TolExact)
	if !allEqual(mask, 1) {
		t.Errorf("dropout ratio 0: mask has zeros")
	}
	// Masks of consecutive elements are not correlated with their
	// neighbours' (a weak test of the generator: P(both kept) ~ 0.25 at
	// ratio 0.5).
	_, mask = run(0.5, 99)
	both := 0
	for i := 1; i < n; i++ {
		if mask[i] == 1 && mask[i-1] == 1 {
			both++
		}
	}
	if frac := float64(both) / float64(n-1); math.Abs(frac-0.25) > 0.02 {
		t.Errorf("dropout 0.5: neighbours both kept in %.4f of pairs (want ~0.25)", frac)
	}
}

func actWantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
	}
}

func testActErrors(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, make([]float32, 6), 2, 3)
	y := Upload(t, b, make([]float32, 6), 3, 2) // same size, other shape: fine
	short := Upload(t, b, make([]float32, 5), 5)
	relu := kernels.Act{Kind: kernels.ActRelu}
	if err := b.Activation(y, x, relu); err != nil {
		t.Errorf("activation into a (3,2) y from a (2,3) x: %v (want nil: only sizes must match)", err)
	}
	actWantErr(t, "activation y size", b.Activation(short, x, relu), kernels.ErrShape)
	actWantErr(t, "activation nil x", b.Activation(y, nil, relu), kernels.ErrShape)
	actWantErr(t, "activation unknown kind", b.Activation(y, x, kernels.Act{Kind: 99}), kernels.ErrUnsupported)
	actWantErr(t, "activation backward dy size", b.ActivationBackward(x, short, x, y, relu), kernels.ErrShape)
	actWantErr(t, "activation backward y size", b.ActivationBackward(x, x, x, short, relu), kernels.ErrShape)
	actWantErr(t, "activation backward unknown kind", b.ActivationBackward(x, x, x, y, kernels.Act{Kind: -1}), kernels.ErrUnsupported)
	actWantErr(t, "dropout ratio 1", b.Dropout(y, Upload(t, b, make([]float32, 6), 6), x, 1, 0), kernels.ErrParam)
	actWantErr(t, "dropout ratio -0.1", b.Dropout(y, Upload(t, b, make([]float32, 6), 6), x, -0.1, 0), kernels.ErrParam)
	actWantErr(t, "dropout ratio NaN", b.Dropout(y, Upload(t, b, make([]float32, 6), 6), x, float32(math.NaN()), 0), kernels.ErrParam)
	actWantErr(t, "dropout mask size", b.Dropout(y, short, x, 0.5, 0), kernels.ErrShape)
	actWantErr(t, "dropout backward mask size", b.DropoutBackward(x, y, short, 0.5), kernels.ErrShape)
	actWantErr(t, "dropout backward ratio 1", b.DropoutBackward(x, y, y, 1), kernels.ErrParam)
}
