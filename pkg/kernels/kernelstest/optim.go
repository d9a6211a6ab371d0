package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testOptim(t *testing.T, b kernels.Backend) {
	t.Run("sgd", func(t *testing.T) { testOptimSGDHand(t, b) })
	t.Run("adamw", func(t *testing.T) { testOptimAdamWHand(t, b) })
	t.Run("steps", func(t *testing.T) { testOptimSteps(t, b) })
	t.Run("errors", func(t *testing.T) { testOptimErrors(t, b) })
}

// optTol compares float32 optimiser states with float64 references over a
// few steps.
var optTol = Tol{Abs: 1e-6, Rel: 1e-5}

func testOptimSGDHand(t *testing.T, b kernels.Backend) {
	// lr 0.1, momentum 0.9, wd 0.1:
	//   p = 1, g = 0.5, v = 0.2: d = 0.5 + 0.1*1 = 0.6, v = 0.9*0.2 + 0.6 =
	//   0.78, p = 1 - 0.1*0.78 = 0.922.
	//   p = -2, g = 0.25, v = 0: d = 0.25 - 0.2 = 0.05, v = 0.05,
	//   p = -2 - 0.005 = -2.005.
	p := Upload(t, b, []float32{1, -2}, 2)
	v := Upload(t, b, []float32{0.2, 0}, 2)
	g := Upload(t, b, []float32{0.5, 0.25}, 2)
	if err := b.SGDStep(p, g, v, kernels.SGDParams{LR: 0.1, Momentum: 0.9, WeightDecay: 0.1}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "sgd p", Download(t, b, p), []float32{0.922, -2.005}, TolF32)
	AssertClose(t, "sgd v", Download(t, b, v), []float32{0.78, 0.05}, TolF32)

	// Constant gradient 1 from p = 0, v = 0, momentum 0.9, lr 0.1: step 1
	// v = 1, p = -0.1 (PyTorch's first-step buffer is d itself); step 2
	// v = 1.9, p = -0.29; step 3 v = 2.71, p = -0.561.
	p, v, g = Upload(t, b, []float32{0}, 1), Upload(t, b, []float32{0}, 1), Upload(t, b, []float32{1}, 1)
	for i, want := range []float32{-0.1, -0.29, -0.561} {
		if err := b.SGDStep(p, g, v, kernels.SGDParams{LR: 0.1, Momentum: 0.9}); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, fmt.Sprintf("sgd momentum step %d", i+1), Download(t, b, p), []float32{want}, TolF32)
	}

	// No momentum, no velocity: p = 1 - 0.1*(0.5 + 0.01*1) = 0.949.
	p, g = Upload(t, b, []float32{1}, 1), Upload(t, b, []float32{0.5}, 1)
	if err := b.SGDStep(p, g, nil, kernels.SGDParams{LR: 0.1, WeightDecay: 0.01}); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "sgd plain", Download(t, b, p), []float32{0.949}, TolF32)
}

func testOptimAdamWHand(t *testing.T, b kernels.Backend) {
	// lr 0.01, wd 0.1, betas (0.9, 0.999), eps 1e-8. Step 1: decay
	// 1 - 0.01*0.1 = 0.999; m = 0.1*g, v = 0.001*g^2; bias-corrected
	// m/0.1 = g and v/0.001 = g^2, so the Adam term is lr*g/(|g| + eps) =
	// 0.01*sign(g) (0 for g = 0):
	//   p = 1, g = 0.5:  0.999 - 0.01 = 0.989; m = 0.05, v = 0.00025
	//   p = 1, g = -2:   0.999 + 0.01 = 1.009; m = -0.2, v = 0.004
	//   p = -0.5, g = 0: -0.4995;              m = 0, v = 0
	p := Upload(t, b, []float32{1, 1, -0.5}, 3)
	g := Upload(t, b, []float32{0.5, -2, 0}, 3)
	m, v := Upload(t, b, make([]float32, 3), 3), Upload(t, b, make([]float32, 3), 3)
	prm := kernels.AdamWParams{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: 1}
	if err := b.AdamWStep(p, g, m, v, prm); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "adamw step 1 p", Download(t, b, p), []float32{0.989, 1.009, -0.4995}, TolF32)
	AssertClose(t, "adamw step 1 m", Download(t, b, m), []float32{0.05, -0.2, 0}, TolF32)
	AssertClose(t, "adamw step 1 v", Download(t, b, v), []float32{0.00025, 0.004, 0}, TolF32)
	// Step 2, same gradient: m = 0.095, v = 0.00049975 for g = 0.5; with
	// the bias corrections 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999 the
	// Adam term is again 0.01*sign(g) (without them it would be
	// 0.01*0.095/sqrt(0.00049975) = 0.0425): p = 0.989*0.999 - 0.01 =
	// 0.978011, 1.009*0.999 + 0.01 = 1.017991, -0.4995*0.999 = -0.4990005.
	prm.Step = 2
	if err := b.AdamWStep(p, g, m, v, prm); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "adamw step 2 p", Download(t, b, p), []float32{0.978011, 1.017991, -0.4990005}, TolF32)
}

// testOptimSteps runs several steps of random gradients against the float64
// references, on a size that splits across threads.
func testOptimSteps(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{7, 40000} {
		p0 := Rand(r, n, -1, 1)
		grads := make([][]float32, 6)
		for i := range grads {
			grads[i] = Rand(r, n, -1, 1)
			grads[i][0] = 0 // an element without gradient
		}
		for _, prm := range []kernels.SGDParams{{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-2}, {LR: 0.1}, {LR: 0.01, WeightDecay: 0.5}} {
			name := fmt.Sprintf("sgd n=%d %+v", n, prm)
			pt, gt := Upload(t, b, p0, n), Upload(t, b, make([]float32, n), n)
			pr, vr := optTo64(p0), make([]float64, n)
			var vt *kernels.Tensor
			if prm.Momentum != 0 {
				vt = Upload(t, b, make([]float32, n), n)
			} else {
				vr = nil
			}
			for step, g := range grads {
				if err := b.Upload(gt, g); err != nil {
					t.Fatal(err)
				}
				if err := b.SGDStep(pt, gt, vt, prm); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				refOptimSGD(pr, optTo64(g), vr, prm)
				AssertClose(t, fmt.Sprintf("%s step %d p", name, step+1), Download(t, b, pt), optTo32(pr), optTol)
				if vt != nil {
					AssertClose(t, fmt.Sprintf("%s step %d v", name, step+1), Download(t, b, vt), optTo32(vr), optTol)
				}
			}
		}
		for _, prm := range []kernels.AdamWParams{
			{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 1e-2},
			{LR: 3e-2, Beta1: 0.5, Beta2: 0.999, Eps: 1e-5},
		} {
			name := fmt.Sprintf("adamw n=%d lr=%g betas=(%g,%g) eps=%g wd=%g", n, prm.LR, prm.Beta1, prm.Beta2, prm.Eps, prm.WeightDecay)
			pt, gt := Upload(t, b, p0, n), Upload(t, b, make([]float32, n), n)
			mt, vt := Upload(t, b, make([]float32, n), n), Upload(t, b, make([]float32, n), n)
			pr, mr, vr := optTo64(p0), make([]float64, n), make([]float64, n)
			for step, g := range grads {
				prm.Step = step + 1
				if err := b.Upload(gt, g); err != nil {
					t.Fatal(err)
				}
				if err := b.AdamWStep(pt, gt, mt, vt, prm); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				refOptimAdamW(pr, optTo64(g), mr, vr, prm)
				AssertClose(t, fmt.Sprintf("%s step %d p", name, step+1), Download(t, b, pt), optTo32(pr), optTol)
				AssertClose(t, fmt.Sprintf("%s step %d m", name, step+1), Download(t, b, mt), optTo32(mr), optTol)
				AssertClose(t, fmt.Sprintf("%s step %d v", name, step+1), Download(t, b, vt), optTo32(vr), optTol)
			}
		}
	}
}

func optTo64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func optTo32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func optWantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
	}
}

func testOptimErrors(t *testing.T, b kernels.Backend) {
	p, g := Upload(t, b, []float32{1, 2}, 2), Upload(t, b, []float32{1, 1}, 2)
	s, s2 := Upload(t, b, make([]float32, 2), 2), Upload(t, b, make([]float32, 2), 2)
	bad := Upload(t, b, make([]float32, 3), 3)
	sgd := kernels.SGDParams{LR: 0.1, Momentum: 0.9}
	optWantErr(t, "sgd grad shape", b.SGDStep(p, bad, s, sgd), kernels.ErrShape)
	optWantErr(t, "sgd velocity shape", b.SGDStep(p, g, bad, sgd), kernels.ErrShape)
	optWantErr(t, "sgd grad nil", b.SGDStep(p, nil, s, sgd), kernels.ErrShape)
	optWantErr(t, "sgd momentum without velocity", b.SGDStep(p, g, nil, sgd), kernels.ErrParam)
	nan := float32(math.NaN())
	for _, prm := range []kernels.SGDParams{{LR: -0.1}, {LR: nan}, {LR: 0.1, Momentum: -0.5}, {LR: 0.1, WeightDecay: -1}, {LR: float32(math.Inf(1))}} {
		optWantErr(t, fmt.Sprintf("sgd %+v", prm), b.SGDStep(p, g, s, prm), kernels.ErrParam)
	}
	adam := kernels.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1}
	optWantErr(t, "adamw grad shape", b.AdamWStep(p, bad, s, s2, adam), kernels.ErrShape)
	optWantErr(t, "adamw m shape", b.AdamWStep(p, g, bad, s2, adam), kernels.ErrShape)
	optWantErr(t, "adamw v shape", b.AdamWStep(p, g, s, bad, adam), kernels.ErrShape)
	optWantErr(t, "adamw m nil", b.AdamWStep(p, g, nil, s2, adam), kernels.ErrParam)
	for name, mod := range map[string]func(*kernels.AdamWParams){
		"step 0":      func(q *kernels.AdamWParams) { q.Step = 0 },
		"beta1 1":     func(q *kernels.AdamWParams) { q.Beta1 = 1 },
		"beta2 -0.1":  func(q *kernels.AdamWParams) { q.Beta2 = -0.1 },
		"eps -1":      func(q *kernels.AdamWParams) { q.Eps = -1 },
		"lr NaN":      func(q *kernels.AdamWParams) { q.LR = nan },
		"wd negative": func(q *kernels.AdamWParams) { q.WeightDecay = -0.01 },
	} {
		q := adam
		mod(&q)
		optWantErr(t, "adamw "+name, b.AdamWStep(p, g, s, s2, q), kernels.ErrParam)
	}
	// Errors leave the parameter untouched.
	AssertClose(t, "p after rejected steps", Download(t, b, p), []float32{1, 2}, TolExact)
}
