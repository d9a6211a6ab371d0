package cpu_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// onnxNodeDir holds ONNX's own operator conformance cases (Debian package
// libonnx-testdata).
const onnxNodeDir = "/usr/share/libonnx-testdata/data/node"

// errSkipCase marks an ONNX case that uses a feature outside this backend
// (cubic resize, tf_crop_and_resize, uint8 tensors).
var errSkipCase = errors.New("case uses an unsupported feature")

// TestONNXNodePoolLayout runs the ONNX node cases of the pool and layout
// families (MaxPool, AveragePool, Global*Pool, Pad, Resize, DepthToSpace,
// Slice, Transpose, Concat, Split) on the CPU backend and compares with
// their expected outputs.
func TestONNXNodePoolLayout(t *testing.T) {
	if _, err := os.Stat(onnxNodeDir); err != nil {
		t.Skipf("ONNX node cases not installed (%v); install Debian's libonnx-testdata", err)
	}
	c := newCPU(t, 2)
	dirs, err := os.ReadDir(onnxNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"test_maxpool_2d", "test_averagepool_2d", "test_global", "test_constant_pad", "test_edge_pad", "test_reflect_pad",
		"test_resize_", "test_depthtospace", "test_slice", "test_transpose", "test_concat", "test_split"}
	ran, skipped := 0, []string{}
	for _, d := range dirs {
		name := d.Name()
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if !match {
			continue
		}
		tc, err := pbLoadCase(filepath.Join(onnxNodeDir, name))
		if err != nil {
			t.Errorf("%s: load: %v", name, err)
			continue
		}
		if tc.op == "Pad" && len(tc.inputs) > 0 && tc.inputs[0] != nil && tc.inputs[0].dtype == 6 {
			// Integer pad cases: their small values are exact in float32.
			for _, pt := range []*pbTensor{tc.inputs[0], tc.outputs[0]} {
				pt.dtype, pt.floats = 1, make([]float32, len(pt.ints))
				for i, v := range pt.ints {
					pt.floats[i] = float32(v)
				}
			}
		}
		got, err := runONNXCase(t, c, tc)
		if errors.Is(err, errSkipCase) {
			skipped = append(skipped, name)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != len(tc.outputs) {
			t.Errorf("%s: %d outputs (want %d)", name, len(got), len(tc.outputs))
			continue
		}
		for k, g := range got {
			if _, ok := kernelstest.Close(g, tc.outputs[k].floats, kernelstest.TolF32); !ok {
				t.Errorf("%s: output %d differs:\n got %v\nwant %v", name, k, trunc(g), trunc(tc.outputs[k].floats))
			}
		}
		ran++
	}
	sort.Strings(skipped)
	t.Logf("ran %d ONNX node cases; skipped %d: %v", ran, len(skipped), skipped)
	if ran < 75 {
		t.Errorf("only %d ONNX node cases ran (want >= 75)", ran)
	}
}

func trunc(v []float32) []float32 { return v[:min(len(v), 24)] }

func ints(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// runONNXCase runs one node and returns its outputs.
func runONNXCase(t *testing.T, c *cpu.CPU, tc *pbCase) ([][]float32, error) {
	if len(tc.inputs) == 0 || tc.inputs[0] == nil || tc.inputs[0].dtype != 1 {
		return nil, errSkipCase
	}
	x0 := tc.inputs[0]
	x := kernels.FromSlice(x0.floats, x0.dims...)
	run := func(ys kernels.Shape, op func(y *kernels.Tensor) error) ([][]float32, error) {
		y := kernels.NewHost(ys...)
		if err := op(y); err != nil {
			return nil, err
		}
		return [][]float32{y.Data}, nil
	}
	a := tc.attrs
	switch tc.op {
	case "MaxPool", "AveragePool":
		k := a["kernel_shape"].ints
		if len(k) != 2 {
			return nil, errSkipCase
		}
		p := kernels.PoolParams{Kind: kernels.PoolMax, Kernel: [2]int{int(k[0]), int(k[1])}, CeilMode: a["ceil_mode"].i == 1, CountIncludePad: a["count_include_pad"].i == 1}
		if tc.op == "AveragePool" {
			p.Kind = kernels.PoolAvg
		}
		copy(p.Strides[:], ints(a["strides"].ints))
		copy(p.Dilations[:], ints(a["dilations"].ints))
		copy(p.Pads[:], ints(a["pads"].ints))
		p = p.WithDefaults()
		if ap := a["auto_pad"].s; ap == "SAME_UPPER" || ap == "SAME_LOWER" {
			for i := range 2 {
				in, s := x.Shape[2+i], p.Strides[i]
				out := (in + s - 1) / s
				total := max(0, (out-1)*s+(p.Kernel[i]-1)*p.Dilations[i]+1-in)
				small, big := total/2, total-total/2
				if ap == "SAME_UPPER" {
					p.Pads[i], p.Pads[2+i] = small, big
				} else {
					p.Pads[i], p.Pads[2+i] = big, small
				}
			}
		}
		ys, err := kernels.Pool2DOutShape(x.Shape, p)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.Pool2D(y, x, p) })
	case "GlobalMaxPool", "GlobalAveragePool":
		kind := kernels.PoolMax
		if tc.op == "GlobalAveragePool" {
			kind = kernels.PoolAvg
		}
		ys, err := kernels.GlobalPoolOutShape(x.Shape)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.GlobalPool(y, x, kind) })
	case "Pad":
		p := kernels.PadParams{Pads: ints(tc.inputs[1].ints)}
		switch a["mode"].s {
		case "reflect":
			p.Mode = kernels.PadReflect
		case "edge":
			p.Mode = kernels.PadEdge
		}
		if len(tc.inputs) > 2 && tc.inputs[2] != nil {
			p.Value = tc.inputs[2].floats[0]
		}
		ys, err := kernels.PadOutShape(x.Shape, p)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.Pad(y, x, p) })
	case "Resize":
		return runONNXResize(c, tc, x, run)
	case "DepthToSpace":
		p := kernels.DepthToSpaceParams{Blocksize: int(a["blocksize"].i), CRD: a["mode"].s == "CRD"}
		ys, err := kernels.DepthToSpaceOutShape(x.Shape, p)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.DepthToSpace(y, x, p) })
	case "Slice":
		in := func(i int) []int64 {
			if i < len(tc.inputs) && tc.inputs[i] != nil {
				return tc.inputs[i].ints
			}
			return nil
		}
		p, err := kernels.NormalizeSlice(x.Shape, in(1), in(2), in(3), in(4))
		if err != nil {
			return nil, err
		}
		ys, err := kernels.SliceOutShape(x.Shape, p)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.Slice(y, x, p) })
	case "Transpose":
		perm := ints(a["perm"].ints)
		ys, err := kernels.TransposeOutShape(x.Shape, perm)
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.Transpose(y, x, perm) })
	case "Concat":
		xs := make([]*kernels.Tensor, len(tc.inputs))
		shapes := make([]kernels.Shape, len(tc.inputs))
		for i, in := range tc.inputs {
			xs[i] = kernels.FromSlice(in.floats, in.dims...)
			shapes[i] = xs[i].Shape
		}
		ys, err := kernels.ConcatOutShape(shapes, int(a["axis"].i))
		if err != nil {
			return nil, err
		}
		return run(ys, func(y *kernels.Tensor) error { return c.Concat(y, xs, int(a["axis"].i)) })
	case "Split":
		axis := int(a["axis"].i)
		if axis < 0 {
			axis += len(x.Shape)
		}
		ys := make([]*kernels.Tensor, len(tc.outputs))
		for i, o := range tc.outputs {
			ys[i] = kernels.NewHost(o.dims...)
		}
		if err := c.Split(ys, x, axis); err != nil {
			return nil, err
		}
		out := make([][]float32, len(ys))
		for i, y := range ys {
			out[i] = y.Data
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: op %s", errSkipCase, tc.op)
}

func runONNXResize(c *cpu.CPU, tc *pbCase, x *kernels.Tensor, run func(kernels.Shape, func(*kernels.Tensor) error) ([][]float32, error)) ([][]float32, error) {
	a := tc.attrs
	p := kernels.ResizeParams{}
	switch a["mode"].s {
	case "", "nearest":
	case "linear":
		p.Mode = kernels.ResizeLinear
	default:
		return nil, errSkipCase
	}
	switch a["coordinate_transformation_mode"].s {
	case "", "half_pixel":
	case "asymmetric":
		p.Coord = kernels.CoordAsymmetric
	case "align_corners":
		p.Coord = kernels.CoordAlignCorners
	case "pytorch_half_pixel":
		p.Coord = kernels.CoordPytorchHalfPixel
	case "tf_half_pixel_for_nearest", "tf_half_pixel_for_nn": // opset 11 spelling
		p.Coord = kernels.CoordTFHalfPixelForNN
	default:
		return nil, errSkipCase
	}
	switch a["nearest_mode"].s {
	case "", "round_prefer_floor":
	case "round_prefer_ceil":
		p.Nearest = kernels.NearestRoundPreferCeil
	case "floor":
		p.Nearest = kernels.NearestFloor
	case "ceil":
		p.Nearest = kernels.NearestCeil
	}
	if len(tc.inputs) > 2 && tc.inputs[2] != nil && len(tc.inputs[2].floats) > 0 {
		p.Scales = tc.inputs[2].floats
	} else if len(tc.inputs) > 3 && tc.inputs[3] != nil {
		for i, s := range tc.inputs[3].ints {
			p.Scales = append(p.Scales, float32(s)/float32(x.Shape[i]))
		}
	} else {
		return nil, errSkipCase
	}
	ys, err := kernels.ResizeOutShape(x.Shape, p)
	if err != nil {
		return nil, err
	}
	return run(ys, func(y *kernels.Tensor) error { return c.Resize(y, x, p) })
}
