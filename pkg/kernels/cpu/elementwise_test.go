package cpu_test

import (
	"errors"
	"fmt"
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

// ewReduceCases are element-wise and reduce ops on tensors big enough to
// split across threads (see parallelCase in pool_test.go).
func ewReduceCases() []parallelCase {
	img := kernels.Shape{2, 24, 33, 31}
	r := rand.New(rand.NewPCG(9, 9))
	other := func(s ...int) *kernels.Tensor {
		return kernels.FromSlice(kernelstest.Rand(r, kernels.Shape(s).Numel(), 0.5, 2), s...)
	}
	var cs []parallelCase
	for _, bc := range []struct {
		name string
		b    *kernels.Tensor
	}{{"same", other(img...)}, {"scalar", other()}, {"per-channel", other(1, 24, 1, 1)}, {"row", other(31)}, {"mixed", other(2, 1, 33, 1)}} {
		for _, op := range []kernels.BinaryOp{kernels.OpAdd, kernels.OpDiv, kernels.OpPow} {
			cs = append(cs,
				parallelCase{fmt.Sprintf("binary %d %s", op, bc.name), img, img, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Binary(y, x, bc.b, op) }},
				parallelCase{fmt.Sprintf("binary backward db %d %s", op, bc.name), img, bc.b.Shape, func(c *cpu.CPU, db, dc *kernels.Tensor) error {
					return c.BinaryBackward(nil, db, dc, dc, bc.b, op)
				}})
		}
	}
	for _, axis := range []int{1, 3, 0} {
		for _, log := range []bool{false, true} {
			cs = append(cs,
				parallelCase{fmt.Sprintf("softmax %d %v", axis, log), img, img, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Softmax(y, x, axis, log) }},
				parallelCase{fmt.Sprintf("softmax backward %d %v", axis, log), img, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error { return c.SoftmaxBackward(dx, dy, dy, axis, log) }})
		}
		ys, _ := kernels.ArgMaxOutShape(img, axis, true)
		cs = append(cs, parallelCase{fmt.Sprintf("argmax %d", axis), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.ArgMax(y, x, axis) }})
	}
	for _, axes := range [][]int{{0}, {1}, {3}, {2, 3}, {0, 2}, {0, 2, 3}, {1, 3}, nil} {
		ys, _ := kernels.ReduceOutShape(img, axes, true)
		cs = append(cs, parallelCase{fmt.Sprintf("reducemean %v", axes), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.ReduceMean(y, x, axes) }})
	}
	return cs
}

// TestElementwiseReduceParallelMatchesSerial: 2 threads give the same bits
// as 1 (each output element is computed by the same loop either way).
func TestElementwiseReduceParallelMatchesSerial(t *testing.T) {
	c1, c2 := newCPU(t, 1), newCPU(t, 2)
	for _, pc := range ewReduceCases() {
		x := kernels.FromSlice(kernelstest.Rand(rand.New(rand.NewPCG(2, 3)), pc.xs.Numel(), -1, 1), pc.xs...)
		y1, y2 := kernels.NewHost(pc.ys...), kernels.NewHost(pc.ys...)
		if err := pc.op(c1, y1, x); err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		if err := pc.op(c2, y2, x); err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		kernelstest.AssertClose(t, pc.name+" (2 threads vs 1)", y2.Data, y1.Data, kernelstest.TolExact)
	}
}

// onnxOpset reads the default-domain opset of dir/model.onnx.
func onnxOpset(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return 0, err
	}
	fs, err := pbParse(b)
	if err != nil {
		return 0, err
	}
	for _, f := range fs {
		if f.num != 8 { // opset_import
			continue
		}
		ops, err := pbParse(f.b)
		if err != nil {
			return 0, err
		}
		domain, version := "", 0
		for _, g := range ops {
			switch g.num {
			case 1:
				domain = string(g.b)
			case 2:
				version = int(g.v)
			}
		}
		if domain == "" || domain == "ai.onnx" {
			return version, nil
		}
	}
	return 0, fmt.Errorf("%s: no default opset", dir)
}

// TestONNXNodeElementwiseReduce runs ONNX's node cases of Add, Sub, Mul,
// Div, Pow, Max, Min (two float inputs), Softmax, LogSoftmax, ReduceSum,
// ReduceMean and ArgMax on the CPU backend.
func TestONNXNodeElementwiseReduce(t *testing.T) {
	if _, err := os.Stat(onnxNodeDir); err != nil {
		t.Skipf("ONNX node cases not installed (%v); install Debian's libonnx-testdata", err)
	}
	c := newCPU(t, 2)
	dirs, err := os.ReadDir(onnxNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"test_add", "test_sub", "test_mul", "test_div", "test_pow", "test_max_", "test_min_", "test_softmax", "test_logsoftmax",
		"test_reduce_sum_", "test_reduce_mean_", "test_argmax_"}
	ran, skipped := map[string]int{}, []string{}
	for _, d := range dirs {
		name := d.Name()
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if !match || strings.HasSuffix(name, "_expanded") || strings.HasPrefix(name, "test_reduce_sum_square") {
			continue
		}
		dir := filepath.Join(onnxNodeDir, name)
		tc, err := pbLoadCase(dir)
		if err != nil {
			t.Errorf("%s: load: %v", name, err)
			continue
		}
		opset, err := onnxOpset(dir)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got, want, err := runONNXEwReduce(c, tc, opset)
		if errors.Is(err, errSkipCase) {
			skipped = append(skipped, name)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, ok := kernelstest.Close(got, want, kernelstest.TolF32); !ok {
			t.Errorf("%s: output differs:\n got %v\nwant %v", name, trunc(got), trunc(want))
		}
		ran[tc.op]++
	}
	sort.Strings(skipped)
	total := 0
	for _, n := range ran {
		total += n
	}
	t.Logf("ran %d ONNX node cases %v; skipped %d: %v", total, ran, len(skipped), skipped)
	if total < 55 {
		t.Errorf("only %d ONNX node cases ran (want >= 55)", total)
	}
}

// onnxFloats returns a float tensor's values, or an int tensor's (exact in
// float32 for the small values these cases use) when ints is set.
func onnxFloats(pt *pbTensor, ints bool) ([]float32, bool) {
	switch {
	case pt == nil:
		return nil, false
	case pt.dtype == 1:
		return pt.floats, true
	case ints && (pt.dtype == 6 || pt.dtype == 7):
		v := make([]float32, len(pt.ints))
		for i, x := range pt.ints {
			v[i] = float32(x)
		}
		return v, true
	}
	return nil, false
}

// runONNXEwReduce runs one node and returns its output and the expected
// one; errSkipCase for features outside the backend (integer tensors,
// variadic Max/Min, select_last_index, noop_with_empty_axes).
func runONNXEwReduce(c *cpu.CPU, tc *pbCase, opset int) (got, want []float32, err error) {
	if len(tc.inputs) == 0 || len(tc.outputs) != 1 {
		return nil, nil, errSkipCase
	}
	x0, ok := onnxFloats(tc.inputs[0], false)
	if !ok {
		return nil, nil, errSkipCase
	}
	x := kernels.FromSlice(x0, tc.inputs[0].dims...)
	out := tc.outputs[0]
	want, ok = onnxFloats(out, tc.op == "ArgMax")
	if !ok {
		return nil, nil, errSkipCase
	}
	y := kernels.NewHost(out.dims...)
	a := tc.attrs
	attrInt := func(name string, def int64) int {
		if v, ok := a[name]; ok {
			return int(v.i)
		}
		return int(def)
	}
	switch tc.op {
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min":
		if len(tc.inputs) != 2 {
			return nil, nil, errSkipCase
		}
		x1, ok := onnxFloats(tc.inputs[1], tc.op == "Pow")
		if !ok {
			return nil, nil, errSkipCase
		}
		op := map[string]kernels.BinaryOp{"Add": kernels.OpAdd, "Sub": kernels.OpSub, "Mul": kernels.OpMul, "Div": kernels.OpDiv,
			"Pow": kernels.OpPow, "Max": kernels.OpMax, "Min": kernels.OpMin}[tc.op]
		err = c.Binary(y, x, kernels.FromSlice(x1, tc.inputs[1].dims...), op)
	case "Softmax", "LogSoftmax":
		axis := attrInt("axis", -1)
		xv, yv := x, y
		if opset < 13 {
			// Before opset 13: default axis 1, input coerced to 2-D there.
			axis = attrInt("axis", 1)
			if axis < 0 {
				axis += len(x.Shape)
			}
			s2 := []int{x.Shape[:axis].Numel(), x.Shape[axis:].Numel()}
			xv, _ = x.Reshaped(s2...)
			yv, _ = y.Reshaped(s2...)
			axis = 1
		}
		err = c.Softmax(yv, xv, axis, tc.op == "LogSoftmax")
	case "ReduceSum", "ReduceMean":
		axes := ints(a["axes"].ints)
		if len(tc.inputs) > 1 && tc.inputs[1] != nil {
			axes = ints(tc.inputs[1].ints)
		}
		if len(axes) == 0 && attrInt("noop_with_empty_axes", 0) != 0 {
			return nil, nil, errSkipCase // the graph turns this into an identity
		}
		if tc.op == "ReduceSum" {
			err = c.ReduceSum(y, x, axes)
		} else {
			err = c.ReduceMean(y, x, axes)
		}
	case "ArgMax":
		if attrInt("select_last_index", 0) != 0 {
			return nil, nil, errSkipCase
		}
		axis := attrInt("axis", 0)
		ys, serr := kernels.ArgMaxOutShape(x.Shape, axis, attrInt("keepdims", 1) != 0)
		if serr != nil {
			return nil, nil, serr
		}
		if !ys.Equal(y.Shape) {
			return nil, nil, fmt.Errorf("ArgMaxOutShape %v (want %v)", ys, y.Shape)
		}
		err = c.ArgMax(y, x, axis)
	default:
		return nil, nil, errSkipCase
	}
	if err != nil {
		return nil, nil, err
	}
	if tc.op == "ReduceSum" || tc.op == "ReduceMean" {
		axes := ints(a["axes"].ints)
		if len(tc.inputs) > 1 && tc.inputs[1] != nil {
			axes = ints(tc.inputs[1].ints)
		}
		ys, serr := kernels.ReduceOutShape(x.Shape, axes, attrInt("keepdims", 1) != 0)
		if serr != nil || !ys.Equal(y.Shape) {
			return nil, nil, fmt.Errorf("ReduceOutShape %v, %v (want %v)", ys, serr, y.Shape)
		}
	}
	return y.Data, want, nil
}

// BenchmarkBinary measures the broadcast patterns graphs hit; GB/s counts
// the big operand read plus the output written.
func BenchmarkBinary(b *testing.B) {
	img := kernels.Shape{8, 64, 56, 56}
	r := rand.New(rand.NewPCG(1, 1))
	for _, bc := range []struct {
		name   string
		xs, bs kernels.Shape
		op     kernels.BinaryOp
	}{
		{"add_same/8x64x56x56", img, img, kernels.OpAdd},
		{"mul_per_channel/8x64x56x56", img, kernels.Shape{1, 64, 1, 1}, kernels.OpMul},
		{"add_bias_row/256x1000", kernels.Shape{256, 1000}, kernels.Shape{1000}, kernels.OpAdd},
		{"div_scalar/8x64x56x56", img, kernels.Shape{}, kernels.OpDiv},
	} {
		other := kernels.FromSlice(kernelstest.Rand(r, bc.bs.Numel(), 0.5, 2), bc.bs...)
		benchThreads(b, bc.name, bc.xs, bc.xs, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Binary(y, x, other, bc.op) })
	}
	ch := kernels.FromSlice(kernelstest.Rand(r, 64, 0.5, 2), 1, 64, 1, 1)
	benchThreads(b, "mul_per_channel_backward_db/8x64x56x56", img, ch.Shape, func(c *cpu.CPU, db, dc *kernels.Tensor) error {
		return c.BinaryBackward(nil, db, dc, dc, ch, kernels.OpMul)
	})
}

// BenchmarkReduce measures softmax over classes (rows and the channel axis
// of a segmentation map), the global average and an argmax mask.
func BenchmarkReduce(b *testing.B) {
	seg := kernels.Shape{2, 21, 128, 128}
	benchThreads(b, "softmax_rows/256x1000", kernels.Shape{256, 1000}, kernels.Shape{256, 1000}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Softmax(y, x, 1, false) })
	benchThreads(b, "logsoftmax_channels/2x21x128x128", seg, seg, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Softmax(y, x, 1, true) })
	benchThreads(b, "reducemean_hw/8x512x14x14", kernels.Shape{8, 512, 14, 14}, kernels.Shape{8, 512, 1, 1}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.ReduceMean(y, x, []int{2, 3}) })
	benchThreads(b, "reducesum_nhw/8x64x56x56", kernels.Shape{8, 64, 56, 56}, kernels.Shape{64}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.ReduceSum(y, x, []int{0, 2, 3}) })
	benchThreads(b, "argmax_channels/2x21x128x128", seg, kernels.Shape{2, 128, 128}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.ArgMax(y, x, 1) })
}
