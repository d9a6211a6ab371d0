package onnx

import "vireo/pkg/graph"

// Defaults for models created by Vireo (NewModel).
const (
	DefaultIRVersion = 8
	DefaultOpset     = 17
	DefaultProducer  = "vireo"
)

// OpsetImport is one entry of a model's opset_import: an operator domain
// ("" is the default ONNX domain) and its version.
type OpsetImport struct {
	Domain  string
	Version int64
}

// MetadataProp is one model metadata_props entry (order and duplicates are
// kept as in the file).
type MetadataProp struct {
	Key, Value string
}

// Model is an ONNX ModelProto: the computation graph in Vireo's IR plus the
// model-level fields the IR does not hold.
type Model struct {
	IRVersion       int64
	OpsetImports    []OpsetImport
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	MetadataProps   []MetadataProp

	// Graph is the computation. Graph.Opset mirrors the default-domain
	// entry of OpsetImports.
	Graph *graph.Graph
	// GraphDocString is the graph's doc_string.
	GraphDocString string
	// ValueInfo is the graph's value_info: shapes of intermediate values,
	// where the file gave them.
	ValueInfo []graph.ValueInfo
	// ElemTypes holds the ONNX element type of graph inputs, outputs and
	// value_info entries by value name, where it is not the one the IR's
	// DType implies (FLOAT for Float32, INT64 for Int64): a BOOL input is
	// Int64 in the IR and Bool here, so that writing the model back
	// declares the same types.
	ElemTypes map[string]DataType
}

// NewModel wraps g in a Model with Vireo's defaults: IR version 8, the
// default-domain opset g.Opset (when zero, 17, which it also sets in g) and
// producer "vireo".
func NewModel(g *graph.Graph) *Model {
	op := g.Opset
	if op == 0 {
		op = DefaultOpset
		g.Opset = op
	}
	return &Model{
		IRVersion:    DefaultIRVersion,
		OpsetImports: []OpsetImport{{Domain: "", Version: op}},
		ProducerName: DefaultProducer,
		Graph:        g,
	}
}

// irDType is the IR dtype an ONNX element type is read as: floating types
// become Float32 (FLOAT16, BFLOAT16 and DOUBLE are converted), integer and
// boolean types become Int64 (INT8/UINT8/INT16/UINT16/INT32/UINT32/UINT64
// and BOOL are widened; BOOL is 0 or 1). ok is false for types the IR cannot
// hold (STRING, complex, float8, 4-bit types).
func irDType(dt DataType) (graph.DType, bool) {
	switch dt {
	case Float, Float16, BFloat16, Double:
		return graph.Float32, true
	case Int64, Int32, Int16, Int8, Uint8, Uint16, Uint32, Uint64, Bool:
		return graph.Int64, true
	}
	return 0, false
}

// onnxType is the ONNX element type the encoder writes for an IR dtype.
func onnxType(d graph.DType) (DataType, bool) {
	switch d {
	case graph.Float32:
		return Float, true
	case graph.Int64:
		return Int64, true
	}
	return Undefined, false
}
