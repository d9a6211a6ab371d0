package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testNorm(t *testing.T, b kernels.Backend) {
	t.Run("hand", func(t *testing.T) { testNormHand(t, b) })
	t.Run("inference", func(t *testing.T) { testNormInference(t, b) })
	t.Run("training", func(t *testing.T) { testNormTraining(t, b) })
	t.Run("grad", func(t *testing.T) { testNormGrad(t, b) })
	t.Run("errors", func(t *testing.T) { testNormErrors(t, b) })
	if f, ok := b.(kernels.FusedBNReluOps); ok {
		t.Run("fused_relu", func(t *testing.T) { testNormFusedRelu(t, b, f) })
	}
}

// bnShapes are the (N,C,...) shapes the random cases use: rank 2 (after a
// Linear layer), 3, 4 and 5, and C larger than the rest.
var bnShapes = []kernels.Shape{{4, 3}, {2, 5, 7}, {2, 3, 4, 5}, {1, 4, 3, 2, 3}, {3, 17, 2, 2}}

// bnDims splits x's shape into N, C and the spatial size S.
func bnDims(s kernels.Shape) (n, c, sp int) {
	return s[0], s[1], s.Numel() / (s[0] * s[1])
}

// bnUploadGuarded makes a guarded tensor holding vals (for outputs that are
// also inputs: the running statistics).
func bnUploadGuarded(t *testing.T, b kernels.Backend, vals []float32, s ...int) *Guarded {
	t.Helper()
	g := NewGuarded(t, b, kernels.Shape(s), 0)
	if err := b.Upload(g.T, vals); err != nil {
		t.Fatal(err)
	}
	return g
}

func testNormHand(t *testing.T, b kernels.Backend) {
	// Inference, (N,C,W) = (1,2,3): channel 0 has mean 0, var 4, scale 2,
	// bias 1: y = 2*x/2 + 1; channel 1 has mean 1, var 0.25-eps, scale
	// -1, bias 0: y = -(x-1)/0.5.
	x := Upload(t, b, []float32{-1, 0, 1, 1, 2, 0}, 1, 2, 3)
	y := NewGuarded(t, b, kernels.Shape{1, 2, 3}, 99)
	eps := float32(1.0 / 64)
	err := b.BatchNormInference(y.T, x, Upload(t, b, []float32{2, -1}, 2), Upload(t, b, []float32{1, 0}, 2),
		Upload(t, b, []float32{0, 1}, 2), Upload(t, b, []float32{4 - eps, 0.25 - eps}, 2), eps)
	if err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "inference hand", y.Check(t, "inference hand"), []float32{0, 1, 2, 0, -2, 2}, TolF32)

	// Training, (N,C,W) = (1,2,3), eps 0, momentum 0.9: channel 0 = 1,2,3
	// has mean 2, biased var 2/3 (invstd sqrt(3/2)), unbiased var 1;
	// channel 1 = 2,4,6 has mean 4, biased var 8/3, unbiased 4. Running
	// mean 0 -> 0.1*mean; running var 1 -> 0.9 + 0.1*unbiased.
	x = Upload(t, b, []float32{1, 2, 3, 2, 4, 6}, 1, 2, 3)
	y = NewGuarded(t, b, kernels.Shape{1, 2, 3}, 99)
	rm, rv := bnUploadGuarded(t, b, []float32{0, 0}, 2), bnUploadGuarded(t, b, []float32{1, 1}, 2)
	sm, si := NewGuarded(t, b, kernels.Shape{2}, 99), NewGuarded(t, b, kernels.Shape{2}, 99)
	scale, bias := Upload(t, b, []float32{1, 2}, 2), Upload(t, b, []float32{0, 10}, 2)
	if err := b.BatchNormTraining(y.T, x, scale, bias, rm.T, rv.T, sm.T, si.T, 0, 0.9); err != nil {
		t.Fatal(err)
	}
	r := float32(math.Sqrt(1.5))
	AssertClose(t, "training hand y", y.Check(t, "y"), []float32{-r, 0, r, 10 - 2*r, 10, 10 + 2*r}, TolF32)
	AssertClose(t, "training hand running mean", rm.Check(t, "running mean"), []float32{0.2, 0.4}, TolF32)
	AssertClose(t, "training hand running var", rv.Check(t, "running var"), []float32{1.0, 1.3}, TolF32)
	AssertClose(t, "training hand saved mean", sm.Check(t, "saved mean"), []float32{2, 4}, TolF32)
	AssertClose(t, "training hand saved invstd", si.Check(t, "saved invstd"), []float32{r, r / 2}, TolF32)

	// Backward of channel 0 with dy = 1,0,0: xhat = -r,0,r, dbias = 1,
	// dscale = -r, dx = scale*invstd/3*(3*dy - 1 - xhat*(-r))
	// = r/3*(3-1-1.5, -1, -1+1.5) = r/3*(0.5, -1, 0.5). Channel 1 with
	// dy = 1,1,1: dbias 3, dscale 0, dx 0.
	dx, ds, db := NewGuarded(t, b, kernels.Shape{1, 2, 3}, 99), NewGuarded(t, b, kernels.Shape{2}, 99), NewGuarded(t, b, kernels.Shape{2}, 99)
	dy := Upload(t, b, []float32{1, 0, 0, 1, 1, 1}, 1, 2, 3)
	if err := b.BatchNormBackward(dx.T, ds.T, db.T, dy, x, scale, sm.T, si.T); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "backward hand dx", dx.Check(t, "dx"), []float32{r / 6, -r / 3, r / 6, 0, 0, 0}, Tol{Abs: 1e-6, Rel: 1e-4})
	AssertClose(t, "backward hand dscale", ds.Check(t, "dscale"), []float32{-r, 0}, Tol{Abs: 1e-6, Rel: 1e-4})
	AssertClose(t, "backward hand dbias", db.Check(t, "dbias"), []float32{1, 3}, TolF32)
}

// bnParams returns random scale, bias, mean and (positive) variance.
func bnParams(r *rand.Rand, c int) (scale, bias, mean, variance []float32) {
	return Rand(r, c, 0.5, 2), Rand(r, c, -1, 1), Rand(r, c, -1, 1), Rand(r, c, 0.1, 3)
}

func testNormInference(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, xs := range bnShapes {
		n, c, s := bnDims(xs)
		xv := Rand(r, xs.Numel(), -3, 3)
		sc, bi, mu, va := bnParams(r, c)
		want := refBatchNormInference(xv, n, c, s, sc, bi, mu, va, 1e-5)
		name := fmt.Sprintf("inference %v", xs)
		y := NewGuarded(t, b, xs, 99)
		x := Upload(t, b, xv, xs...)
		cs := func(v []float32) *kernels.Tensor { return Upload(t, b, v, c) }
		if err := b.BatchNormInference(y.T, x, cs(sc), cs(bi), cs(mu), cs(va), 1e-5); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name, y.Check(t, name), want, TolF32)
		// In place: y is x.
		if err := b.BatchNormInference(x, x, cs(sc), cs(bi), cs(mu), cs(va), 1e-5); err != nil {
			t.Fatalf("%s in place: %v", name, err)
		}
		AssertClose(t, name+" in place", Download(t, b, x), want, TolF32)
	}
}

func testNormTraining(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, xs := range bnShapes {
		n, c, s := bnDims(xs)
		// An offset far from 0 checks the variance is not computed as
		// E[x^2]-E[x]^2 in float32 (which loses the digits here).
		xv := Rand(r, xs.Numel(), 97, 103)
		sc, bi, rmv, rvv := bnParams(r, c)
		want := refBatchNormTraining(xv, n, c, s, sc, bi, rmv, rvv, 1e-5, 0.9)
		name := fmt.Sprintf("training %v", xs)
		y := NewGuarded(t, b, xs, 99)
		rm, rv := bnUploadGuarded(t, b, rmv, c), bnUploadGuarded(t, b, rvv, c)
		sm, si := NewGuarded(t, b, kernels.Shape{c}, 99), NewGuarded(t, b, kernels.Shape{c}, 99)
		err := b.BatchNormTraining(y.T, Upload(t, b, xv, xs...), Upload(t, b, sc, c), Upload(t, b, bi, c), rm.T, rv.T, sm.T, si.T, 1e-5, 0.9)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		AssertClose(t, name+" y", y.Check(t, "y"), want.y, Tol{Abs: 1e-4, Rel: 1e-4})
		AssertClose(t, name+" running mean", rm.Check(t, "running mean"), want.runMean, TolF32)
		AssertClose(t, name+" running var", rv.Check(t, "running var"), want.runVar, TolF32)
		AssertClose(t, name+" saved mean", sm.Check(t, "saved mean"), want.saveMean, TolF32)
		AssertClose(t, name+" saved invstd", si.Check(t, "saved invstd"), want.saveInvStd, Tol{Abs: 1e-4, Rel: 1e-4})

		// Backward against the term-by-term chain rule, every subset of
		// gradients (nil ones are skipped, the others unchanged).
		dyv := Rand(r, xs.Numel(), -1, 1)
		wdx, wds, wdb := refBatchNormBackward(dyv, xv, n, c, s, sc, want.saveMean, want.saveInvStd)
		for mask := range 8 {
			var dx, ds, db *Guarded
			var dxt, dst, dbt *kernels.Tensor
			if mask&1 != 0 {
				dx = NewGuarded(t, b, xs, 99)
				dxt = dx.T
			}
			if mask&2 != 0 {
				ds = NewGuarded(t, b, kernels.Shape{c}, 99)
				dst = ds.T
			}
			if mask&4 != 0 {
				db = NewGuarded(t, b, kernels.Shape{c}, 99)
				dbt = db.T
			}
			bname := fmt.Sprintf("%s backward mask %03b", name, mask)
			err := b.BatchNormBackward(dxt, dst, dbt, Upload(t, b, dyv, xs...), Upload(t, b, xv, xs...), Upload(t, b, sc, c), sm.T, si.T)
			if err != nil {
				t.Fatalf("%s: %v", bname, err)
			}
			if dx != nil {
				AssertClose(t, bname+" dx", dx.Check(t, "dx"), wdx, Tol{Abs: 1e-4, Rel: 1e-3})
			}
			if ds != nil {
				AssertClose(t, bname+" dscale", ds.Check(t, "dscale"), wds, Tol{Abs: 1e-4, Rel: 1e-3})
			}
			if db != nil {
				AssertClose(t, bname+" dbias", db.Check(t, "dbias"), wdb, Tol{Abs: 1e-4, Rel: 1e-4})
			}
		}
	}
	// Running statistics may be nil (a forward that only needs the batch
	// statistics); the result is the same.
	xs := kernels.Shape{2, 3, 4}
	xv := Rand(r, xs.Numel(), -1, 1)
	sc, bi, _, _ := bnParams(r, 3)
	want := refBatchNormTraining(xv, 2, 3, 4, sc, bi, make([]float32, 3), make([]float32, 3), 1e-3, 0.5)
	y := NewGuarded(t, b, xs, 99)
	sm, si := NewGuarded(t, b, kernels.Shape{3}, 99), NewGuarded(t, b, kernels.Shape{3}, 99)
	if err := b.BatchNormTraining(y.T, Upload(t, b, xv, xs...), Upload(t, b, sc, 3), Upload(t, b, bi, 3), nil, nil, sm.T, si.T, 1e-3, 0.5); err != nil {
		t.Fatalf("training without running statistics: %v", err)
	}
	AssertClose(t, "training without running statistics", y.Check(t, "y"), want.y, TolF32)
}

// testNormGrad checks BatchNormBackward against central differences of the
// training-mode forward (loss = Dot(y, w)) for x, scale and bias.
func testNormGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, xs := range []kernels.Shape{{3, 2}, {2, 3, 2, 3}, {1, 2, 5}} {
		_, c, _ := bnDims(xs)
		x := Upload(t, b, Rand(r, xs.Numel(), -2, 2), xs...)
		scale, bias := Upload(t, b, Rand(r, c, 0.5, 2), c), Upload(t, b, Rand(r, c, -1, 1), c)
		w := Rand(r, xs.Numel(), -1, 1)
		y, _ := b.Alloc(xs)
		sm, _ := b.Alloc(kernels.Shape{c})
		si, _ := b.Alloc(kernels.Shape{c})
		name := fmt.Sprintf("batchnorm grad %v", xs)
		loss := func() float64 {
			if err := b.BatchNormTraining(y, x, scale, bias, nil, nil, sm, si, 1e-3, 0.9); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return Dot(Download(t, b, y), w)
		}
		numX := NumericGrad(t, b, x, 1e-2, loss)
		numS := NumericGrad(t, b, scale, 1e-2, loss)
		numB := NumericGrad(t, b, bias, 1e-2, loss)
		loss() // the saved statistics of the unperturbed x
		dx, ds, db := NewGuarded(t, b, xs, 99), NewGuarded(t, b, kernels.Shape{c}, 99), NewGuarded(t, b, kernels.Shape{c}, 99)
		if err := b.BatchNormBackward(dx.T, ds.T, db.T, Upload(t, b, w, xs...), x, scale, sm, si); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		AssertClose(t, name+" dx", dx.Check(t, "dx"), numX, TolGrad)
		AssertClose(t, name+" dscale", ds.Check(t, "dscale"), numS, TolGrad)
		AssertClose(t, name+" dbias", db.Check(t, "dbias"), numB, TolGrad)
	}
}

func bnWantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
	}
}

func testNormErrors(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, make([]float32, 12), 2, 3, 2)
	y := Upload(t, b, make([]float32, 12), 2, 3, 2)
	c3 := func() *kernels.Tensor { return Upload(t, b, []float32{1, 1, 1}, 3) }
	c2 := Upload(t, b, []float32{1, 1}, 2)
	bnWantErr(t, "inference rank 1", b.BatchNormInference(Upload(t, b, make([]float32, 3), 3), Upload(t, b, make([]float32, 3), 3), c3(), c3(), c3(), c3(), 1e-5), kernels.ErrShape)
	bnWantErr(t, "inference y size", b.BatchNormInference(Upload(t, b, make([]float32, 6), 2, 3), x, c3(), c3(), c3(), c3(), 1e-5), kernels.ErrShape)
	bnWantErr(t, "inference scale size", b.BatchNormInference(y, x, c2, c3(), c3(), c3(), 1e-5), kernels.ErrShape)
	bnWantErr(t, "inference variance size", b.BatchNormInference(y, x, c3(), c3(), c3(), c2, 1e-5), kernels.ErrShape)
	bnWantErr(t, "inference nil mean", b.BatchNormInference(y, x, c3(), c3(), nil, c3(), 1e-5), kernels.ErrShape)
	sm, si := c3(), c3()
	bnWantErr(t, "training running mean size", b.BatchNormTraining(y, x, c3(), c3(), c2, c3(), sm, si, 1e-5, 0.9), kernels.ErrShape)
	bnWantErr(t, "training saved invstd size", b.BatchNormTraining(y, x, c3(), c3(), c3(), c3(), sm, c2, 1e-5, 0.9), kernels.ErrShape)
	bnWantErr(t, "training nil saved mean", b.BatchNormTraining(y, x, c3(), c3(), c3(), c3(), nil, si, 1e-5, 0.9), kernels.ErrShape)
	// One value per channel has no unbiased variance (PyTorch refuses it
	// too).
	one := Upload(t, b, make([]float32, 3), 1, 3)
	bnWantErr(t, "training one value per channel", b.BatchNormTraining(one, one, c3(), c3(), c3(), c3(), sm, si, 1e-5, 0.9), kernels.ErrShape)
	bnWantErr(t, "backward dy size", b.BatchNormBackward(y, nil, nil, Upload(t, b, make([]float32, 6), 2, 3), x, c3(), sm, si), kernels.ErrShape)
	bnWantErr(t, "backward dx size", b.BatchNormBackward(Upload(t, b, make([]float32, 6), 2, 3), nil, nil, y, x, c3(), sm, si), kernels.ErrShape)
	bnWantErr(t, "backward dscale size", b.BatchNormBackward(nil, c2, nil, y, x, c3(), sm, si), kernels.ErrShape)
	bnWantErr(t, "backward nil scale", b.BatchNormBackward(y, nil, nil, y, x, nil, sm, si), kernels.ErrShape)
	if err := b.BatchNormBackward(nil, nil, nil, y, x, c3(), sm, si); err != nil {
		t.Errorf("backward with every gradient nil: %v (want nil, nothing to do)", err)
	}
}

// testNormFusedRelu checks the optional BatchNormalization+Relu pair
// against the reference: the forward is Relu of the training forward
// (with the same statistics), the backward is the plain backward of dy
// masked by y > 0.
func testNormFusedRelu(t *testing.T, b kernels.Backend, f kernels.FusedBNReluOps) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, xs := range bnShapes {
		n, c, s := bnDims(xs)
		xv := Rand(r, xs.Numel(), -2, 2)
		sc, bi, rmv, rvv := bnParams(r, c)
		want := refBatchNormTraining(xv, n, c, s, sc, bi, rmv, rvv, 1e-5, 0.9)
		wantY := make([]float32, len(want.y))
		for i, v := range want.y {
			wantY[i] = max(v, 0)
		}
		name := fmt.Sprintf("bn+relu %v", xs)
		y := NewGuarded(t, b, xs, 99)
		rm, rv := bnUploadGuarded(t, b, rmv, c), bnUploadGuarded(t, b, rvv, c)
		sm, si := NewGuarded(t, b, kernels.Shape{c}, 99), NewGuarded(t, b, kernels.Shape{c}, 99)
		xt := Upload(t, b, xv, xs...)
		sct := Upload(t, b, sc, c)
		if err := f.BatchNormTrainingRelu(y.T, xt, sct, Upload(t, b, bi, c), rm.T, rv.T, sm.T, si.T, 1e-5, 0.9); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		yv := y.Check(t, "y")
		AssertClose(t, name+" y", yv, wantY, Tol{Abs: 1e-4, Rel: 1e-4})
		AssertClose(t, name+" running mean", rm.Check(t, "running mean"), want.runMean, TolF32)
		AssertClose(t, name+" running var", rv.Check(t, "running var"), want.runVar, TolF32)

		dyv := Rand(r, xs.Numel(), -1, 1)
		masked := make([]float32, len(dyv))
		for i := range dyv {
			if yv[i] > 0 {
				masked[i] = dyv[i]
			}
		}
		wdx, wds, wdb := refBatchNormBackward(masked, xv, n, c, s, sc, want.saveMean, want.saveInvStd)
		dx := NewGuarded(t, b, xs, 99)
		ds, db := NewGuarded(t, b, kernels.Shape{c}, 99), NewGuarded(t, b, kernels.Shape{c}, 99)
		if err := f.BatchNormBackwardRelu(dx.T, ds.T, db.T, Upload(t, b, dyv, xs...), y.T, xt, sct, sm.T, si.T); err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		AssertClose(t, name+" dx", dx.Check(t, "dx"), wdx, Tol{Abs: 1e-4, Rel: 1e-3})
		AssertClose(t, name+" dscale", ds.Check(t, "dscale"), wds, Tol{Abs: 1e-4, Rel: 1e-3})
		AssertClose(t, name+" dbias", db.Check(t, "dbias"), wdb, Tol{Abs: 1e-4, Rel: 1e-4})
	}
}
