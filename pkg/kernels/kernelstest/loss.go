package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"vireo/pkg/kernels"
)

func testLoss(t *testing.T, b kernels.Backend) {
	t.Run("bce", func(t *testing.T) { testLossBCEHand(t, b) })
	t.Run("cross_entropy", func(t *testing.T) { testLossCEHand(t, b) })
	t.Run("mse", func(t *testing.T) { testLossMSEHand(t, b) })
	t.Run("random", func(t *testing.T) { testLossRandom(t, b) })
	t.Run("grad", func(t *testing.T) { testLossGrad(t, b) })
	t.Run("errors", func(t *testing.T) { testLossErrors(t, b) })
	if ls, ok := b.(kernels.LabelSmoothingOps); ok {
		t.Run("smoothing", func(t *testing.T) { testLossSmoothing(t, b, ls) })
	}
}

// testLossSmoothing checks label-smoothed cross-entropy (an optional
// interface): by hand on uniform logits, against the reference on random
// cases with weights and an ignore index (eps 0 must be plain
// cross-entropy), by central differences, and its parameter check.
func testLossSmoothing(t *testing.T, b kernels.Backend, ls kernels.LabelSmoothingOps) {
	// Uniform logits over C = 5: every -log p_c is log 5, so the loss is
	// log 5 for any eps; dx = (1/5 - (1-eps)*onehot - eps/5)/N.
	const eps = 0.1
	x0 := Upload(t, b, make([]float32, 15), 3, 5)
	t0 := Upload(t, b, []float32{4, 0, 2}, 3)
	lsAssert(t, "smooth uniform", lsFwd(t, b, "smooth", func(l *kernels.Tensor) error { return ls.CrossEntropySmooth(l, x0, t0, nil, -1, eps) }), math.Log(5), TolF32)
	want := make([]float32, 15)
	for n, k := range []int{4, 0, 2} {
		for c := range 5 {
			g := 0.2 - eps/5
			if c == k {
				g -= 1 - eps
			}
			want[n*5+c] = float32(g / 3)
		}
	}
	AssertClose(t, "smooth uniform dx", lsBwd(t, b, "smooth", x0.Shape, func(dx *kernels.Tensor) error {
		return ls.CrossEntropySmoothBackward(dx, x0, t0, nil, -1, eps, 1)
	}), want, TolF32)

	r := rand.New(rand.NewPCG(15, 16))
	for _, xs := range []kernels.Shape{{3, 5}, {2, 3, 4, 4}, {2, 2, 40, 41}} {
		for _, e := range []float32{0, 0.1, 0.3} {
			name := fmt.Sprintf("smooth %v eps=%v", xs, e)
			wv := lsWeights(r, xs[0], true)
			w := lsUploadW(t, b, wv)
			x := Rand(r, xs.Numel(), -4, 4)
			xt := Upload(t, b, x, xs...)
			ts := append(kernels.Shape{xs[0]}, xs[2:]...)
			tc := lsTargets(r, ts.Numel(), xs[1], 255)
			tct := Upload(t, b, tc, ts...)
			wantL, wantDx := refLossCESmooth(x, xs, tc, wv, 255, float64(e))
			lsAssert(t, name, lsFwd(t, b, name, func(l *kernels.Tensor) error { return ls.CrossEntropySmooth(l, xt, tct, w, 255, e) }), wantL, TolF32)
			AssertClose(t, name+" dx", lsBwd(t, b, name, xs, func(dx *kernels.Tensor) error {
				return ls.CrossEntropySmoothBackward(dx, xt, tct, w, 255, e, 1)
			}), wantDx, TolF32)
		}
	}

	xs := kernels.Shape{2, 3, 2, 3}
	x := Upload(t, b, Rand(r, xs.Numel(), -2, 2), xs...)
	tc := Upload(t, b, lsTargets(r, 12, 3, 255), 2, 2, 3)
	w := lsUploadW(t, b, lsWeights(r, 2, true))
	lsGradCheck(t, b, "smooth", x,
		func(l *kernels.Tensor) error { return ls.CrossEntropySmooth(l, x, tc, w, 255, 0.2) },
		func(dx *kernels.Tensor, s float32) error {
			return ls.CrossEntropySmoothBackward(dx, x, tc, w, 255, 0.2, s)
		})

	l, err := b.Alloc(kernels.Shape{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []float32{-0.1, 1, float32(math.NaN())} {
		lsWantErr(t, fmt.Sprintf("smooth eps=%v", e), ls.CrossEntropySmooth(l, x, tc, nil, 255, e), kernels.ErrParam, "smoothing")
		lsWantErr(t, fmt.Sprintf("smooth backward eps=%v", e), ls.CrossEntropySmoothBackward(x, x, tc, nil, 255, e, 1), kernels.ErrParam, "smoothing")
	}
}

// lsFwd runs a loss into a guarded 1-element tensor and returns its value.
func lsFwd(t *testing.T, b kernels.Backend, name string, f func(loss *kernels.Tensor) error) float32 {
	t.Helper()
	l := NewGuarded(t, b, kernels.Shape{1}, 123)
	if err := f(l.T); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l.Check(t, name)[0]
}

// lsBwd runs a loss backward into a guarded dx (filled with junk the
// backward must overwrite) and returns dx.
func lsBwd(t *testing.T, b kernels.Backend, name string, xs kernels.Shape, f func(dx *kernels.Tensor) error) []float32 {
	t.Helper()
	dx := NewGuarded(t, b, xs, 9)
	if err := f(dx.T); err != nil {
		t.Fatalf("%s backward: %v", name, err)
	}
	return dx.Check(t, name+" backward")
}

func lsAssert(t *testing.T, name string, got float32, want float64, tol Tol) {
	t.Helper()
	AssertClose(t, name, []float32{got}, []float32{float32(want)}, tol)
}

func testLossBCEHand(t *testing.T, b kernels.Backend) {
	// Logits 0: sigmoid 1/2, so every element costs log 2 whatever its
	// target (soft targets too); dx = (1/2 - t)/6.
	tv := []float32{1, 0, 1, 0, 0.3, 1}
	x0, t0 := Upload(t, b, make([]float32, 6), 2, 3), Upload(t, b, tv, 2, 3)
	lsAssert(t, "bce zero logits", lsFwd(t, b, "bce", func(l *kernels.Tensor) error { return b.BCEWithLogits(l, x0, t0, nil) }), math.Ln2, TolF32)
	want := make([]float32, 6)
	for i, v := range tv {
		want[i] = (0.5 - v) / 6
	}
	AssertClose(t, "bce zero logits dx", lsBwd(t, b, "bce", x0.Shape, func(dx *kernels.Tensor) error { return b.BCEWithLogitsBackward(dx, x0, t0, nil, 1) }), want, TolF32)

	// x = (2, -1), t = (1, 0), N = 2: l0 = max(2,0) - 2 + log1p(e^-2) =
	// 0.12692801, l1 = 0 + log1p(e^-1) = 0.31326169; mean 0.22009485.
	// Weights (3, 1): (3*0.12692801 + 0.31326169)/4 = 0.17351143.
	// Backward, scale 2: dx0 = 2*3*(sigmoid(2) - 1)/4 = -0.17880438,
	// dx1 = 2*1*sigmoid(-1)/4 = 0.13447071.
	x, tg, w := Upload(t, b, []float32{2, -1}, 2, 1), Upload(t, b, []float32{1, 0}, 2, 1), Upload(t, b, []float32{3, 1}, 2)
	lsAssert(t, "bce", lsFwd(t, b, "bce", func(l *kernels.Tensor) error { return b.BCEWithLogits(l, x, tg, nil) }), 0.22009485, TolF32)
	lsAssert(t, "bce weighted", lsFwd(t, b, "bce", func(l *kernels.Tensor) error { return b.BCEWithLogits(l, x, tg, w) }), 0.17351143, TolF32)
	AssertClose(t, "bce weighted dx", lsBwd(t, b, "bce", x.Shape, func(dx *kernels.Tensor) error { return b.BCEWithLogitsBackward(dx, x, tg, w, 2) }),
		[]float32{-0.17880438, 0.13447071}, TolF32)

	// Saturated logits: the naive log(sigmoid(-100)) is log(0) in float32;
	// the stable form gives 100, 100, ~0, ~0: mean 50, and dx = (sigmoid(x)
	// - t)/4 = (1, -1, ~0, ~0)/4.
	xs, ts := Upload(t, b, []float32{100, -100, 100, -100}, 4), Upload(t, b, []float32{0, 1, 1, 0}, 4)
	lsAssert(t, "bce saturated", lsFwd(t, b, "bce", func(l *kernels.Tensor) error { return b.BCEWithLogits(l, xs, ts, nil) }), 50, TolF32)
	AssertClose(t, "bce saturated dx", lsBwd(t, b, "bce", xs.Shape, func(dx *kernels.Tensor) error { return b.BCEWithLogitsBackward(dx, xs, ts, nil, 1) }),
		[]float32{0.25, -0.25, 0, 0}, TolF32)

	// All weights 0: nothing counts, loss and grads 0 (not NaN).
	wz := Upload(t, b, []float32{0, 0}, 2)
	lsAssert(t, "bce zero weights", lsFwd(t, b, "bce", func(l *kernels.Tensor) error { return b.BCEWithLogits(l, x, tg, wz) }), 0, TolExact)
	AssertClose(t, "bce zero weights dx", lsBwd(t, b, "bce", x.Shape, func(dx *kernels.Tensor) error { return b.BCEWithLogitsBackward(dx, x, tg, wz, 1) }),
		[]float32{0, 0}, TolExact)
}

func testLossCEHand(t *testing.T, b kernels.Backend) {
	// Uniform logits over C = 5 classes: every row costs log 5 whatever
	// its class; dx = (1/5 - onehot)/N.
	x0 := Upload(t, b, make([]float32, 15), 3, 5)
	t0 := Upload(t, b, []float32{4, 0, 2}, 3)
	lsAssert(t, "ce uniform", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, x0, t0, nil, -1) }), math.Log(5), TolF32)
	want := make([]float32, 15)
	for n, k := range []int{4, 0, 2} {
		for c := range 5 {
			want[n*5+c] = 0.2 / 3
			if c == k {
				want[n*5+c] = (0.2 - 1) / 3
			}
		}
	}
	AssertClose(t, "ce uniform dx", lsBwd(t, b, "ce", x0.Shape, func(dx *kernels.Tensor) error { return b.CrossEntropyBackward(dx, x0, t0, nil, -1, 1) }), want, TolF32)

	// Row 0 = (1, 2, 3), class 2: lse = 3 + log(e^-2 + e^-1 + 1) =
	// 3.40760596, loss 0.40760596. Row 1 = (0, 0, log 2), class 0: exps
	// (1, 1, 2) sum 4, loss log 4 = 1.38629436. Mean 0.89695016; weights
	// (1, 3): (0.40760596 + 3*1.38629436)/4 = 1.14162226.
	// Backward with weights: row 0: softmax (0.09003057, 0.24472847,
	// 0.66524096) - (0,0,1), times 1/4; row 1: ((1,1,2)/4 - (1,0,0))*3/4 =
	// (-0.5625, 0.1875, 0.375).
	x := Upload(t, b, []float32{1, 2, 3, 0, 0, float32(math.Ln2)}, 2, 3)
	tg, w := Upload(t, b, []float32{2, 0}, 2), Upload(t, b, []float32{1, 3}, 2)
	lsAssert(t, "ce", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, x, tg, nil, -1) }), 0.89695016, TolF32)
	lsAssert(t, "ce weighted", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, x, tg, w, -1) }), 1.14162226, TolF32)
	AssertClose(t, "ce weighted dx", lsBwd(t, b, "ce", x.Shape, func(dx *kernels.Tensor) error { return b.CrossEntropyBackward(dx, x, tg, w, -1, 1) }),
		[]float32{0.02250764, 0.06118212, -0.08368976, -0.5625, 0.1875, 0.375}, TolF32)

	// Per pixel, (N,C,H,W) = (1,2,2,2), Void = 255 ignored:
	//   pixel 0: logits (0, log 3), class 1: -log(3/4) = 0.28768207
	//   pixel 1: (0, 0), class 0: log 2 = 0.69314718
	//   pixel 2: (5, -5), 255: ignored (neither numerator nor denominator)
	//   pixel 3: (0, -log 3), class 0: -log(3/4) = 0.28768207
	// loss = (2*0.28768207 + 0.69314718)/3 = 0.42283711.
	// dx = (softmax - onehot)/3: pixel 0 (1/4, -1/4)/3, pixel 1 (-1/2,
	// 1/2)/3, pixel 2 (0, 0), pixel 3 (-1/4, 1/4)/3; channel-major.
	l3 := float32(math.Log(3))
	xp := Upload(t, b, []float32{0, 0, 5, 0, l3, 0, -5, -l3}, 1, 2, 2, 2)
	tp := Upload(t, b, []float32{1, 0, 255, 0}, 1, 2, 2)
	lsAssert(t, "ce pixels ignore", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, xp, tp, nil, 255) }), 0.42283711, TolF32)
	const q, h = 1.0 / 12, 1.0 / 6
	AssertClose(t, "ce pixels ignore dx", lsBwd(t, b, "ce", xp.Shape, func(dx *kernels.Tensor) error { return b.CrossEntropyBackward(dx, xp, tp, nil, 255, 1) }),
		[]float32{q, -h, 0, -q, -q, h, 0, q}, TolF32)
	// The same with a per-sample weight: one sample, so the weight cancels.
	w1 := Upload(t, b, []float32{2.5}, 1)
	lsAssert(t, "ce pixels weighted", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, xp, tp, w1, 255) }), 0.42283711, TolF32)

	// Every pixel ignored: loss 0 and dx 0 (PyTorch gives NaN; a batch of
	// all-Void masks must not poison training).
	ta := Upload(t, b, []float32{255, 255, 255, 255}, 1, 2, 2)
	lsAssert(t, "ce all ignored", lsFwd(t, b, "ce", func(l *kernels.Tensor) error { return b.CrossEntropy(l, xp, ta, nil, 255) }), 0, TolExact)
	AssertClose(t, "ce all ignored dx", lsBwd(t, b, "ce", xp.Shape, func(dx *kernels.Tensor) error { return b.CrossEntropyBackward(dx, xp, ta, nil, 255, 1) }),
		make([]float32, 8), TolExact)

	// An ignore index inside [0, C) ignores that class (as PyTorch does):
	// ignoring class 0 leaves pixel 0 only.
	lsAssert(t, "ce ignore class 0", lsFwd(t, b, "ce", func(l *kernels.Tensor) error {
		return b.CrossEntropy(l, xp, Upload(t, b, []float32{1, 0, 0, 0}, 1, 2, 2), nil, 0)
	}), 0.28768207, TolF32)
}

func testLossMSEHand(t *testing.T, b kernels.Backend) {
	// x = (1,2,3,4), t = (0,2,5,4): squares (1,0,4,0), mean 1.25;
	// weights (1,3) per sample of 2: (1*1 + 3*4)/(2*1 + 2*3) = 13/8.
	// dx = 2*w*(x-t)/den: unweighted (2,0,-4,0)/4; weighted
	// (2*1*1, 0, 2*3*(-2), 0)/8 = (0.25, 0, -1.5, 0).
	x := Upload(t, b, []float32{1, 2, 3, 4}, 2, 2)
	tg := Upload(t, b, []float32{0, 2, 5, 4}, 2, 1, 2) // flat: same elements per sample
	w := Upload(t, b, []float32{1, 3}, 2)
	lsAssert(t, "mse", lsFwd(t, b, "mse", func(l *kernels.Tensor) error { return b.MSE(l, x, tg, nil) }), 1.25, TolF32)
	lsAssert(t, "mse weighted", lsFwd(t, b, "mse", func(l *kernels.Tensor) error { return b.MSE(l, x, tg, w) }), 1.625, TolF32)
	AssertClose(t, "mse dx", lsBwd(t, b, "mse", x.Shape, func(dx *kernels.Tensor) error { return b.MSEBackward(dx, x, tg, nil, 1) }),
		[]float32{0.5, 0, -1, 0}, TolF32)
	AssertClose(t, "mse weighted dx", lsBwd(t, b, "mse", x.Shape, func(dx *kernels.Tensor) error { return b.MSEBackward(dx, x, tg, w, 1) }),
		[]float32{0.25, 0, -1.5, 0}, TolF32)
}

// lsTargets returns n class ids in [0, C), about a fifth of them replaced by
// ignore when ignore >= 0.
func lsTargets(r *rand.Rand, n, C, ignore int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.IntN(C))
		if ignore >= 0 && r.IntN(5) == 0 {
			v[i] = float32(ignore)
		}
	}
	return v
}

// lsWeights returns nil (no weight) or N weights in [0, 2) with one 0.
func lsWeights(r *rand.Rand, N int, weighted bool) []float32 {
	if !weighted {
		return nil
	}
	w := Rand(r, N, 0, 2)
	w[r.IntN(N)] = 0
	return w
}

func lsUploadW(t *testing.T, b kernels.Backend, w []float32) *kernels.Tensor {
	if w == nil {
		return nil
	}
	return Upload(t, b, w, len(w))
}

// testLossRandom checks forward and backward against the float64
// references on shapes that cross the backends' blocks and tiles (3200
// pixels per image, 3000 rows) as well as small ones.
func testLossRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, xs := range []kernels.Shape{{3, 5}, {2, 3, 4, 4}, {3000, 4}, {2, 2, 40, 41}} {
		for _, weighted := range []bool{false, true} {
			name := fmt.Sprintf("%v weighted=%v", xs, weighted)
			n := xs.Numel()
			wv := lsWeights(r, xs[0], weighted)
			w := lsUploadW(t, b, wv)
			x := Rand(r, n, -4, 4)
			xt := Upload(t, b, x, xs...)

			tb := Rand(r, n, 0, 1)
			tbt := Upload(t, b, tb, xs...)
			wantL, wantDx := refLossBCE(x, tb, wv, xs[0])
			lsAssert(t, "bce "+name, lsFwd(t, b, name, func(l *kernels.Tensor) error { return b.BCEWithLogits(l, xt, tbt, w) }), wantL, TolF32)
			AssertClose(t, "bce dx "+name, lsBwd(t, b, name, xs, func(dx *kernels.Tensor) error { return b.BCEWithLogitsBackward(dx, xt, tbt, w, 1) }), wantDx, TolF32)

			tm := Rand(r, n, -3, 3)
			tmt := Upload(t, b, tm, xs...)
			wantL, wantDx = refLossMSE(x, tm, wv, xs[0])
			lsAssert(t, "mse "+name, lsFwd(t, b, name, func(l *kernels.Tensor) error { return b.MSE(l, xt, tmt, w) }), wantL, TolF32)
			AssertClose(t, "mse dx "+name, lsBwd(t, b, name, xs, func(dx *kernels.Tensor) error { return b.MSEBackward(dx, xt, tmt, w, 1) }), wantDx, TolF32)

			ts := append(kernels.Shape{xs[0]}, xs[2:]...)
			for _, ignore := range []int{-1, 255} {
				tc := lsTargets(r, ts.Numel(), xs[1], ignore)
				tct := Upload(t, b, tc, ts...)
				cname := fmt.Sprintf("ce %s ignore=%d", name, ignore)
				wantL, wantDx = refLossCE(x, xs, tc, wv, ignore)
				lsAssert(t, cname, lsFwd(t, b, cname, func(l *kernels.Tensor) error { return b.CrossEntropy(l, xt, tct, w, ignore) }), wantL, TolF32)
				AssertClose(t, cname+" dx", lsBwd(t, b, cname, xs, func(dx *kernels.Tensor) error { return b.CrossEntropyBackward(dx, xt, tct, w, ignore, 1) }), wantDx, TolF32)
			}
		}
	}
}

// lsGradCheck compares a loss backward (at scale 1 and 2.5) with central
// differences of its forward.
func lsGradCheck(t *testing.T, b kernels.Backend, name string, x *kernels.Tensor, fwd func(l *kernels.Tensor) error, bwd func(dx *kernels.Tensor, scale float32) error) {
	t.Helper()
	l, err := b.Alloc(kernels.Shape{1})
	if err != nil {
		t.Fatal(err)
	}
	num := NumericGrad(t, b, x, 1e-2, func() float64 {
		if err := fwd(l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return float64(Download(t, b, l)[0])
	})
	got := lsBwd(t, b, name, x.Shape, func(dx *kernels.Tensor) error { return bwd(dx, 1) })
	AssertClose(t, name+" grad", got, num, TolGrad)
	scaled := lsBwd(t, b, name, x.Shape, func(dx *kernels.Tensor) error { return bwd(dx, 2.5) })
	for i := range got {
		got[i] *= 2.5
	}
	AssertClose(t, name+" grad scale 2.5", scaled, got, TolF32)
}

func testLossGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, xs := range []kernels.Shape{{4, 3}, {2, 3, 2, 3}} {
		for _, weighted := range []bool{false, true} {
			name := fmt.Sprintf("%v weighted=%v", xs, weighted)
			w := lsUploadW(t, b, lsWeights(r, xs[0], weighted))
			x := Upload(t, b, Rand(r, xs.Numel(), -2, 2), xs...)
			tb := Upload(t, b, Rand(r, xs.Numel(), 0, 1), xs...)
			lsGradCheck(t, b, "bce "+name, x,
				func(l *kernels.Tensor) error { return b.BCEWithLogits(l, x, tb, w) },
				func(dx *kernels.Tensor, s float32) error { return b.BCEWithLogitsBackward(dx, x, tb, w, s) })
			tm := Upload(t, b, Rand(r, xs.Numel(), -2, 2), xs...)
			lsGradCheck(t, b, "mse "+name, x,
				func(l *kernels.Tensor) error { return b.MSE(l, x, tm, w) },
				func(dx *kernels.Tensor, s float32) error { return b.MSEBackward(dx, x, tm, w, s) })
			ts := append(kernels.Shape{xs[0]}, xs[2:]...)
			tc := Upload(t, b, lsTargets(r, ts.Numel(), xs[1], 255), ts...)
			lsGradCheck(t, b, "ce "+name, x,
				func(l *kernels.Tensor) error { return b.CrossEntropy(l, x, tc, w, 255) },
				func(dx *kernels.Tensor, s float32) error { return b.CrossEntropyBackward(dx, x, tc, w, 255, s) })
		}
	}
}

// lsWantErr fails t unless err wraps target and mentions each of says.
func lsWantErr(t *testing.T, name string, err, target error, says ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
		return
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not mention %q", name, err, s)
		}
	}
}

func testLossErrors(t *testing.T, b kernels.Backend) {
	l := Upload(t, b, []float32{0}, 1)
	l2 := Upload(t, b, []float32{0, 0}, 2)
	x := Upload(t, b, make([]float32, 6), 2, 3)
	dx := Upload(t, b, make([]float32, 6), 2, 3)
	bad := Upload(t, b, make([]float32, 6), 3, 2)
	t2 := Upload(t, b, []float32{1, 2}, 2)
	w2 := Upload(t, b, []float32{1, 1}, 2)

	// Cross-entropy targets: out of range, negative but not ignored,
	// fractional, NaN. The error names the value.
	for _, c := range []struct {
		v    float32
		says string
	}{{7, "= 7"}, {3, "= 3"}, {-2, "= -2"}, {1.5, "= 1.5"}, {float32(math.NaN()), "NaN"}} {
		tg := Upload(t, b, []float32{0, c.v}, 2)
		lsWantErr(t, fmt.Sprintf("ce target %v", c.v), b.CrossEntropy(l, x, tg, nil, -1), kernels.ErrParam, c.says, "target[1]")
		lsWantErr(t, fmt.Sprintf("ce backward target %v", c.v), b.CrossEntropyBackward(dx, x, tg, nil, -1, 1), kernels.ErrParam, c.says)
	}
	// 255 is an error unless it is the ignore index.
	tv := Upload(t, b, []float32{0, 1, 255, 0}, 1, 2, 2)
	lsWantErr(t, "ce void not ignored", b.CrossEntropy(l, Upload(t, b, make([]float32, 8), 1, 2, 2, 2), tv, nil, -1), kernels.ErrParam, "255")

	// Shapes.
	lsWantErr(t, "ce target shape", b.CrossEntropy(l, x, Upload(t, b, []float32{0, 1, 2}, 3), nil, -1), kernels.ErrShape)
	lsWantErr(t, "ce x rank 1", b.CrossEntropy(l, Upload(t, b, []float32{0, 1}, 2), Upload(t, b, []float32{0}, 1), nil, -1), kernels.ErrShape)
	lsWantErr(t, "ce pixels target shape", b.CrossEntropy(l, Upload(t, b, make([]float32, 8), 1, 2, 2, 2), Upload(t, b, make([]float32, 4), 1, 4), nil, -1), kernels.ErrShape)
	lsWantErr(t, "ce loss 2 elements", b.CrossEntropy(l2, x, t2, nil, -1), kernels.ErrShape)
	lsWantErr(t, "ce dx shape", b.CrossEntropyBackward(bad, x, t2, nil, -1, 1), kernels.ErrShape)
	lsWantErr(t, "ce weight shape", b.CrossEntropy(l, x, t2, Upload(t, b, []float32{1, 1, 1}, 3), -1), kernels.ErrShape)
	lsWantErr(t, "bce target shape", b.BCEWithLogits(l, x, bad, nil), kernels.ErrShape)
	lsWantErr(t, "bce loss 2 elements", b.BCEWithLogits(l2, x, x, nil), kernels.ErrShape)
	lsWantErr(t, "bce dx shape", b.BCEWithLogitsBackward(bad, x, x, nil, 1), kernels.ErrShape)
	lsWantErr(t, "bce weight shape", b.BCEWithLogits(l, x, x, Upload(t, b, []float32{1}, 1)), kernels.ErrShape)
	lsWantErr(t, "mse target elements", b.MSE(l, x, Upload(t, b, make([]float32, 4), 2, 2), nil), kernels.ErrShape)
	lsWantErr(t, "mse target samples", b.MSE(l, x, Upload(t, b, make([]float32, 6), 1, 6), nil), kernels.ErrShape)
	lsWantErr(t, "mse dx shape", b.MSEBackward(bad, x, x, nil, 1), kernels.ErrShape)
	lsWantErr(t, "mse x scalar", b.MSE(l, Upload(t, b, []float32{1}), Upload(t, b, []float32{1}), nil), kernels.ErrShape)

	// Weights must be finite and >= 0.
	for _, v := range []float32{-1, float32(math.NaN()), float32(math.Inf(1))} {
		wb := Upload(t, b, []float32{1, v}, 2)
		lsWantErr(t, fmt.Sprintf("ce weight %v", v), b.CrossEntropy(l, x, t2, wb, -1), kernels.ErrParam, "weight[1]")
		lsWantErr(t, fmt.Sprintf("bce weight %v", v), b.BCEWithLogits(l, x, x, wb), kernels.ErrParam, "weight[1]")
		lsWantErr(t, fmt.Sprintf("mse backward weight %v", v), b.MSEBackward(dx, x, x, wb, 1), kernels.ErrParam, "weight[1]")
	}

	// A nil dx is skipped.
	for name, err := range map[string]error{
		"bce": b.BCEWithLogitsBackward(nil, x, x, w2, 1),
		"ce":  b.CrossEntropyBackward(nil, x, t2, w2, -1, 1),
		"mse": b.MSEBackward(nil, x, x, w2, 1),
	} {
		if err != nil {
			t.Errorf("%s backward with nil dx: %v (want nil, skipped)", name, err)
		}
	}
}
