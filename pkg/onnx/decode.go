package onnx

import (
	"bytes"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"

	"vireo/pkg/graph"
)

// ReadFile reads and decodes the ONNX model at path.
func ReadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Decode decodes a serialized ONNX ModelProto. The node list is kept in file
// order (it need not be sorted). Errors wrap ErrMalformed or ErrUnsupported
// and are *Error values locating the problem.
func Decode(b []byte) (*Model, error) {
	m := &Model{}
	var graphParts [][]byte
	err := walk(b, func(f field) error {
		var err error
		switch f.num {
		case modelIRVersion:
			m.IRVersion, err = f.int64("ir_version")
		case modelProducerName:
			m.ProducerName, err = f.str("producer_name")
		case modelProducerVersion:
			m.ProducerVersion, err = f.str("producer_version")
		case modelDomain:
			m.Domain, err = f.str("domain")
		case modelModelVersion:
			m.ModelVersion, err = f.int64("model_version")
		case modelDocString:
			m.DocString, err = f.str("doc_string")
		case modelGraph:
			var g []byte
			g, err = f.msg("graph")
			graphParts = append(graphParts, g)
		case modelOpsetImport:
			var op OpsetImport
			op, err = decodeOpset(f)
			err = at(err, fmt.Sprintf("opset_import[%d]", len(m.OpsetImports)))
			m.OpsetImports = append(m.OpsetImports, op)
		case modelMetadataProps:
			var e MetadataProp
			e, err = decodeEntry(f, "metadata_props")
			err = at(err, fmt.Sprintf("metadata_props[%d]", len(m.MetadataProps)))
			m.MetadataProps = append(m.MetadataProps, e)
		case modelTrainingInfo:
			err = newErr(ErrUnsupported, "training_info")
		case modelFunctions:
			err = newErr(ErrUnsupported, "model-local functions")
		}
		return err
	})
	if err != nil {
		return nil, at(err, "model")
	}
	var graphBytes []byte
	switch len(graphParts) {
	case 0:
		return nil, newErr(ErrMalformed, "model has no graph")
	case 1:
		graphBytes = graphParts[0] // no copy: the graph is most of the file
	default:
		// A message field given twice is merged, which for protobuf is
		// the same as decoding the concatenation.
		graphBytes = bytes.Join(graphParts, nil)
	}
	if err := decodeGraph(graphBytes, m); err != nil {
		return nil, at(err, "graph")
	}
	seen := map[string]bool{}
	for i, op := range m.OpsetImports {
		d := op.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if seen[d] {
			return nil, at(newErr(ErrMalformed, fmt.Sprintf("domain %q imported twice", op.Domain)), fmt.Sprintf("model.opset_import[%d]", i))
		}
		seen[d] = true
		if d == "" {
			m.Graph.Opset = op.Version
		}
	}
	return m, nil
}

func decodeOpset(f field) (OpsetImport, error) {
	var op OpsetImport
	b, err := f.msg("opset_import")
	if err != nil {
		return op, err
	}
	err = walk(b, func(f field) error {
		var err error
		switch f.num {
		case opsetDomain:
			op.Domain, err = f.str("domain")
		case opsetVersion:
			op.Version, err = f.int64("version")
		}
		return err
	})
	return op, err
}

func decodeEntry(f field, name string) (MetadataProp, error) {
	var e MetadataProp
	b, err := f.msg(name)
	if err != nil {
		return e, err
	}
	err = walk(b, func(f field) error {
		var err error
		switch f.num {
		case entryKey:
			e.Key, err = f.str("key")
		case entryValue:
			e.Value, err = f.str("value")
		}
		return err
	})
	return e, err
}

func decodeGraph(b []byte, m *Model) error {
	g := &graph.Graph{Initializers: map[string]*graph.Tensor{}}
	m.Graph = g
	var nodes [][]byte
	nInit := 0
	err := walk(b, func(f field) error {
		var err error
		switch f.num {
		case graphNode:
			var nb []byte
			nb, err = f.msg("node")
			nodes = append(nodes, nb)
		case graphName:
			g.Name, err = f.str("name")
		case graphDocString:
			m.GraphDocString, err = f.str("doc_string")
		case graphInitializer:
			var tb []byte
			if tb, err = f.msg("initializer"); err != nil {
				return err
			}
			var t *graph.Tensor
			t, err = decodeTensor(tb)
			if err == nil {
				if _, dup := g.Initializers[t.Name]; dup {
					err = newErr(ErrMalformed, fmt.Sprintf("duplicate initializer %q", t.Name))
				}
				g.Initializers[t.Name] = t
			}
			err = at(err, fmt.Sprintf("initializer[%d]", nInit))
			nInit++
		case graphSparseInitializer:
			err = newErr(ErrUnsupported, "sparse_initializer")
		case graphInput, graphOutput, graphValueInfo:
			var vi graph.ValueInfo
			var dt DataType
			vi, dt, err = decodeValueInfo(f)
			switch f.num {
			case graphInput:
				err = at(err, fmt.Sprintf("input[%d]", len(g.Inputs)))
				g.Inputs = append(g.Inputs, vi)
			case graphOutput:
				err = at(err, fmt.Sprintf("output[%d]", len(g.Outputs)))
				g.Outputs = append(g.Outputs, vi)
			default:
				err = at(err, fmt.Sprintf("value_info[%d]", len(m.ValueInfo)))
				m.ValueInfo = append(m.ValueInfo, vi)
			}
			if err == nil && dt != Undefined {
				if want, _ := onnxType(vi.DType); want != dt {
					if m.ElemTypes == nil {
						m.ElemTypes = map[string]DataType{}
					}
					m.ElemTypes[vi.Name] = dt
				}
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	g.Nodes = make([]*graph.Node, 0, len(nodes))
	for i, nb := range nodes {
		n, err := decodeNode(nb, i)
		if err != nil {
			return err
		}
		g.Nodes = append(g.Nodes, n)
	}
	return nil
}

// decodeNode reads node i. Attributes are decoded after the node's own
// fields so that errors can name the node's op and name.
func decodeNode(b []byte, i int) (*graph.Node, error) {
	n := &graph.Node{}
	var attrs [][]byte
	err := walk(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case nodeInput:
			s, err = f.str("input")
			n.Inputs = append(n.Inputs, s)
		case nodeOutput:
			s, err = f.str("output")
			n.Outputs = append(n.Outputs, s)
		case nodeName:
			n.Name, err = f.str("name")
		case nodeOpType:
			n.Op, err = f.str("op_type")
		case nodeDomain:
			n.Domain, err = f.str("domain")
		case nodeAttribute:
			var ab []byte
			ab, err = f.msg("attribute")
			attrs = append(attrs, ab)
		}
		return err
	})
	where := fmt.Sprintf("node[%d] %s %q", i, n.Op, n.Name)
	if err == nil && n.Op == "" {
		err = newErr(ErrMalformed, "node has no op_type")
	}
	if err != nil {
		return nil, at(err, where)
	}
	if len(attrs) > 0 {
		n.Attrs = make(map[string]graph.Attr, len(attrs))
	}
	for j, ab := range attrs {
		name, a, err := decodeAttr(ab)
		if err != nil {
			return nil, at(at(err, fmt.Sprintf("attribute[%d] %q", j, name)), where)
		}
		if _, dup := n.Attrs[name]; dup {
			return nil, at(newErr(ErrMalformed, fmt.Sprintf("duplicate attribute %q", name)), where)
		}
		n.Attrs[name] = a
	}
	return n, nil
}

// decodeAttr reads an AttributeProto. Files from before IR version 3 may
// leave type unset; the type is then inferred from the value field present.
func decodeAttr(b []byte) (string, graph.Attr, error) {
	var (
		name    string
		typ     int32
		a       graph.Attr
		seen    = map[protowire.Number]bool{}
		floats  []uint32
		ints    []uint64
		tensorB []byte
	)
	err := walk(b, func(f field) error {
		var err error
		seen[f.num] = true
		switch f.num {
		case attrName:
			name, err = f.str("name")
		case attrType:
			typ, err = f.int32("type")
		case attrF:
			a.Float, err = f.float32("f")
		case attrI:
			a.Int, err = f.int64("i")
		case attrS:
			a.String, err = f.str("s")
		case attrT:
			var tb []byte
			tb, err = f.msg("t")
			tensorB = append(tensorB, tb...)
		case attrFloats:
			floats, err = f.fixed32s("floats", floats)
		case attrInts:
			ints, err = f.varints("ints", ints)
		case attrStrings:
			var s string
			s, err = f.str("strings")
			a.Strings = append(a.Strings, s)
		case attrRefAttrName:
			err = newErr(ErrUnsupported, "ref_attr_name (attribute reference inside a function)")
		}
		return err
	})
	if err != nil {
		return name, a, err
	}
	if typ == attrTypeUndefined {
		typ = inferAttrType(seen)
	}
	switch typ {
	case attrTypeFloat:
		a.Kind = graph.AttrFloat
	case attrTypeInt:
		a.Kind = graph.AttrInt
	case attrTypeString:
		a.Kind = graph.AttrString
	case attrTypeTensor:
		a.Kind = graph.AttrTensor
		t, err := decodeTensor(tensorB)
		if err != nil {
			return name, a, at(err, "t")
		}
		a.Tensor = t
	case attrTypeFloats:
		a.Kind = graph.AttrFloats
		for _, v := range floats {
			a.Floats = append(a.Floats, math.Float32frombits(v))
		}
	case attrTypeInts:
		a.Kind = graph.AttrInts
		for _, v := range ints {
			a.Ints = append(a.Ints, int64(v))
		}
	case attrTypeStrings:
		a.Kind = graph.AttrStrings
	case attrTypeGraph, attrTypeGraphs:
		return name, a, newErr(ErrUnsupported, "subgraph attribute (control flow such as If/Loop/Scan)")
	case attrTypeTensors:
		return name, a, newErr(ErrUnsupported, "TENSORS attribute")
	case attrTypeSparseTensor, attrTypeSparseTensors:
		return name, a, newErr(ErrUnsupported, "sparse tensor attribute")
	case attrTypeTypeProto, attrTypeTypeProtos:
		return name, a, newErr(ErrUnsupported, "type proto attribute")
	case attrTypeUndefined:
		return name, a, newErr(ErrMalformed, "attribute has neither a type nor a value")
	default:
		return name, a, newErr(ErrUnsupported, fmt.Sprintf("attribute type %d", typ))
	}
	return name, onlyKind(a), nil
}

// onlyKind keeps the value field of a's kind and drops the others: a file
// may carry fields that do not match the attribute's type (the type wins,
// as in onnx.helper.get_attribute_value), and Encode writes only the
// kind's field, so keeping the rest would make a decoded model differ from
// its own re-encoding.
func onlyKind(a graph.Attr) graph.Attr {
	k := graph.Attr{Kind: a.Kind}
	switch a.Kind {
	case graph.AttrFloat:
		k.Float = a.Float
	case graph.AttrInt:
		k.Int = a.Int
	case graph.AttrString:
		k.String = a.String
	case graph.AttrTensor:
		k.Tensor = a.Tensor
	case graph.AttrFloats:
		k.Floats = a.Floats
	case graph.AttrInts:
		k.Ints = a.Ints
	case graph.AttrStrings:
		k.Strings = a.Strings
	}
	return k
}

func inferAttrType(seen map[protowire.Number]bool) int32 {
	for _, c := range []struct {
		f protowire.Number
		t int32
	}{
		{attrF, attrTypeFloat}, {attrI, attrTypeInt}, {attrS, attrTypeString},
		{attrT, attrTypeTensor}, {attrG, attrTypeGraph}, {attrFloats, attrTypeFloats},
		{attrInts, attrTypeInts}, {attrStrings, attrTypeStrings},
		{attrTensors, attrTypeTensors}, {attrGraphs, attrTypeGraphs},
		{attrSparseTensor, attrTypeSparseTensor}, {attrSparseTensors, attrTypeSparseTensors},
		{attrTP, attrTypeTypeProto}, {attrTypeProtos, attrTypeTypeProtos},
	} {
		if seen[c.f] {
			return c.t
		}
	}
	return attrTypeUndefined
}

// decodeValueInfo reads a ValueInfoProto. dt is the ONNX element type
// (Undefined when the file gave none). A missing shape is a nil Shape
// (unknown rank); a present but empty one is a scalar.
func decodeValueInfo(f field) (graph.ValueInfo, DataType, error) {
	var vi graph.ValueInfo
	b, err := f.msg("value_info")
	if err != nil {
		return vi, Undefined, err
	}
	var typeB []byte
	err = walk(b, func(f field) error {
		var err error
		switch f.num {
		case valueInfoName:
			vi.Name, err = f.str("name")
		case valueInfoType:
			var tb []byte
			tb, err = f.msg("type")
			typeB = append(typeB, tb...)
		}
		return err
	})
	if err != nil {
		return vi, Undefined, at(err, fmt.Sprintf("%q", vi.Name))
	}
	dt, err := decodeType(typeB, &vi)
	return vi, dt, at(err, fmt.Sprintf("%q", vi.Name))
}

func decodeType(b []byte, vi *graph.ValueInfo) (DataType, error) {
	var tensorB []byte
	haveTensor := false
	err := walk(b, func(f field) error {
		switch f.num {
		case typeTensor:
			tb, err := f.msg("tensor_type")
			tensorB = append(tensorB, tb...)
			haveTensor = true
			return err
		case typeSequence:
			return newErr(ErrUnsupported, "sequence type")
		case typeMap:
			return newErr(ErrUnsupported, "map type")
		case typeOptional:
			return newErr(ErrUnsupported, "optional type")
		case typeSparseTensor:
			return newErr(ErrUnsupported, "sparse tensor type")
		}
		return nil
	})
	if err != nil || !haveTensor {
		return Undefined, err
	}
	var dt DataType
	var shapeB []byte
	haveShape := false
	err = walk(tensorB, func(f field) error {
		var err error
		switch f.num {
		case tensorTypeElemType:
			var v int32
			v, err = f.int32("elem_type")
			dt = DataType(v)
		case tensorTypeShape:
			var sb []byte
			sb, err = f.msg("shape")
			shapeB = append(shapeB, sb...)
			haveShape = true
		}
		return err
	})
	if err != nil {
		return Undefined, err
	}
	if dt != Undefined {
		d, ok := irDType(dt)
		if !ok {
			return Undefined, newErr(ErrUnsupported, fmt.Sprintf("element type %s", dt))
		}
		vi.DType = d
	}
	if haveShape {
		if err := decodeShape(shapeB, vi); err != nil {
			return Undefined, at(err, "shape")
		}
	}
	return dt, nil
}

func decodeShape(b []byte, vi *graph.ValueInfo) error {
	vi.Shape = []int{}
	var params []string
	anyParam := false
	err := walk(b, func(f field) error {
		if f.num != shapeDim {
			return nil
		}
		db, err := f.msg("dim")
		if err != nil {
			return err
		}
		d, p := -1, ""
		err = walk(db, func(f field) error {
			switch f.num {
			case dimValue:
				v, err := f.int64("dim_value")
				if err != nil {
					return err
				}
				if v < 0 || v > math.MaxInt32 {
					return newErr(ErrMalformed, fmt.Sprintf("dim_value %d out of range", v))
				}
				d, p = int(v), ""
			case dimParam:
				s, err := f.str("dim_param")
				if err != nil {
					return err
				}
				d, p = -1, s
			}
			return nil
		})
		if err != nil {
			return at(err, fmt.Sprintf("dim[%d]", len(vi.Shape)))
		}
		vi.Shape = append(vi.Shape, d)
		params = append(params, p)
		anyParam = anyParam || p != ""
		return nil
	})
	if anyParam {
		vi.DimParams = params
	}
	return err
}
