package onnx

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the ONNX protobuf messages (onnx.proto, IR version 8/9),
// written out by hand. Only the messages this package reads or writes are
// listed; fields not named here are skipped when reading.

// ModelProto.
const (
	modelIRVersion       protowire.Number = 1  // int64 ir_version
	modelProducerName    protowire.Number = 2  // string producer_name
	modelProducerVersion protowire.Number = 3  // string producer_version
	modelDomain          protowire.Number = 4  // string domain
	modelModelVersion    protowire.Number = 5  // int64 model_version
	modelDocString       protowire.Number = 6  // string doc_string
	modelGraph           protowire.Number = 7  // GraphProto graph
	modelOpsetImport     protowire.Number = 8  // repeated OperatorSetIdProto opset_import
	modelMetadataProps   protowire.Number = 14 // repeated StringStringEntryProto metadata_props
	modelTrainingInfo    protowire.Number = 20 // repeated TrainingInfoProto training_info (unsupported)
	modelFunctions       protowire.Number = 25 // repeated FunctionProto functions (unsupported)
)

// OperatorSetIdProto.
const (
	opsetDomain  protowire.Number = 1 // string domain ("" or "ai.onnx" is the default domain)
	opsetVersion protowire.Number = 2 // int64 version
)

// StringStringEntryProto (metadata_props).
const (
	entryKey   protowire.Number = 1 // string key
	entryValue protowire.Number = 2 // string value
)

// GraphProto.
const (
	graphNode              protowire.Number = 1  // repeated NodeProto node
	graphName              protowire.Number = 2  // string name
	graphInitializer       protowire.Number = 5  // repeated TensorProto initializer
	graphDocString         protowire.Number = 10 // string doc_string
	graphInput             protowire.Number = 11 // repeated ValueInfoProto input
	graphOutput            protowire.Number = 12 // repeated ValueInfoProto output
	graphValueInfo         protowire.Number = 13 // repeated ValueInfoProto value_info
	graphSparseInitializer protowire.Number = 15 // repeated SparseTensorProto sparse_initializer (unsupported)
)

// NodeProto.
const (
	nodeInput     protowire.Number = 1 // repeated string input
	nodeOutput    protowire.Number = 2 // repeated string output
	nodeName      protowire.Number = 3 // string name
	nodeOpType    protowire.Number = 4 // string op_type
	nodeAttribute protowire.Number = 5 // repeated AttributeProto attribute
	nodeDocString protowire.Number = 6 // string doc_string (dropped)
	nodeDomain    protowire.Number = 7 // string domain
)

// AttributeProto.
const (
	attrName          protowire.Number = 1  // string name
	attrF             protowire.Number = 2  // float f (fixed32)
	attrI             protowire.Number = 3  // int64 i
	attrS             protowire.Number = 4  // bytes s
	attrT             protowire.Number = 5  // TensorProto t
	attrG             protowire.Number = 6  // GraphProto g (unsupported)
	attrFloats        protowire.Number = 7  // repeated float floats
	attrInts          protowire.Number = 8  // repeated int64 ints
	attrStrings       protowire.Number = 9  // repeated bytes strings
	attrTensors       protowire.Number = 10 // repeated TensorProto tensors (unsupported)
	attrGraphs        protowire.Number = 11 // repeated GraphProto graphs (unsupported)
	attrDocString     protowire.Number = 13 // string doc_string (dropped)
	attrTP            protowire.Number = 14 // TypeProto tp (unsupported)
	attrTypeProtos    protowire.Number = 15 // repeated TypeProto type_protos (unsupported)
	attrType          protowire.Number = 20 // AttributeType type
	attrRefAttrName   protowire.Number = 21 // string ref_attr_name (functions only; unsupported)
	attrSparseTensor  protowire.Number = 22 // SparseTensorProto sparse_tensor (unsupported)
	attrSparseTensors protowire.Number = 23 // repeated SparseTensorProto sparse_tensors (unsupported)
)

// AttributeProto.AttributeType values.
const (
	attrTypeUndefined     = 0
	attrTypeFloat         = 1
	attrTypeInt           = 2
	attrTypeString        = 3
	attrTypeTensor        = 4
	attrTypeGraph         = 5
	attrTypeFloats        = 6
	attrTypeInts          = 7
	attrTypeStrings       = 8
	attrTypeTensors       = 9
	attrTypeGraphs        = 10
	attrTypeSparseTensor  = 11
	attrTypeSparseTensors = 12
	attrTypeTypeProto     = 13
	attrTypeTypeProtos    = 14
)

// TensorProto.
const (
	tensorDims         protowire.Number = 1  // repeated int64 dims
	tensorDataType     protowire.Number = 2  // int32 data_type (DataType)
	tensorSegment      protowire.Number = 3  // Segment segment (unsupported)
	tensorFloatData    protowire.Number = 4  // repeated float float_data (FLOAT, COMPLEX64)
	tensorInt32Data    protowire.Number = 5  // repeated int32 int32_data (INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16/BFLOAT16 bits)
	tensorStringData   protowire.Number = 6  // repeated bytes string_data (STRING, unsupported)
	tensorInt64Data    protowire.Number = 7  // repeated int64 int64_data (INT64)
	tensorName         protowire.Number = 8  // string name
	tensorRawData      protowire.Number = 9  // bytes raw_data (little-endian, fixed width)
	tensorDoubleData   protowire.Number = 10 // repeated double double_data (DOUBLE, COMPLEX128)
	tensorUint64Data   protowire.Number = 11 // repeated uint64 uint64_data (UINT32, UINT64)
	tensorDocString    protowire.Number = 12 // string doc_string (dropped)
	tensorExternalData protowire.Number = 13 // repeated StringStringEntryProto external_data
	tensorDataLocation protowire.Number = 14 // DataLocation data_location (0 DEFAULT, 1 EXTERNAL)
)

// TensorProto.DataLocation.
const dataLocationExternal = 1

// ValueInfoProto.
const (
	valueInfoName      protowire.Number = 1 // string name
	valueInfoType      protowire.Number = 2 // TypeProto type
	valueInfoDocString protowire.Number = 3 // string doc_string (dropped)
)

// TypeProto: a oneof of the value kinds.
const (
	typeTensor       protowire.Number = 1 // TypeProto.Tensor tensor_type
	typeSequence     protowire.Number = 4 // TypeProto.Sequence sequence_type (unsupported)
	typeMap          protowire.Number = 5 // TypeProto.Map map_type (unsupported)
	typeDenotation   protowire.Number = 6 // string denotation (dropped)
	typeSparseTensor protowire.Number = 8 // TypeProto.SparseTensor sparse_tensor_type (unsupported)
	typeOptional     protowire.Number = 9 // TypeProto.Optional optional_type (unsupported)
)

// TypeProto.Tensor.
const (
	tensorTypeElemType protowire.Number = 1 // int32 elem_type (DataType)
	tensorTypeShape    protowire.Number = 2 // TensorShapeProto shape (absent: unknown rank)
)

// TensorShapeProto and TensorShapeProto.Dimension.
const (
	shapeDim      protowire.Number = 1 // repeated Dimension dim
	dimValue      protowire.Number = 1 // int64 dim_value (oneof)
	dimParam      protowire.Number = 2 // string dim_param (oneof)
	dimDenotation protowire.Number = 3 // string denotation (dropped)
)

// DataType is an ONNX TensorProto.DataType value.
type DataType int32

// ONNX element types.
const (
	Undefined      DataType = 0
	Float          DataType = 1
	Uint8          DataType = 2
	Int8           DataType = 3
	Uint16         DataType = 4
	Int16          DataType = 5
	Int32          DataType = 6
	Int64          DataType = 7
	String         DataType = 8
	Bool           DataType = 9
	Float16        DataType = 10
	Double         DataType = 11
	Uint32         DataType = 12
	Uint64         DataType = 13
	Complex64      DataType = 14
	Complex128     DataType = 15
	BFloat16       DataType = 16
	Float8E4M3FN   DataType = 17
	Float8E4M3FNUZ DataType = 18
	Float8E5M2     DataType = 19
	Float8E5M2FNUZ DataType = 20
	Uint4          DataType = 21
	Int4           DataType = 22
	Float4E2M1     DataType = 23
)

func (d DataType) String() string {
	names := [...]string{
		Undefined: "UNDEFINED", Float: "FLOAT", Uint8: "UINT8", Int8: "INT8",
		Uint16: "UINT16", Int16: "INT16", Int32: "INT32", Int64: "INT64",
		String: "STRING", Bool: "BOOL", Float16: "FLOAT16", Double: "DOUBLE",
		Uint32: "UINT32", Uint64: "UINT64", Complex64: "COMPLEX64",
		Complex128: "COMPLEX128", BFloat16: "BFLOAT16",
		Float8E4M3FN: "FLOAT8E4M3FN", Float8E4M3FNUZ: "FLOAT8E4M3FNUZ",
		Float8E5M2: "FLOAT8E5M2", Float8E5M2FNUZ: "FLOAT8E5M2FNUZ",
		Uint4: "UINT4", Int4: "INT4", Float4E2M1: "FLOAT4E2M1",
	}
	if d >= 0 && int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("DataType(%d)", int32(d))
}
