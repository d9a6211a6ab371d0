package onnx

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"vireo/pkg/graph"
)

// pb builds protobuf bytes by hand, independently of Encode, so the decoder
// can be fed every field form real exporters use.
type pb []byte

func (b pb) varint(n protowire.Number, v uint64) pb {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
func (b pb) fixed32(n protowire.Number, v uint32) pb {
	b = protowire.AppendTag(b, n, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}
func (b pb) fixed64(n protowire.Number, v uint64) pb {
	b = protowire.AppendTag(b, n, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}
func (b pb) bytes(n protowire.Number, v []byte) pb {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
func (b pb) str(n protowire.Number, s string) pb { return b.bytes(n, []byte(s)) }
func (b pb) packed(n protowire.Number, vs ...uint64) pb {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, v)
	}
	return b.bytes(n, p)
}

func i64(v int64) uint64 { return uint64(v) }

// tensorPB is a TensorProto header: name, dims (packed), data type.
func tensorPB(name string, dt DataType, dims ...int64) pb {
	var b pb
	ds := make([]uint64, len(dims))
	for i, d := range dims {
		ds[i] = i64(d)
	}
	if len(dims) > 0 {
		b = b.packed(tensorDims, ds...)
	}
	return b.varint(tensorDataType, uint64(dt)).str(tensorName, name)
}

func TestHalfToFloat32(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},                       // largest finite half
		{0x0001, float32(math.Ldexp(1, -24))}, // smallest subnormal, 5.96e-8
		{0x03ff, float32(math.Ldexp(1023, -24))},
		{0x0400, float32(math.Ldexp(1, -14))}, // smallest normal
		{0x3555, 0.333251953125},
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
		{0x0000, 0},
	} {
		if got := halfToFloat32(c.h); got != c.want {
			t.Errorf("half %#04x = %g, want %g", c.h, got, c.want)
		}
	}
	if got := halfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("half 0x8000 = %g, want -0", got)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00} {
		if got := halfToFloat32(h); !math.IsNaN(float64(got)) {
			t.Errorf("half %#04x = %g, want NaN", h, got)
		}
	}
	// Every finite half against the definition (-1)^s * m * 2^(e-25).
	for h := 0; h < 1<<16; h++ {
		e := (h >> 10) & 0x1f
		if e == 0x1f {
			continue
		}
		m := h & 0x3ff
		var want float64
		if e == 0 {
			want = math.Ldexp(float64(m), -24)
		} else {
			want = math.Ldexp(float64(m|0x400), e-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if got := halfToFloat32(uint16(h)); float64(got) != want {
			t.Fatalf("half %#04x = %g, want %g", h, got, want)
		}
	}
	if got := bfloat16ToFloat32(0x3f80); got != 1 {
		t.Errorf("bfloat16 0x3f80 = %g, want 1", got)
	}
	if got := bfloat16ToFloat32(0xc040); got != -3 {
		t.Errorf("bfloat16 0xc040 = %g, want -3", got)
	}
}

func TestDecodeTensorForms(t *testing.T) {
	le32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = protowire.AppendFixed32(b, math.Float32bits(v))
		}
		return b
	}
	neg3 := i64(-3)
	for _, c := range []struct {
		name string
		b    pb
		want *graph.Tensor
	}{
		{"raw float", tensorPB("w", Float, 2).bytes(tensorRawData, le32(1.5, -2)),
			&graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{2}, Float: []float32{1.5, -2}}},
		{"float_data packed", tensorPB("w", Float, 1, 2).bytes(tensorFloatData, le32(3, 4)),
			&graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{1, 2}, Float: []float32{3, 4}}},
		{"float_data unpacked", tensorPB("w", Float, 2).fixed32(tensorFloatData, math.Float32bits(5)).fixed32(tensorFloatData, math.Float32bits(6)),
			&graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{2}, Float: []float32{5, 6}}},
		{"scalar", tensorPB("s", Float).bytes(tensorRawData, le32(7)),
			&graph.Tensor{Name: "s", DType: graph.Float32, Shape: []int{}, Float: []float32{7}}},
		{"empty", tensorPB("e", Float, 0, 3),
			&graph.Tensor{Name: "e", DType: graph.Float32, Shape: []int{0, 3}, Float: []float32{}}},
		{"fp16 int32_data", tensorPB("h", Float16, 3).packed(tensorInt32Data, 0x3c00, 0xc000, 0x7bff),
			&graph.Tensor{Name: "h", DType: graph.Float32, Shape: []int{3}, Float: []float32{1, -2, 65504}}},
		{"fp16 raw", tensorPB("h", Float16, 2).bytes(tensorRawData, []byte{0x01, 0x00, 0x00, 0x3c}),
			&graph.Tensor{Name: "h", DType: graph.Float32, Shape: []int{2}, Float: []float32{float32(math.Ldexp(1, -24)), 1}}},
		{"bf16 raw", tensorPB("b", BFloat16, 1).bytes(tensorRawData, []byte{0x80, 0x3f}),
			&graph.Tensor{Name: "b", DType: graph.Float32, Shape: []int{1}, Float: []float32{1}}},
		{"double_data", tensorPB("d", Double, 2).fixed64(tensorDoubleData, math.Float64bits(0.1)).fixed64(tensorDoubleData, math.Float64bits(1e300)),
			&graph.Tensor{Name: "d", DType: graph.Float32, Shape: []int{2}, Float: []float32{0.1, float32(math.Inf(1))}}},
		{"int64_data", tensorPB("i", Int64, 3).packed(tensorInt64Data, 1, neg3, 1<<40),
			&graph.Tensor{Name: "i", DType: graph.Int64, Shape: []int{3}, Int: []int64{1, -3, 1 << 40}}},
		{"raw int64", tensorPB("i", Int64, 1).bytes(tensorRawData, protowire.AppendFixed64(nil, neg3)),
			&graph.Tensor{Name: "i", DType: graph.Int64, Shape: []int{1}, Int: []int64{-3}}},
		{"int32_data", tensorPB("i", Int32, 2).packed(tensorInt32Data, neg3, 7),
			&graph.Tensor{Name: "i", DType: graph.Int64, Shape: []int{2}, Int: []int64{-3, 7}}},
		{"int8 int32_data", tensorPB("i", Int8, 2).packed(tensorInt32Data, neg3, 127),
			&graph.Tensor{Name: "i", DType: graph.Int64, Shape: []int{2}, Int: []int64{-3, 127}}},
		{"int8 raw", tensorPB("i", Int8, 2).bytes(tensorRawData, []byte{0xfd, 0x7f}),
			&graph.Tensor{Name: "i", DType: graph.Int64, Shape: []int{2}, Int: []int64{-3, 127}}},
		{"uint8 raw", tensorPB("u", Uint8, 2).bytes(tensorRawData, []byte{0xfd, 0x7f}),
			&graph.Tensor{Name: "u", DType: graph.Int64, Shape: []int{2}, Int: []int64{253, 127}}},
		{"bool raw", tensorPB("b", Bool, 3).bytes(tensorRawData, []byte{0, 1, 2}),
			&graph.Tensor{Name: "b", DType: graph.Int64, Shape: []int{3}, Int: []int64{0, 1, 1}}},
		{"uint64_data", tensorPB("u", Uint64, 1).packed(tensorUint64Data, 1<<62),
			&graph.Tensor{Name: "u", DType: graph.Int64, Shape: []int{1}, Int: []int64{1 << 62}}},
	} {
		got, err := DecodeTensor(c.b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDecodeTensorErrors(t *testing.T) {
	var ext pb
	ext = ext.str(entryKey, "location").str(entryValue, "weights.bin")
	for _, c := range []struct {
		name string
		b    []byte
		kind error
		msg  string // substring of the error
	}{
		{"external", tensorPB("conv.w", Float, 2).bytes(tensorExternalData, ext).varint(tensorDataLocation, 1), ErrUnsupported, `"conv.w": external data`},
		{"string", tensorPB("s", String, 1).str(tensorStringData, "x"), ErrUnsupported, `"s": STRING tensor`},
		{"complex", tensorPB("c", Complex64, 1).bytes(tensorFloatData, make([]byte, 8)), ErrUnsupported, "COMPLEX64"},
		{"float8", tensorPB("f", Float8E4M3FN, 1).bytes(tensorRawData, []byte{1}), ErrUnsupported, "FLOAT8E4M3FN"},
		{"raw size", tensorPB("w", Float, 2, 3).bytes(tensorRawData, make([]byte, 20)), ErrMalformed, `"w": raw_data has 20 bytes, want 24 (6 elements of FLOAT, dims [2 3])`},
		{"typed count", tensorPB("w", Int64, 3).packed(tensorInt64Data, 1, 2), ErrMalformed, "int64_data has 2 values, want 3"},
		{"wrong typed field", tensorPB("w", Float, 1).packed(tensorInt64Data, 1), ErrMalformed, "in fields other than float_data"},
		{"raw and typed", tensorPB("w", Float, 1).bytes(tensorRawData, make([]byte, 4)).fixed32(tensorFloatData, 0), ErrMalformed, "both raw_data"},
		{"negative dim", tensorPB("w", Float, 2, -1), ErrMalformed, "negative dim -1 at axis 1"},
		{"huge dims", tensorPB("w", Float, 1<<30, 1<<30, 1<<30), ErrMalformed, "too many elements"},
		{"no dtype", pb(nil).str(tensorName, "w"), ErrMalformed, "data_type is not set"},
		{"dims wrong wire type", pb(nil).fixed32(tensorDims, 3).varint(tensorDataType, 1), ErrMalformed, "field 1 (dims): wire type fixed32"},
		{"name wrong wire type", pb(nil).varint(tensorName, 3), ErrMalformed, "field 8 (name): wire type varint, want bytes"},
		{"truncated", tensorPB("w", Float, 4).bytes(tensorRawData, make([]byte, 16))[:20], ErrMalformed, "field 9"},
		{"absurd length", append(pb(nil).str(tensorName, "w"), 0x4a, 0xff, 0xff, 0xff, 0xff, 0x0f), ErrMalformed, "field 9"},
		{"bad tag", []byte{0x00}, ErrMalformed, "bad field tag"},
		{"uint64 overflow", tensorPB("u", Uint64, 1).packed(tensorUint64Data, 1<<63), ErrUnsupported, "does not fit int64"},
	} {
		_, err := DecodeTensor(c.b)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.name, err, c.kind, c.msg)
		}
	}
}

// modelPB wraps graph bytes in a ModelProto with opset 17.
func modelPB(g pb) pb {
	var op pb
	op = op.str(opsetDomain, "").varint(opsetVersion, 17)
	var m pb
	return m.varint(modelIRVersion, 8).bytes(modelOpsetImport, op).str(modelProducerName, "test").bytes(modelGraph, g)
}

func valueInfoPB(name string, dt DataType, dims ...any) pb {
	var shape pb
	for _, d := range dims {
		var dim pb
		switch d := d.(type) {
		case int:
			dim = dim.varint(dimValue, uint64(d))
		case string:
			dim = dim.str(dimParam, d)
		}
		shape = shape.bytes(shapeDim, dim)
	}
	var tt pb
	tt = tt.varint(tensorTypeElemType, uint64(dt)).bytes(tensorTypeShape, shape)
	var ty pb
	ty = ty.bytes(typeTensor, tt)
	var vi pb
	return vi.str(valueInfoName, name).bytes(valueInfoType, ty)
}

func attrPB(name string, typ int, fill func(pb) pb) pb {
	var a pb
	a = a.str(attrName, name).varint(attrType, uint64(typ))
	return fill(a)
}

func TestDecodeModel(t *testing.T) {
	var cval pb
	cval = tensorPB("", Int64, 2).packed(tensorInt64Data, 1, i64(-1))
	var relu, cst, rs pb
	// Nodes out of order: Relu consumes the Reshape's output, listed first.
	relu = relu.str(nodeInput, "r").str(nodeOutput, "y").str(nodeName, "relu").str(nodeOpType, "Relu")
	cst = cst.str(nodeOutput, "shape").str(nodeOpType, "Constant").
		bytes(nodeAttribute, attrPB("value", attrTypeTensor, func(a pb) pb { return a.bytes(attrT, cval) }))
	rs = rs.str(nodeInput, "x").str(nodeInput, "shape").str(nodeOutput, "r").str(nodeOpType, "Reshape").str(nodeDomain, "").
		bytes(nodeAttribute, attrPB("allowzero", attrTypeInt, func(a pb) pb { return a.varint(attrI, 0) }))
	var cf, custom pb
	cf = cf.str(nodeOutput, "c").str(nodeOpType, "Constant").
		bytes(nodeAttribute, attrPB("value_floats", attrTypeFloats, func(a pb) pb {
			return a.fixed32(attrFloats, math.Float32bits(0.5)).fixed32(attrFloats, math.Float32bits(-1))
		}))
	custom = custom.str(nodeInput, "y").str(nodeOutput, "z").str(nodeOpType, "Foo").str(nodeDomain, "com.example").
		bytes(nodeAttribute, attrPB("mode", attrTypeString, func(a pb) pb { return a.str(attrS, "fast") })).
		bytes(nodeAttribute, attrPB("alpha", 0, func(a pb) pb { return a.fixed32(attrF, math.Float32bits(0.25)) })). // type inferred
		bytes(nodeAttribute, attrPB("names", attrTypeStrings, func(a pb) pb { return a.str(attrStrings, "a").str(attrStrings, "b") })).
		bytes(nodeAttribute, attrPB("axes", attrTypeInts, func(a pb) pb { return a.packed(attrInts, 0, i64(-1)) }))
	var g pb
	g = g.str(graphName, "g").bytes(graphNode, relu).bytes(graphNode, cst).bytes(graphNode, rs).bytes(graphNode, cf).bytes(graphNode, custom).
		bytes(graphInput, valueInfoPB("x", Float, "batch", 3, 4)).
		bytes(graphInput, valueInfoPB("mask", Bool, 2)).
		bytes(graphOutput, valueInfoPB("z", Float, "batch", 12)).
		bytes(graphValueInfo, valueInfoPB("r", Float, 1, 12))
	m, err := Decode(modelPB(g))
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 8 || m.ProducerName != "test" || m.Graph.Opset != 17 || !reflect.DeepEqual(m.OpsetImports, []OpsetImport{{"", 17}}) {
		t.Errorf("model fields: %+v", m)
	}
	var ops []string
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.Op)
	}
	if want := []string{"Relu", "Constant", "Reshape", "Constant", "Foo"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("node order %v, want file order %v", ops, want)
	}
	wantValue := graph.Attr{Kind: graph.AttrTensor, Tensor: &graph.Tensor{DType: graph.Int64, Shape: []int{2}, Int: []int64{1, -1}}}
	if got := m.Graph.Nodes[1].Attrs["value"]; !reflect.DeepEqual(got, wantValue) {
		t.Errorf("Constant value = %+v, want %+v", got, wantValue)
	}
	if got := m.Graph.Nodes[3].Attrs["value_floats"]; !reflect.DeepEqual(got, graph.Attr{Kind: graph.AttrFloats, Floats: []float32{0.5, -1}}) {
		t.Errorf("value_floats = %+v", got)
	}
	foo := m.Graph.Nodes[4]
	wantFoo := map[string]graph.Attr{
		"mode":  {Kind: graph.AttrString, String: "fast"},
		"alpha": {Kind: graph.AttrFloat, Float: 0.25},
		"names": {Kind: graph.AttrStrings, Strings: []string{"a", "b"}},
		"axes":  {Kind: graph.AttrInts, Ints: []int64{0, -1}},
	}
	if foo.Domain != "com.example" || !reflect.DeepEqual(foo.Attrs, wantFoo) {
		t.Errorf("custom node %+v, want domain com.example attrs %+v", foo, wantFoo)
	}
	wantIn := []graph.ValueInfo{
		{Name: "x", DType: graph.Float32, Shape: []int{-1, 3, 4}, DimParams: []string{"batch", "", ""}},
		{Name: "mask", DType: graph.Int64, Shape: []int{2}},
	}
	if !reflect.DeepEqual(m.Graph.Inputs, wantIn) {
		t.Errorf("inputs %+v, want %+v", m.Graph.Inputs, wantIn)
	}
	if !reflect.DeepEqual(m.ElemTypes, map[string]DataType{"mask": Bool}) {
		t.Errorf("ElemTypes %v, want mask: BOOL", m.ElemTypes)
	}
	if len(m.ValueInfo) != 1 || m.ValueInfo[0].Name != "r" {
		t.Errorf("value_info %+v", m.ValueInfo)
	}
}

func TestDecodeModelErrors(t *testing.T) {
	var sub pb
	sub = sub.str(graphName, "then")
	var ifNode pb
	ifNode = ifNode.str(nodeInput, "c").str(nodeOutput, "y").str(nodeName, "branch").str(nodeOpType, "If").
		bytes(nodeAttribute, attrPB("then_branch", attrTypeGraph, func(a pb) pb { return a.bytes(attrG, sub) }))
	var badAttr pb
	badAttr = badAttr.str(nodeOpType, "Conv").str(nodeName, "conv1").
		bytes(nodeAttribute, attrPB("pads", attrTypeInts, func(a pb) pb { return a.fixed64(attrInts, 1) }))
	var seqType, seqVI pb
	seqType = seqType.bytes(typeSequence, nil)
	seqVI = seqVI.str(valueInfoName, "xs").bytes(valueInfoType, seqType)
	negDim := pb(nil).bytes(graphInput, func() pb {
		var d, s, tt, ty, vi pb
		d = d.varint(dimValue, i64(-2))
		s = s.bytes(shapeDim, d)
		tt = tt.varint(tensorTypeElemType, 1).bytes(tensorTypeShape, s)
		ty = ty.bytes(typeTensor, tt)
		return vi.str(valueInfoName, "x").bytes(valueInfoType, ty)
	}())
	var badInit pb
	badInit = badInit.bytes(graphInitializer, tensorPB("fc.w", Float, 2).bytes(tensorRawData, make([]byte, 4)))
	for _, c := range []struct {
		name string
		b    []byte
		kind error
		msg  string
	}{
		{"subgraph", modelPB(pb(nil).bytes(graphNode, ifNode)), ErrUnsupported, `graph.node[0] If "branch".attribute[0] "then_branch": subgraph attribute`},
		{"attr wire type", modelPB(pb(nil).bytes(graphNode, badAttr)), ErrMalformed, `node[0] Conv "conv1".attribute[0] "pads": field 8 (ints): wire type fixed64`},
		{"sequence input", modelPB(pb(nil).bytes(graphInput, seqVI)), ErrUnsupported, `graph.input[0] "xs": sequence type`},
		{"negative dim", modelPB(negDim), ErrMalformed, `input[0] "x".shape.dim[0]: dim_value -2 out of range`},
		{"initializer", modelPB(badInit), ErrMalformed, `graph.initializer[0] "fc.w": raw_data has 4 bytes, want 8`},
		{"no graph", pb(nil).varint(modelIRVersion, 8), ErrMalformed, "model has no graph"},
		{"empty", nil, ErrMalformed, "model has no graph"},
		{"graph wire type", pb(nil).varint(modelGraph, 1), ErrMalformed, "model: field 7 (graph): wire type varint"},
		{"functions", pb(nil).bytes(modelFunctions, nil), ErrUnsupported, "model-local functions"},
		{"not protobuf", []byte("this is not a model"), ErrMalformed, ""},
	} {
		_, err := Decode(c.b)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.name, err, c.kind, c.msg)
		}
	}
}
