package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"

	"vireo/pkg/graph"
)

// WriteFile encodes m and writes it to path atomically: the bytes go to a
// temporary file in the same directory, which is then renamed over path.
func WriteFile(path string, m *Model) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600; a model is read by other services.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	return nil
}

// Encode serializes m as an ONNX ModelProto. It writes what m says, with
// two defaults: IR version 8 when m.IRVersion is 0, and a default-domain
// opset import of m.Graph.Opset (17 when zero) when m.OpsetImports has no
// default-domain entry and either is empty or m.Graph.Opset is set.
// Errors wrap ErrInvalid and locate the offending value.
func Encode(m *Model) ([]byte, error) {
	if m == nil || m.Graph == nil {
		return nil, newErr(ErrInvalid, "model has no graph")
	}
	opsets, err := m.opsets()
	if err != nil {
		return nil, at(err, "model")
	}
	g, err := encodeGraph(m)
	if err != nil {
		return nil, at(err, "graph")
	}
	var b []byte
	ir := m.IRVersion
	if ir == 0 {
		ir = DefaultIRVersion
	}
	b = appendVarint(b, modelIRVersion, uint64(ir))
	b = appendString(b, modelProducerName, m.ProducerName)
	b = appendString(b, modelProducerVersion, m.ProducerVersion)
	b = appendString(b, modelDomain, m.Domain)
	if m.ModelVersion != 0 {
		b = appendVarint(b, modelModelVersion, uint64(m.ModelVersion))
	}
	b = appendString(b, modelDocString, m.DocString)
	b = slices.Grow(b, len(g)+16)
	b = appendMsg(b, modelGraph, g)
	for _, op := range opsets {
		var o []byte
		o = appendString(o, opsetDomain, op.Domain)
		o = appendVarint(o, opsetVersion, uint64(op.Version))
		b = appendMsg(b, modelOpsetImport, o)
	}
	for _, e := range m.MetadataProps {
		var eb []byte
		eb = appendString(eb, entryKey, e.Key)
		eb = appendString(eb, entryValue, e.Value)
		b = appendMsg(b, modelMetadataProps, eb)
	}
	return b, nil
}

// opsets is m.OpsetImports with the default domain present and agreeing
// with m.Graph.Opset.
func (m *Model) opsets() ([]OpsetImport, error) {
	ops := append([]OpsetImport(nil), m.OpsetImports...)
	found := false
	for _, op := range ops {
		if op.Domain != "" && op.Domain != "ai.onnx" {
			continue
		}
		found = true
		if m.Graph.Opset != 0 && m.Graph.Opset != op.Version {
			return nil, newErr(ErrInvalid, fmt.Sprintf("opset mismatch: Graph.Opset %d, opset_import %d", m.Graph.Opset, op.Version))
		}
	}
	// A model may import only other domains (training ops); the default
	// domain is added when nothing is imported or Graph.Opset asks for it.
	if !found && (len(ops) == 0 || m.Graph.Opset != 0) {
		v := m.Graph.Opset
		if v == 0 {
			v = DefaultOpset
		}
		ops = append([]OpsetImport{{Domain: "", Version: v}}, ops...)
	}
	return ops, nil
}

func encodeGraph(m *Model) ([]byte, error) {
	g := m.Graph
	var b []byte
	for i, n := range g.Nodes {
		nb, err := encodeNode(n)
		if err != nil {
			return nil, at(err, fmt.Sprintf("node[%d] %s %q", i, n.Op, n.Name))
		}
		b = appendMsg(b, graphNode, nb)
	}
	b = appendString(b, graphName, g.Name)
	names := make([]string, 0, len(g.Initializers))
	size := 0
	for name, t := range g.Initializers {
		names = append(names, name)
		if t != nil {
			size += 8*(len(t.Float)+len(t.Int)) + 64
		}
	}
	sort.Strings(names)
	// The initializers are most of the bytes: size the buffer once.
	b = slices.Grow(b, size+len(b))
	for _, name := range names {
		var err error
		b, err = appendTensor(b, graphInitializer, name, g.Initializers[name])
		if err != nil {
			return nil, at(at(err, fmt.Sprintf("%q", name)), "initializer")
		}
	}
	b = appendString(b, graphDocString, m.GraphDocString)
	for _, s := range []struct {
		num  protowire.Number
		name string
		vis  []graph.ValueInfo
	}{{graphInput, "input", g.Inputs}, {graphOutput, "output", g.Outputs}, {graphValueInfo, "value_info", m.ValueInfo}} {
		for i, vi := range s.vis {
			vb, err := encodeValueInfo(vi, m.ElemTypes)
			if err != nil {
				return nil, at(at(err, fmt.Sprintf("%q", vi.Name)), fmt.Sprintf("%s[%d]", s.name, i))
			}
			b = appendMsg(b, s.num, vb)
		}
	}
	return b, nil
}

func encodeNode(n *graph.Node) ([]byte, error) {
	if n == nil {
		return nil, newErr(ErrInvalid, "nil node")
	}
	var b []byte
	for _, in := range n.Inputs {
		b = protowire.AppendTag(b, nodeInput, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.Outputs {
		b = protowire.AppendTag(b, nodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendString(b, nodeName, n.Name)
	if n.Op == "" {
		return nil, newErr(ErrInvalid, "empty op type")
	}
	b = appendString(b, nodeOpType, n.Op)
	names := make([]string, 0, len(n.Attrs))
	for name := range n.Attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ab, err := encodeAttr(name, n.Attrs[name])
		if err != nil {
			return nil, at(err, fmt.Sprintf("attribute %q", name))
		}
		b = appendMsg(b, nodeAttribute, ab)
	}
	b = appendString(b, nodeDomain, n.Domain)
	return b, nil
}

func encodeAttr(name string, a graph.Attr) ([]byte, error) {
	var b []byte
	b = appendString(b, attrName, name)
	var typ uint64
	switch a.Kind {
	case graph.AttrFloat:
		typ = attrTypeFloat
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.Float))
	case graph.AttrInt:
		typ = attrTypeInt
		b = protowire.AppendTag(b, attrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Int))
	case graph.AttrString:
		typ = attrTypeString
		b = protowire.AppendTag(b, attrS, protowire.BytesType)
		b = protowire.AppendString(b, a.String)
	case graph.AttrTensor:
		typ = attrTypeTensor
		if a.Tensor == nil {
			return nil, newErr(ErrInvalid, "tensor attribute with nil Tensor")
		}
		tb, err := encodeTensor(a.Tensor.Name, a.Tensor)
		if err != nil {
			return nil, at(err, "t")
		}
		b = appendMsg(b, attrT, tb)
	case graph.AttrFloats:
		typ = attrTypeFloats
		for _, v := range a.Floats {
			b = protowire.AppendTag(b, attrFloats, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(v))
		}
	case graph.AttrInts:
		typ = attrTypeInts
		for _, v := range a.Ints {
			b = protowire.AppendTag(b, attrInts, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	case graph.AttrStrings:
		typ = attrTypeStrings
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, attrStrings, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	default:
		return nil, newErr(ErrInvalid, fmt.Sprintf("attribute kind %d", int(a.Kind)))
	}
	return appendVarint(b, attrType, typ), nil
}

// EncodeTensor serializes t as a standalone TensorProto (the form of
// ONNX's conformance input_N.pb/output_N.pb files), its data as raw_data
// float32 or int64.
func EncodeTensor(t *graph.Tensor) ([]byte, error) {
	if t == nil {
		return nil, newErr(ErrInvalid, "nil tensor")
	}
	b, err := encodeTensor(t.Name, t)
	if err != nil {
		return nil, at(err, fmt.Sprintf("tensor %q", t.Name))
	}
	return b, nil
}

// encodeTensor writes t as a TensorProto named name.
func encodeTensor(name string, t *graph.Tensor) ([]byte, error) {
	b, err := appendTensor(nil, 0, name, t)
	return b, err
}

// appendTensor appends t as a TensorProto named name, as field num of the
// enclosing message (num 0: the bare message, for EncodeTensor), its data
// as raw_data (little-endian float32 or int64) written straight into b.
func appendTensor(b []byte, num protowire.Number, name string, t *graph.Tensor) ([]byte, error) {
	if t == nil {
		return nil, newErr(ErrInvalid, "nil tensor")
	}
	dt, ok := onnxType(t.DType)
	if !ok {
		return nil, newErr(ErrInvalid, fmt.Sprintf("dtype %v", t.DType))
	}
	var hdr []byte
	numel := 1
	for i, d := range t.Shape {
		if d < 0 {
			return nil, newErr(ErrInvalid, fmt.Sprintf("negative dim %d at axis %d", d, i))
		}
		if d > 0 && numel > maxElems/d {
			return nil, newErr(ErrInvalid, fmt.Sprintf("shape %v: too many elements", t.Shape))
		}
		hdr = protowire.AppendTag(hdr, tensorDims, protowire.VarintType)
		hdr = protowire.AppendVarint(hdr, uint64(d))
		numel *= d
	}
	hdr = appendVarint(hdr, tensorDataType, uint64(dt))
	hdr = appendString(hdr, tensorName, name)
	var rawLen int
	switch t.DType {
	case graph.Float32:
		if len(t.Float) != numel || len(t.Int) != 0 {
			return nil, newErr(ErrInvalid, fmt.Sprintf("float32 tensor with %d Float and %d Int values, want %d Float (shape %v)", len(t.Float), len(t.Int), numel, t.Shape))
		}
		rawLen = 4 * numel
	case graph.Int64:
		if len(t.Int) != numel || len(t.Float) != 0 {
			return nil, newErr(ErrInvalid, fmt.Sprintf("int64 tensor with %d Int and %d Float values, want %d Int (shape %v)", len(t.Int), len(t.Float), numel, t.Shape))
		}
		rawLen = 8 * numel
	}
	msgLen := len(hdr)
	if numel > 0 {
		msgLen += protowire.SizeTag(tensorRawData) + protowire.SizeBytes(rawLen)
	}
	if num != 0 {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(msgLen))
	}
	b = append(b, hdr...)
	if numel == 0 {
		return b, nil
	}
	b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(rawLen))
	off := len(b)
	b = slices.Grow(b, rawLen)[:off+rawLen]
	raw := b[off:]
	if t.DType == graph.Float32 {
		for i, v := range t.Float {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	} else {
		for i, v := range t.Int {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
	}
	return b, nil
}

// encodeValueInfo writes vi as a ValueInfoProto of tensor type. A zero
// DType writes no elem_type, a nil Shape no shape (unknown rank).
func encodeValueInfo(vi graph.ValueInfo, elemTypes map[string]DataType) ([]byte, error) {
	var b []byte
	b = appendString(b, valueInfoName, vi.Name)
	if vi.DType == 0 && vi.Shape == nil {
		return b, nil
	}
	var tt []byte
	if vi.DType != 0 {
		dt, ok := onnxType(vi.DType)
		if !ok {
			return nil, newErr(ErrInvalid, fmt.Sprintf("dtype %v", vi.DType))
		}
		if orig, ok := elemTypes[vi.Name]; ok {
			if d, _ := irDType(orig); d == vi.DType {
				dt = orig
			}
		}
		tt = appendVarint(tt, tensorTypeElemType, uint64(dt))
	}
	if vi.Shape != nil {
		if vi.DimParams != nil && len(vi.DimParams) != len(vi.Shape) {
			return nil, newErr(ErrInvalid, fmt.Sprintf("%d DimParams for %d dims", len(vi.DimParams), len(vi.Shape)))
		}
		var sb []byte
		for i, d := range vi.Shape {
			param := ""
			if vi.DimParams != nil {
				param = vi.DimParams[i]
			}
			var db []byte
			switch {
			case d >= 0 && param == "":
				db = protowire.AppendTag(db, dimValue, protowire.VarintType)
				db = protowire.AppendVarint(db, uint64(d))
			case d == -1:
				db = appendString(db, dimParam, param)
			default:
				return nil, newErr(ErrInvalid, fmt.Sprintf("dim %d at axis %d (param %q): want >= 0, or -1 for a dynamic dim", d, i, param))
			}
			sb = appendMsg(sb, shapeDim, db)
		}
		tt = appendMsg(tt, tensorTypeShape, sb)
	}
	var ty []byte
	ty = appendMsg(ty, typeTensor, tt)
	return appendMsg(b, valueInfoType, ty), nil
}

// appendString appends a string field, omitted when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendMsg appends an embedded message (or bytes) field, even when empty.
func appendMsg(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}
