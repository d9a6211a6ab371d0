package cpu_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// TestActivationParallelMatchesSerial: every kind, forward and backward,
// and dropout's mask, must not depend on how the work is split.
func TestActivationParallelMatchesSerial(t *testing.T) {
	n := 100003 // several chunks and a ragged tail
	r := rand.New(rand.NewPCG(41, 42))
	x := kernels.FromSlice(kernelstest.Rand(r, n, 0.01, 4), n) // in every kind's domain
	dy := kernels.FromSlice(kernelstest.Rand(r, n, -1, 1), n)
	c1, c2 := newCPU(t, 1), newCPU(t, 2)
	for k := kernels.ActIdentity; k <= kernels.ActAbs; k++ {
		a := kernels.Act{Kind: k, Alpha: 0.5, Beta: 3}
		var outs [2][2][]float32
		for i, c := range []*cpu.CPU{c1, c2} {
			y, dx := kernels.NewHost(n), kernels.NewHost(n)
			if err := c.Activation(y, x, a); err != nil {
				t.Fatal(err)
			}
			if err := c.ActivationBackward(dx, dy, x, y, a); err != nil {
				t.Fatal(err)
			}
			outs[i] = [2][]float32{y.Data, dx.Data}
		}
		kernelstest.AssertClose(t, fmt.Sprintf("kind %d y (2 threads vs 1)", k), outs[1][0], outs[0][0], kernelstest.TolExact)
		kernelstest.AssertClose(t, fmt.Sprintf("kind %d dx (2 threads vs 1)", k), outs[1][1], outs[0][1], kernelstest.TolExact)
	}
	var masks [2][]float32
	for i, c := range []*cpu.CPU{c1, c2} {
		y, m := kernels.NewHost(n), kernels.NewHost(n)
		if err := c.Dropout(y, m, x, 0.3, 12345); err != nil {
			t.Fatal(err)
		}
		masks[i] = m.Data
	}
	kernelstest.AssertClose(t, "dropout mask (2 threads vs 1)", masks[1], masks[0], kernelstest.TolExact)
}

// onnxActs maps ONNX node cases (by name prefix) of single-input
// activations to our kinds; attributes fill in Alpha/Beta below.
var onnxActs = map[string]kernels.ActKind{
	"Relu": kernels.ActRelu, "LeakyRelu": kernels.ActLeakyRelu, "Sigmoid": kernels.ActSigmoid,
	"HardSigmoid": kernels.ActHardSigmoid, "HardSwish": kernels.ActHardSwish, "Tanh": kernels.ActTanh,
	"Clip": kernels.ActClip, "Exp": kernels.ActExp, "Log": kernels.ActLog, "Sqrt": kernels.ActSqrt,
	"Neg": kernels.ActNeg, "Abs": kernels.ActAbs, "Identity": kernels.ActIdentity, "Dropout": kernels.ActIdentity,
}

// TestONNXNodeActivation runs ONNX's node cases of Relu, LeakyRelu,
// Sigmoid, HardSigmoid, HardSwish, Tanh, Clip, Exp, Log, Sqrt, Neg, Abs,
// Identity and Dropout on the CPU backend. Dropout cases run when their
// result does not depend on numpy's random generator (inference mode, or
// ratio 0); integer tensors, multi-node "_expanded" graphs and sequences
// are skipped.
func TestONNXNodeActivation(t *testing.T) {
	if _, err := os.Stat(onnxNodeDir); err != nil {
		t.Skipf("ONNX node cases not installed (%v); install Debian's libonnx-testdata", err)
	}
	c := newCPU(t, 2)
	dirs, err := os.ReadDir(onnxNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"test_relu", "test_leakyrelu", "test_sigmoid", "test_hardsigmoid", "test_hardswish", "test_tanh",
		"test_clip", "test_exp", "test_log", "test_sqrt", "test_neg", "test_abs", "test_identity", "test_dropout", "test_training_dropout"}
	ran, skipped := map[string]int{}, []string{}
	for _, d := range dirs {
		name := d.Name()
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if !match || strings.HasSuffix(name, "_expanded") || strings.Contains(name, "sequence") || name == "test_identity_opt" {
			continue // several nodes, or not tensors
		}
		dir := filepath.Join(onnxNodeDir, name)
		tc, err := pbLoadCase(dir)
		if err != nil {
			t.Errorf("%s: load: %v", name, err)
			continue
		}
		if _, ok := onnxActs[tc.op]; !ok {
			continue // a longer name with our prefix (test_expand_*, test_logsoftmax_*)
		}
		got, want, err := runActivationCase(c, tc, dir)
		if errors.Is(err, errSkipCase) {
			skipped = append(skipped, name)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for k := range got {
			if _, ok := kernelstest.Close(got[k], want[k], kernelstest.TolF32); !ok {
				t.Errorf("%s: output %d differs:\n got %v\nwant %v", name, k, trunc(got[k]), trunc(want[k]))
			}
		}
		ran[tc.op]++
	}
	total := 0
	ops := make([]string, 0, len(ran))
	for op, n := range ran {
		total += n
		ops = append(ops, fmt.Sprintf("%s:%d", op, n))
	}
	sort.Strings(ops)
	sort.Strings(skipped)
	t.Logf("ran %d ONNX activation node cases %v; skipped %d: %v", total, ops, len(skipped), skipped)
	if total < 35 {
		t.Errorf("only %d ONNX activation cases ran (want >= 35)", total)
	}
}

func runActivationCase(c *cpu.CPU, tc *pbCase, dir string) (got, want [][]float32, err error) {
	kind, ok := onnxActs[tc.op]
	if !ok || len(tc.inputs) == 0 || tc.inputs[0] == nil || tc.inputs[0].dtype != 1 || len(tc.outputs) == 0 || tc.outputs[0].dtype != 1 {
		return nil, nil, errSkipCase
	}
	a := kernels.Act{Kind: kind}
	attr := func(name string, def float32) float32 {
		if v, ok := tc.attrs[name]; ok {
			return v.f
		}
		return def
	}
	scalar := func(i int, def float32) (float32, error) {
		if i >= len(tc.inputs) || tc.inputs[i] == nil {
			return def, nil
		}
		if tc.inputs[i].dtype != 1 || len(tc.inputs[i].floats) != 1 {
			return 0, errSkipCase
		}
		return tc.inputs[i].floats[0], nil
	}
	switch tc.op {
	case "LeakyRelu":
		a.Alpha = attr("alpha", 0.01)
	case "HardSigmoid":
		a.Alpha, a.Beta = attr("alpha", 0.2), attr("beta", 0.5)
	case "Clip":
		if a.Alpha, err = scalar(1, float32(math.Inf(-1))); err != nil {
			return nil, nil, err
		}
		if a.Beta, err = scalar(2, float32(math.Inf(1))); err != nil {
			return nil, nil, err
		}
	case "Dropout":
		// Inputs: data, ratio (default 0.5), training_mode (default
		// false). Only the runs that draw no random numbers compare.
		ratio, err := scalar(1, 0.5)
		if err != nil {
			return nil, nil, err
		}
		training := false
		if len(tc.inputs) > 2 && tc.inputs[2] != nil {
			if training, err = pbBoolInput(dir, 2); err != nil {
				return nil, nil, err
			}
		}
		if training && ratio != 0 {
			return nil, nil, errSkipCase
		}
		x := kernels.FromSlice(tc.inputs[0].floats, tc.inputs[0].dims...)
		y, m := kernels.NewHost(x.Shape...), kernels.NewHost(x.Shape...)
		r := ratio
		if !training {
			r = 0 // inference: the identity
		}
		if err := c.Dropout(y, m, x, r, 1); err != nil {
			return nil, nil, err
		}
		got, want = [][]float32{y.Data}, [][]float32{tc.outputs[0].floats}
		if len(tc.outputs) > 1 { // the mask (bool): all true
			ones := make([]float32, len(m.Data))
			for i := range ones {
				ones[i] = 1
			}
			got, want = append(got, m.Data), append(want, ones)
		}
		return got, want, nil
	}
	x := kernels.FromSlice(tc.inputs[0].floats, tc.inputs[0].dims...)
	y := kernels.NewHost(x.Shape...)
	if err := c.Activation(y, x, a); err != nil {
		return nil, nil, err
	}
	return [][]float32{y.Data}, [][]float32{tc.outputs[0].floats}, nil
}

// BenchmarkActivation measures the forward of the hot kinds and Relu's
// backward; GB/s counts x read and y written (and dy read for backward).
func BenchmarkActivation(b *testing.B) {
	xs := kernels.Shape{8, 64, 56, 56}
	for _, a := range []kernels.Act{{Kind: kernels.ActRelu}, {Kind: kernels.ActSigmoid}, {Kind: kernels.ActHardSwish}, {Kind: kernels.ActTanh}} {
		benchThreads(b, fmt.Sprintf("kind=%d/8x64x56x56", a.Kind), xs, xs, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Activation(y, x, a) })
	}
	benchThreads(b, "relu_backward/8x64x56x56", xs, xs, func(c *cpu.CPU, dx, dy *kernels.Tensor) error {
		return c.ActivationBackward(dx, dy, dy, dy, kernels.Act{Kind: kernels.ActRelu})
	})
	mask := kernels.NewHost(xs...)
	benchThreads(b, "dropout0.5/8x64x56x56", xs, xs, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Dropout(y, mask, x, 0.5, 1) })
}

// pbBoolInput reads the scalar bool input_k.pb of dir's first data set
// (a TensorProto of type BOOL with its value in raw_data or int32_data),
// which pbDecodeTensor keeps only the type of.
func pbBoolInput(dir string, k int) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("input_%d.pb", k)))
	if err != nil {
		return false, err
	}
	fs, err := pbParse(b)
	if err != nil {
		return false, err
	}
	for _, f := range fs {
		switch {
		case f.num == 9 && len(f.b) == 1:
			return f.b[0] != 0, nil
		case f.num == 5 && f.wire == 0:
			return f.v != 0, nil
		case f.num == 5 && f.wire == 2 && len(f.b) == 1:
			return f.b[0] != 0, nil
		}
	}
	return false, fmt.Errorf("input_%d.pb: no scalar bool value", k)
}

// TestSigmoidAccuracy sweeps x over [-110, 110] (every 2^-12, plus the
// float32 neighbours of 0) and requires the vectorised sigmoid within 3e-7
// relative of the float64 value (a few ulp), or within the smallest
// denormal where the value is denormal.
func TestSigmoidAccuracy(t *testing.T) {
	var xs []float32
	for v := -110.0; v <= 110; v += 1.0 / 4096 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, 1e-30, -1e-30, 1e-45, -1e-45, 0, float32(math.Copysign(0, -1)))
	x := kernels.FromSlice(xs, len(xs))
	y := kernels.NewHost(len(xs))
	if err := newCPU(t, 1).Activation(y, x, kernels.Act{Kind: kernels.ActSigmoid}); err != nil {
		t.Fatal(err)
	}
	worst, at := 0.0, float32(0)
	for i, v := range xs {
		want := 1 / (1 + math.Exp(-float64(v)))
		got := float64(y.Data[i])
		err := math.Abs(got - want)
		if want >= 0x1p-126 {
			err /= want
		} else if err <= 0x1p-149 {
			err = 0
		}
		if err > worst {
			worst, at = err, v
		}
	}
	t.Logf("sigmoid over %d points: worst relative error %.3g at x=%v", len(xs), worst, at)
	if worst > 3e-7 {
		t.Errorf("sigmoid: relative error %.3g at x=%v (want <= 3e-7)", worst, at)
	}
}
