package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"vireo/pkg/graph"
)

// diff returns "" when a and b are structurally identical, else the path of
// the first difference. It is reflect.DeepEqual with floats compared by
// bits (so NaN equals the same NaN and -0 differs from 0).
func diff(a, b any) string {
	return diffValue("", reflect.ValueOf(a), reflect.ValueOf(b))
}

func diffValue(path string, a, b reflect.Value) string {
	if a.IsValid() != b.IsValid() {
		return path + ": one side missing"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		if math.Float64bits(a.Float()) != math.Float64bits(b.Float()) && !(a.Kind() == reflect.Float32 && math.Float32bits(float32(a.Float())) == math.Float32bits(float32(b.Float()))) {
			return fmt.Sprintf("%s: %v vs %v", path, a.Float(), b.Float())
		}
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() != b.IsNil() {
			return path + ": nil vs non-nil"
		}
		if !a.IsNil() {
			return diffValue(path, a.Elem(), b.Elem())
		}
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil vs empty (%d, %d)", path, a.Len(), b.Len())
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d vs %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return fmt.Sprintf("%s: map of %d vs %d (nil %v, %v)", path, a.Len(), b.Len(), a.IsNil(), b.IsNil())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := diffValue(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv); d != "" {
				return d
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if d := diffValue(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
		}
	}
	return ""
}

func TestDiffCatchesDifferences(t *testing.T) {
	nan := float32(math.NaN())
	a := &graph.Tensor{Shape: []int{2}, Float: []float32{nan, 1}}
	if d := diff(a, &graph.Tensor{Shape: []int{2}, Float: []float32{nan, 1}}); d != "" {
		t.Errorf("equal tensors differ: %s", d)
	}
	for _, b := range []*graph.Tensor{
		{Shape: []int{2}, Float: []float32{nan, float32(math.Nextafter32(1, 2))}},
		{Shape: []int{}, Float: []float32{nan, 1}},
		{Shape: []int{2}, Float: []float32{-nan, 1}},
		{Name: "x", Shape: []int{2}, Float: []float32{nan, 1}},
	} {
		if diff(a, b) == "" {
			t.Errorf("diff(%v, %v) found no difference", a, b)
		}
	}
}

// roundTrip checks decode(encode(m)) == m and that encoding is stable.
func roundTrip(t *testing.T, name string, m *Model) {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Errorf("%s: encode: %v", name, err)
		return
	}
	m2, err := Decode(b)
	if err != nil {
		t.Errorf("%s: decode of encoded model: %v", name, err)
		return
	}
	if d := diff(m, m2); d != "" {
		t.Errorf("%s: round trip differs at Model%s", name, d)
		return
	}
	b2, err := Encode(m2)
	if err != nil || !bytes.Equal(b, b2) {
		t.Errorf("%s: second encoding differs (err %v)", name, err)
	}
}

func TestRoundTripConformanceFiles(t *testing.T) {
	n := 0
	res := scanConformance(t, func(t *testing.T, path string, m *Model) {
		roundTrip(t, path, m)
		n++
	})
	t.Logf("round-tripped %d of %d decodable models", n, res.modelsOK)
	if n != res.modelsOK || n == 0 {
		t.Errorf("round-tripped %d models, want %d", n, res.modelsOK)
	}
}

// tinyModel is a small hand-built model with awkward values: NaN payloads,
// -0, infinities, subnormals, int64 extremes, a dynamic batch dim.
func tinyModel() *Model {
	w := &graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{2, 3}, Float: []float32{
		1.5, float32(math.Copysign(0, -1)), float32(math.Inf(1)),
		math.Float32frombits(0x7fc00123), math.SmallestNonzeroFloat32, math.MaxFloat32,
	}}
	shape := &graph.Tensor{Name: "shape", DType: graph.Int64, Shape: []int{2}, Int: []int64{math.MinInt64, math.MaxInt64}}
	g := &graph.Graph{
		Name: "tiny",
		Nodes: []*graph.Node{
			{Name: "relu", Op: "Relu", Inputs: []string{"mm"}, Outputs: []string{"y"}},
			{Name: "mm", Op: "Gemm", Inputs: []string{"x", "w", ""}, Outputs: []string{"mm"}, Attrs: map[string]graph.Attr{
				"alpha":  {Kind: graph.AttrFloat, Float: 0.1},
				"transB": {Kind: graph.AttrInt, Int: 1},
			}},
			{Op: "Constant", Outputs: []string{"k"}, Attrs: map[string]graph.Attr{
				"value": {Kind: graph.AttrTensor, Tensor: &graph.Tensor{DType: graph.Float32, Shape: []int{}, Float: []float32{-2.5e-40}}},
			}},
			{Op: "Custom", Domain: "com.vireo", Inputs: []string{"y"}, Outputs: []string{"z"}, Attrs: map[string]graph.Attr{
				"s":  {Kind: graph.AttrString, String: "mode"},
				"fs": {Kind: graph.AttrFloats, Floats: []float32{0.3, -1e-45}},
				"is": {Kind: graph.AttrInts, Ints: []int64{-1, 0, 1 << 62}},
				"ss": {Kind: graph.AttrStrings, Strings: []string{"a", ""}},
			}},
		},
		Inputs:       []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{-1, 2}, DimParams: []string{"batch", ""}}},
		Outputs:      []graph.ValueInfo{{Name: "z", DType: graph.Float32, Shape: []int{-1, 3}}},
		Initializers: map[string]*graph.Tensor{"w": w, "shape": shape},
		Opset:        17,
	}
	m := NewModel(g)
	m.DocString = "tiny test model"
	m.MetadataProps = []MetadataProp{{"labels", "cat,dog"}, {"labels", "dup"}}
	m.OpsetImports = append(m.OpsetImports, OpsetImport{Domain: "com.vireo", Version: 1})
	m.ValueInfo = []graph.ValueInfo{{Name: "mm", DType: graph.Float32}, {Name: "k", DType: graph.Float32, Shape: []int{}}}
	return m
}

func TestRoundTripHandBuilt(t *testing.T) {
	m := tinyModel()
	roundTrip(t, "tiny", m)
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// Bit-exact floats, NaN payload included.
	for i, v := range m.Graph.Initializers["w"].Float {
		if got := m2.Graph.Initializers["w"].Float[i]; math.Float32bits(got) != math.Float32bits(v) {
			t.Errorf("w[%d] = %#x, want %#x", i, math.Float32bits(got), math.Float32bits(v))
		}
	}
	if m2.ProducerName != "vireo" || m2.IRVersion != 8 || m2.Graph.Opset != 17 {
		t.Errorf("defaults: producer %q ir %d opset %d", m2.ProducerName, m2.IRVersion, m2.Graph.Opset)
	}
}

// boolModel has no defaults filled in and BOOL inputs/outputs.
func boolModel() *Model {
	g := &graph.Graph{
		Nodes:   []*graph.Node{{Op: "Not", Inputs: []string{"b"}, Outputs: []string{"c"}}},
		Inputs:  []graph.ValueInfo{{Name: "b", DType: graph.Int64, Shape: []int{3}}},
		Outputs: []graph.ValueInfo{{Name: "c", DType: graph.Int64, Shape: []int{3}}},
	}
	return &Model{Graph: g, ElemTypes: map[string]DataType{"b": Bool, "c": Bool}}
}

func TestEncodeDefaultsAndElemTypes(t *testing.T) {
	m := boolModel()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m2.IRVersion != DefaultIRVersion || m2.Graph.Opset != DefaultOpset {
		t.Errorf("defaults: ir %d opset %d, want %d %d", m2.IRVersion, m2.Graph.Opset, DefaultIRVersion, DefaultOpset)
	}
	if !reflect.DeepEqual(m2.ElemTypes, m.ElemTypes) {
		t.Errorf("ElemTypes %v, want %v", m2.ElemTypes, m.ElemTypes)
	}
}

func TestEncodeErrors(t *testing.T) {
	base := func() *Model { return tinyModel() }
	for _, c := range []struct {
		name   string
		break_ func(m *Model)
		msg    string
	}{
		{"short data", func(m *Model) { m.Graph.Initializers["w"].Float = m.Graph.Initializers["w"].Float[:5] }, `initializer "w": float32 tensor with 5 Float and 0 Int values, want 6`},
		{"negative dim", func(m *Model) { m.Graph.Initializers["shape"].Shape = []int{-2} }, `initializer "shape": negative dim -2`},
		{"huge shape", func(m *Model) { m.Graph.Initializers["shape"].Shape = []int{1 << 32, 1 << 32, 0} }, "too many elements"},
		{"bad dtype", func(m *Model) { m.Graph.Initializers["w"].DType = 9 }, "dtype dtype(9)"},
		{"attr kind", func(m *Model) { m.Graph.Nodes[1].Attrs["bad"] = graph.Attr{} }, `node[1] Gemm "mm".attribute "bad": attribute kind 0`},
		{"nil tensor attr", func(m *Model) { m.Graph.Nodes[2].Attrs["value"] = graph.Attr{Kind: graph.AttrTensor} }, "nil Tensor"},
		{"dim params", func(m *Model) { m.Graph.Inputs[0].DimParams = []string{"b"} }, `input[0] "x": 1 DimParams for 2 dims`},
		{"bad dim", func(m *Model) { m.Graph.Outputs[0].Shape = []int{-3, 3} }, `output[0] "z": dim -3 at axis 0`},
		{"opset", func(m *Model) { m.Graph.Opset = 13 }, "opset mismatch: Graph.Opset 13, opset_import 17"},
		{"empty op", func(m *Model) { m.Graph.Nodes[0].Op = "" }, "empty op type"},
		{"no graph", func(m *Model) { m.Graph = nil }, "model has no graph"},
	} {
		m := base()
		c.break_(m)
		_, err := Encode(m)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want ErrInvalid containing %q", c.name, err, c.msg)
		}
	}
}

func TestWriteFileReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.onnx")
	m := tinyModel()
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	m2, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(m, m2); d != "" {
		t.Errorf("file round trip differs at %s", d)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the model (no temp files)", len(entries))
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestONNXCheckerAcceptsEncoded has the reference implementation's checker
// (Debian's python3-onnx) validate a model written by Encode.
func TestONNXCheckerAcceptsEncoded(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		t.Skipf("python3-onnx not available (%s -c 'import onnx': %v)", py, err)
	}
	w := &graph.Tensor{Name: "w", DType: graph.Float32, Shape: []int{4, 3}, Float: make([]float32, 12)}
	bias := &graph.Tensor{Name: "b", DType: graph.Float32, Shape: []int{4}, Float: []float32{1, 2, 3, 4}}
	shape := &graph.Tensor{Name: "shape", DType: graph.Int64, Shape: []int{2}, Int: []int64{-1, 4}}
	g := &graph.Graph{
		Name: "checked",
		Nodes: []*graph.Node{
			{Name: "fc", Op: "Gemm", Inputs: []string{"x", "w", "b"}, Outputs: []string{"h"}, Attrs: map[string]graph.Attr{
				"transB": {Kind: graph.AttrInt, Int: 1}, "alpha": {Kind: graph.AttrFloat, Float: 1},
			}},
			{Name: "act", Op: "LeakyRelu", Inputs: []string{"h"}, Outputs: []string{"a"}, Attrs: map[string]graph.Attr{
				"alpha": {Kind: graph.AttrFloat, Float: 0.1},
			}},
			{Name: "k", Op: "Constant", Outputs: []string{"two"}, Attrs: map[string]graph.Attr{
				"value": {Kind: graph.AttrTensor, Tensor: &graph.Tensor{DType: graph.Float32, Shape: []int{}, Float: []float32{2}}},
			}},
			{Name: "scale", Op: "Mul", Inputs: []string{"a", "two"}, Outputs: []string{"s"}},
			{Name: "rs", Op: "Reshape", Inputs: []string{"s", "shape"}, Outputs: []string{"y"}},
		},
		Inputs:       []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{-1, 3}, DimParams: []string{"batch", ""}}},
		Outputs:      []graph.ValueInfo{{Name: "y", DType: graph.Float32, Shape: []int{-1, 4}, DimParams: []string{"batch", ""}}},
		Initializers: map[string]*graph.Tensor{"w": w, "b": bias, "shape": shape},
	}
	m := NewModel(g)
	m.MetadataProps = []MetadataProp{{"task", "classify"}}
	path := filepath.Join(t.TempDir(), "checked.onnx")
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	script := `import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print(m.producer_name, m.ir_version, m.opset_import[0].version, len(m.graph.node), m.graph.input[0].type.tensor_type.shape.dim[0].dim_param)`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker rejected the encoded model: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "vireo 8 17 5 batch"; got != want {
		t.Errorf("python onnx read %q, want %q", got, want)
	}
}

func TestEncodeTensorRoundTrip(t *testing.T) {
	for _, tt := range []*graph.Tensor{
		tinyModel().Graph.Initializers["w"],
		tinyModel().Graph.Initializers["shape"],
		{Name: "scalar", DType: graph.Int64, Shape: []int{}, Int: []int64{-7}},
		{Name: "empty", DType: graph.Float32, Shape: []int{3, 0}, Float: []float32{}},
	} {
		b, err := EncodeTensor(tt)
		if err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		got, err := DecodeTensor(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		if d := diff(tt, got); d != "" {
			t.Errorf("%s: round trip differs at %s", tt.Name, d)
		}
	}
	if _, err := EncodeTensor(&graph.Tensor{Name: "x", DType: graph.Float32, Shape: []int{2}, Float: []float32{1}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `tensor "x"`) {
		t.Errorf("short tensor: %v", err)
	}
}
