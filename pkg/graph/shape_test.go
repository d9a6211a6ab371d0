package graph

import (
	"errors"
	"strings"
	"testing"

	"vireo/pkg/kernels"
)

func TestInferShapesPerOp(t *testing.T) {
	f := func(n int) []float32 { return make([]float32, n) }
	cases := []struct {
		name  string
		build func(b *builder)
		want  []int
	}{
		{"conv pads strides", func(b *builder) {
			b.input("x", 2, 3, 9, 9).init("w", f(8*3*3*3), 8, 3, 3, 3)
			b.node("Conv", in("x", "w"), in("y"), map[string]Attr{"pads": aInts(1, 1, 1, 1), "strides": aInts(2, 2)})
		}, []int{2, 8, 5, 5}},
		{"conv same_upper group", func(b *builder) {
			b.input("x", 1, 4, 7, 6).init("w", f(4*2*3*3), 4, 2, 3, 3)
			b.node("Conv", in("x", "w"), in("y"), map[string]Attr{"auto_pad": aStr("SAME_UPPER"), "strides": aInts(2, 2), "group": aInt(2)})
		}, []int{1, 4, 4, 3}},
		{"convtranspose", func(b *builder) {
			b.input("x", 1, 4, 5, 5).init("w", f(4*3*4*4), 4, 3, 4, 4)
			b.node("ConvTranspose", in("x", "w"), in("y"), map[string]Attr{"strides": aInts(2, 2), "pads": aInts(1, 1, 1, 1)})
		}, []int{1, 3, 10, 10}},
		{"gemm transB", func(b *builder) {
			b.input("x", 4, 6).init("w", f(5*6), 5, 6).init("c", f(5), 5)
			b.node("Gemm", in("x", "w", "c"), in("y"), map[string]Attr{"transB": aInt(1)})
		}, []int{4, 5}},
		{"matmul batched broadcast", func(b *builder) {
			b.input("x", 2, 1, 3, 4).init("w", f(5*4*6), 5, 4, 6)
			b.node("MatMul", in("x", "w"), in("y"), nil)
		}, []int{2, 5, 3, 6}},
		{"add broadcast", func(b *builder) {
			b.input("x", 2, 3, 4, 5).init("c", f(3*1*1), 3, 1, 1)
			b.node("Add", in("x", "c"), in("y"), nil)
		}, []int{2, 3, 4, 5}},
		{"mul broadcast both", func(b *builder) {
			b.input("x", 4, 1).input("z", 1, 3)
			b.node("Mul", in("x", "z"), in("y"), nil)
		}, []int{4, 3}},
		{"maxpool ceil", func(b *builder) {
			b.input("x", 1, 2, 6, 6)
			b.node("MaxPool", in("x"), in("y"), map[string]Attr{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "ceil_mode": aInt(1)})
		}, []int{1, 2, 3, 3}},
		{"averagepool pads", func(b *builder) {
			b.input("x", 1, 2, 7, 7)
			b.node("AveragePool", in("x"), in("y"), map[string]Attr{"kernel_shape": aInts(3, 3), "pads": aInts(1, 1, 1, 1)})
		}, []int{1, 2, 7, 7}},
		{"global pool", func(b *builder) {
			b.input("x", 3, 2, 7, 7)
			b.node("GlobalAveragePool", in("x"), in("y"), nil)
		}, []int{3, 2, 1, 1}},
		{"concat", func(b *builder) {
			b.input("x", 1, 2, 3).input("z", 1, 5, 3)
			b.node("Concat", in("x", "z"), in("y"), map[string]Attr{"axis": aInt(-2)})
		}, []int{1, 7, 3}},
		{"slice negative step", func(b *builder) {
			b.input("x", 4, 10).initInt("s", []int64{-1}, 1).initInt("e", []int64{-1000}, 1).initInt("a", []int64{1}, 1).initInt("st", []int64{-3}, 1)
			b.node("Slice", in("x", "s", "e", "a", "st"), in("y"), nil)
		}, []int{4, 4}},
		{"pad", func(b *builder) {
			b.input("x", 1, 2, 3, 3).initInt("p", []int64{0, 0, 1, 2, 0, 0, 3, 4}, 8)
			b.node("Pad", in("x", "p"), in("y"), nil)
		}, []int{1, 2, 7, 9}},
		{"resize scales", func(b *builder) {
			b.input("x", 1, 2, 3, 5).init("sc", []float32{1, 1, 2, 2}, 4)
			b.node("Resize", in("x", "", "sc"), in("y"), map[string]Attr{"mode": aStr("linear")})
		}, []int{1, 2, 6, 10}},
		{"resize sizes", func(b *builder) {
			b.input("x", 1, 2, 3, 5).initInt("sz", []int64{1, 2, 7, 4}, 4)
			b.node("Resize", in("x", "", "", "sz"), in("y"), nil)
		}, []int{1, 2, 7, 4}},
		{"upsample", func(b *builder) {
			b.input("x", 1, 2, 3, 5)
			b.node("Upsample", in("x"), in("y"), map[string]Attr{"scales": aFloats(1, 1, 2, 3)})
		}, []int{1, 2, 6, 15}},
		{"depthtospace", func(b *builder) {
			b.input("x", 1, 8, 3, 5)
			b.node("DepthToSpace", in("x"), in("y"), map[string]Attr{"blocksize": aInt(2)})
		}, []int{1, 2, 6, 10}},
		{"reshape 0 -1", func(b *builder) {
			b.input("x", 2, 3, 4).initInt("s", []int64{0, -1}, 2)
			b.node("Reshape", in("x", "s"), in("y"), nil)
		}, []int{2, 12}},
		{"flatten", func(b *builder) {
			b.input("x", 2, 3, 4, 5)
			b.node("Flatten", in("x"), in("y"), map[string]Attr{"axis": aInt(2)})
		}, []int{6, 20}},
		{"transpose default", func(b *builder) {
			b.input("x", 2, 3, 4)
			b.node("Transpose", in("x"), in("y"), nil)
		}, []int{4, 3, 2}},
		{"squeeze input axes", func(b *builder) {
			b.input("x", 1, 3, 1, 4).initInt("a", []int64{2}, 1)
			b.node("Squeeze", in("x", "a"), in("y"), nil)
		}, []int{1, 3, 4}},
		{"unsqueeze attr axes", func(b *builder) {
			b.g.Opset = 11
			b.input("x", 3, 4)
			b.node("Unsqueeze", in("x"), in("y"), map[string]Attr{"axes": aInts(0, -1)})
		}, []int{1, 3, 4, 1}},
		{"reducemean keepdims 0", func(b *builder) {
			b.input("x", 2, 3, 4, 5)
			b.node("ReduceMean", in("x"), in("y"), map[string]Attr{"axes": aInts(2, 3), "keepdims": aInt(0)})
		}, []int{2, 3}},
		{"reducesum all", func(b *builder) {
			b.input("x", 2, 3)
			b.node("ReduceSum", in("x"), in("y"), nil)
		}, []int{1, 1}},
		{"argmax", func(b *builder) {
			b.input("x", 2, 5, 4)
			b.node("ArgMax", in("x"), in("y"), map[string]Attr{"axis": aInt(1), "keepdims": aInt(0)})
		}, []int{2, 4}},
		{"gather scalar", func(b *builder) {
			b.input("x", 2, 5, 4).initInt("i", []int64{-1})
			b.node("Gather", in("x", "i"), in("y"), map[string]Attr{"axis": aInt(1)})
		}, []int{2, 4}},
		{"split", func(b *builder) {
			b.input("x", 2, 6).initInt("s", []int64{2, 4}, 2)
			b.node("Split", in("x", "s"), in("y", "y2"), map[string]Attr{"axis": aInt(1)})
		}, []int{2, 2}},
		{"softmax", func(b *builder) {
			b.input("x", 2, 6)
			b.node("Softmax", in("x"), in("y"), nil)
		}, []int{2, 6}},
		{"clip inputs", func(b *builder) {
			b.input("x", 2, 6).init("lo", []float32{0}).init("hi", []float32{6})
			b.node("Clip", in("x", "lo", "hi"), in("y"), nil)
		}, []int{2, 6}},
		{"batchnorm", func(b *builder) {
			b.input("x", 2, 3, 4, 4).init("s", f(3), 3).init("b", f(3), 3).init("m", f(3), 3).init("v", f(3), 3)
			b.node("BatchNormalization", in("x", "s", "b", "m", "v"), in("y"), nil)
		}, []int{2, 3, 4, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBuilder()
			c.build(b)
			b.output("y")
			shapes, err := InferShapes(b.g, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(shapes["y"], c.want) {
				t.Fatalf("y: got %v, want %v", shapes["y"], c.want)
			}
		})
	}
}

// A dynamic batch flows through a Shape->Gather->Unsqueeze->Concat->Reshape
// chain (what PyTorch exports for x.view(x.size(0), -1)), folded at compile
// time.
func TestInferShapesDynamicBatchShapeChain(t *testing.T) {
	b := newBuilder()
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: "x", DType: Float32, Shape: []int{-1, 3, 4, 4}, DimParams: []string{"N", "", "", ""}})
	b.initInt("zero", []int64{0}).initInt("axes", []int64{0}, 1).initInt("m1", []int64{-1}, 1)
	b.node("Shape", in("x"), in("shape"), nil)
	b.node("Gather", in("shape", "zero"), in("n"), map[string]Attr{"axis": aInt(0)})
	b.node("Unsqueeze", in("n", "axes"), in("n1"), nil)
	b.node("Concat", in("n1", "m1"), in("target"), map[string]Attr{"axis": aInt(0)})
	b.node("Reshape", in("x", "target"), in("y"), nil)
	b.output("y")
	for _, n := range []int{1, 5} {
		shapes, err := InferShapes(b.g, map[string][]int{"x": {n, 3, 4, 4}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{n, 48}; !equalInts(shapes["y"], want) {
			t.Fatalf("batch %d: y %v (want %v)", n, shapes["y"], want)
		}
	}
	if _, err := InferShapes(b.g, nil); !errors.Is(err, ErrMissing) {
		t.Fatalf("no shape for a dynamic input: err = %v (want ErrMissing)", err)
	}
	if _, err := InferShapes(b.g, map[string][]int{"x": {2, 4, 4, 4}}); !errors.Is(err, kernels.ErrShape) {
		t.Fatalf("static dim mismatch: err = %v (want ErrShape)", err)
	}
	a, err := analyze(b.g, Options{InputShapes: map[string][]int{"x": {2, 3, 4, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if a.folded != 4 || len(a.steps) != 1 {
		t.Fatalf("folded %d nodes and kept %d steps (want 4 and 1: only the Reshape view)", a.folded, len(a.steps))
	}
}

func TestInferShapesErrorsNameNodeOpAttr(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *builder)
		is    error
		words []string
	}{
		{"unsupported op", func(b *builder) {
			b.input("x", 1, 2)
			b.node("Einsum", in("x"), in("y"), nil)
		}, ErrUnsupported, []string{"Einsum_y", "Einsum"}},
		{"unsupported attribute", func(b *builder) {
			b.input("x", 1, 2)
			b.node("Relu", in("x"), in("y"), map[string]Attr{"fancy": aInt(1)})
		}, ErrUnsupported, []string{"Relu_y", "Relu", "fancy"}},
		{"unsupported attribute value", func(b *builder) {
			b.input("x", 1, 2, 4, 4)
			b.node("Resize", in("x", "", "sc"), in("y"), map[string]Attr{"mode": aStr("cubic")})
			b.init("sc", []float32{1, 1, 2, 2}, 4)
		}, ErrUnsupported, []string{"Resize_y", "Resize", "mode", "cubic"}},
		{"shape mismatch", func(b *builder) {
			b.input("x", 2, 3).input("z", 2, 4)
			b.node("Add", in("x", "z"), in("y"), nil)
		}, kernels.ErrShape, []string{"Add_y", "Add", "[2 3]", "[2 4]"}},
		{"conv channels", func(b *builder) {
			b.input("x", 1, 3, 5, 5).init("w", make([]float32, 4*2*3*3), 4, 2, 3, 3)
			b.node("Conv", in("x", "w"), in("y"), nil)
		}, kernels.ErrShape, []string{"Conv_y", "Conv", "input channels"}},
		{"runtime reshape shape", func(b *builder) {
			b.input("x", 2, 3).input("s", 2)
			b.node("Reshape", in("x", "s"), in("y"), nil)
		}, ErrUnsupported, []string{"Reshape_y", "constant"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBuilder()
			c.build(b)
			b.output("y")
			_, err := InferShapes(b.g, nil)
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v (want %v)", err, c.is)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Constants, casts and arithmetic over shapes fold too (the pattern
// PyTorch exports for upsampling to twice the input size).
func TestInferShapesFoldsArithmetic(t *testing.T) {
	b := newBuilder().input("x", 1, 3, 5, 7)
	b.node("Constant", nil, in("two"), map[string]Attr{"value": {Kind: AttrTensor, Tensor: &Tensor{DType: Int64, Shape: []int{}, Int: []int64{2}}}})
	b.node("Constant", nil, in("nc"), map[string]Attr{"value_ints": aInts(1, 3)})
	b.node("Shape", in("x"), in("shp"), nil)
	b.initInt("st", []int64{2}, 1).initInt("en", []int64{4}, 1)
	b.node("Slice", in("shp", "st", "en"), in("hw"), nil)
	b.node("Mul", in("hw", "two"), in("hw2"), nil)
	b.node("Cast", in("hw2"), in("hwf"), map[string]Attr{"to": aInt(1)})
	b.node("Cast", in("hwf"), in("hwi"), map[string]Attr{"to": aInt(7)})
	b.node("Concat", in("nc", "hwi"), in("sizes"), map[string]Attr{"axis": aInt(0)})
	b.node("Resize", in("x", "", "", "sizes"), in("y"), map[string]Attr{"mode": aStr("nearest")})
	b.output("y")
	shapes, err := InferShapes(b.g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3, 10, 14}; !equalInts(shapes["y"], want) {
		t.Fatalf("y %v (want %v)", shapes["y"], want)
	}
	a, err := analyze(b.g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.steps) != 1 || a.steps[0].node.Op != "Resize" {
		t.Fatalf("%d runtime steps (want only the Resize)", len(a.steps))
	}
}
