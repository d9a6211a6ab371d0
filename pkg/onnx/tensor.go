package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"vireo/pkg/graph"
)

// maxElems bounds a tensor's element count (2^40); larger dims are
// rejected before any size arithmetic can overflow.
const maxElems = 1 << 40

// DecodeTensor decodes a standalone TensorProto, such as the
// input_N.pb/output_N.pb files of ONNX's conformance cases. Element types
// are converted as in Decode.
func DecodeTensor(b []byte) (*graph.Tensor, error) {
	t, err := decodeTensor(b)
	if err != nil {
		return nil, at(err, "tensor")
	}
	return t, nil
}

// rawTensor collects the fields of a TensorProto before conversion.
type rawTensor struct {
	name     string
	dims     []uint64
	dt       DataType
	raw      []byte
	hasRaw   bool
	floats   []uint32 // float_data, as bits
	int32s   []uint64 // int32_data, as read from the wire
	int64s   []uint64
	doubles  []uint64 // double_data, as bits
	uint64s  []uint64
	strings  int // number of string_data entries
	segment  bool
	location int32
	external bool
}

// decodeTensor reads a TensorProto. Errors are located by the tensor's name
// (the caller adds where the tensor sits).
func decodeTensor(b []byte) (*graph.Tensor, error) {
	var r rawTensor
	err := walk(b, func(f field) error {
		var err error
		switch f.num {
		case tensorDims:
			r.dims, err = f.varints("dims", r.dims)
		case tensorDataType:
			var v int32
			v, err = f.int32("data_type")
			r.dt = DataType(v)
		case tensorSegment:
			err = f.want("segment", protowire.BytesType)
			r.segment = true
		case tensorFloatData:
			r.floats, err = f.fixed32s("float_data", r.floats)
		case tensorInt32Data:
			r.int32s, err = f.varints("int32_data", r.int32s)
		case tensorStringData:
			err = f.want("string_data", protowire.BytesType)
			r.strings++
		case tensorInt64Data:
			r.int64s, err = f.varints("int64_data", r.int64s)
		case tensorName:
			r.name, err = f.str("name")
		case tensorRawData:
			r.raw, err = f.msg("raw_data")
			r.hasRaw = true
		case tensorDoubleData:
			r.doubles, err = f.fixed64s("double_data", r.doubles)
		case tensorUint64Data:
			r.uint64s, err = f.varints("uint64_data", r.uint64s)
		case tensorExternalData:
			err = f.want("external_data", protowire.BytesType)
			r.external = true
		case tensorDataLocation:
			r.location, err = f.int32("data_location")
		}
		return err
	})
	if err != nil {
		return nil, at(err, fmt.Sprintf("%q", r.name))
	}
	t, err := r.convert()
	if err != nil {
		return nil, at(err, fmt.Sprintf("%q", r.name))
	}
	return t, nil
}

// elemSize is the raw_data width in bytes of the element types this
// package reads.
func elemSize(dt DataType) int {
	switch dt {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Uint64, Double:
		return 8
	}
	return 0
}

func (r *rawTensor) convert() (*graph.Tensor, error) {
	if r.location == dataLocationExternal || r.external {
		return nil, newErr(ErrUnsupported, "external data (data_location EXTERNAL): the tensor's bytes live in another file")
	}
	if r.segment {
		return nil, newErr(ErrUnsupported, "segmented tensor")
	}
	switch r.dt {
	case Undefined:
		return nil, newErr(ErrMalformed, "data_type is not set")
	case String:
		return nil, newErr(ErrUnsupported, "STRING tensor")
	case Complex64, Complex128:
		return nil, newErr(ErrUnsupported, r.dt.String()+" tensor")
	}
	dtype, ok := irDType(r.dt)
	if !ok {
		return nil, newErr(ErrUnsupported, fmt.Sprintf("element type %s", r.dt))
	}
	shape := make([]int, len(r.dims))
	numel := 1
	for i, d := range r.dims {
		if int64(d) < 0 {
			return nil, newErr(ErrMalformed, fmt.Sprintf("negative dim %d at axis %d (dims %v)", int64(d), i, dimsInt64(r.dims)))
		}
		if d > 0 && uint64(numel) > maxElems/d {
			return nil, newErr(ErrMalformed, fmt.Sprintf("dims %v: too many elements", dimsInt64(r.dims)))
		}
		shape[i] = int(d)
		numel *= int(d)
	}
	t := &graph.Tensor{Name: r.name, DType: dtype, Shape: shape}
	// alloc is called once the data is known to hold numel values, so the
	// allocation is bounded by the input's size.
	alloc := func() {
		if dtype == graph.Float32 {
			t.Float = make([]float32, 0, numel)
		} else {
			t.Int = make([]int64, 0, numel)
		}
	}
	typed := len(r.floats) + len(r.int32s) + len(r.int64s) + len(r.doubles) + len(r.uint64s) + r.strings
	if r.hasRaw {
		if typed > 0 {
			return nil, newErr(ErrMalformed, fmt.Sprintf("both raw_data and %d typed values", typed))
		}
		size := elemSize(r.dt)
		if len(r.raw) != numel*size {
			return nil, newErr(ErrMalformed, fmt.Sprintf("raw_data has %d bytes, want %d (%d elements of %s, dims %v)", len(r.raw), numel*size, numel, r.dt, shape))
		}
		alloc()
		return t, r.fromRaw(t, numel)
	}
	// Typed fields: which one holds the data depends on the element type.
	var n int
	var from string
	switch r.dt {
	case Float:
		n, from = len(r.floats), "float_data"
	case Int32, Int16, Int8, Uint16, Uint8, Bool, Float16, BFloat16:
		n, from = len(r.int32s), "int32_data"
	case Int64:
		n, from = len(r.int64s), "int64_data"
	case Double:
		n, from = len(r.doubles), "double_data"
	case Uint32, Uint64:
		n, from = len(r.uint64s), "uint64_data"
	}
	if n != typed {
		return nil, newErr(ErrMalformed, fmt.Sprintf("%s tensor has %d values in fields other than %s", r.dt, typed-n, from))
	}
	if n != numel {
		return nil, newErr(ErrMalformed, fmt.Sprintf("%s has %d values, want %d (dims %v)", from, n, numel, shape))
	}
	alloc()
	return t, r.fromTyped(t)
}

func (r *rawTensor) fromRaw(t *graph.Tensor, numel int) error {
	b := r.raw
	le := binary.LittleEndian
	// The common types get their own loops: a model's weights are almost
	// all FLOAT (and shapes INT64), and a switch per element costs ~3x.
	switch r.dt {
	case Float:
		t.Float = t.Float[:numel]
		for i := range t.Float {
			t.Float[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return nil
	case Int64:
		t.Int = t.Int[:numel]
		for i := range t.Int {
			t.Int[i] = int64(le.Uint64(b[8*i:]))
		}
		return nil
	}
	for i := range numel {
		switch r.dt {
		case Double:
			t.Float = append(t.Float, float32(math.Float64frombits(le.Uint64(b[8*i:]))))
		case Float16:
			t.Float = append(t.Float, halfToFloat32(le.Uint16(b[2*i:])))
		case BFloat16:
			t.Float = append(t.Float, bfloat16ToFloat32(le.Uint16(b[2*i:])))
		case Int32:
			t.Int = append(t.Int, int64(int32(le.Uint32(b[4*i:]))))
		case Uint32:
			t.Int = append(t.Int, int64(le.Uint32(b[4*i:])))
		case Int16:
			t.Int = append(t.Int, int64(int16(le.Uint16(b[2*i:]))))
		case Uint16:
			t.Int = append(t.Int, int64(le.Uint16(b[2*i:])))
		case Int8:
			t.Int = append(t.Int, int64(int8(b[i])))
		case Uint8:
			t.Int = append(t.Int, int64(b[i]))
		case Bool:
			t.Int = append(t.Int, boolInt(b[i] != 0))
		case Uint64:
			v := le.Uint64(b[8*i:])
			if v > math.MaxInt64 {
				return newErr(ErrUnsupported, fmt.Sprintf("UINT64 value %d at index %d does not fit int64", v, i))
			}
			t.Int = append(t.Int, int64(v))
		}
	}
	return nil
}

func (r *rawTensor) fromTyped(t *graph.Tensor) error {
	switch r.dt {
	case Float:
		for _, v := range r.floats {
			t.Float = append(t.Float, math.Float32frombits(v))
		}
	case Double:
		for _, v := range r.doubles {
			t.Float = append(t.Float, float32(math.Float64frombits(v)))
		}
	case Float16:
		for _, v := range r.int32s {
			t.Float = append(t.Float, halfToFloat32(uint16(v)))
		}
	case BFloat16:
		for _, v := range r.int32s {
			t.Float = append(t.Float, bfloat16ToFloat32(uint16(v)))
		}
	case Bool:
		for _, v := range r.int32s {
			t.Int = append(t.Int, boolInt(int32(v) != 0))
		}
	case Int32, Int16, Int8, Uint16, Uint8:
		for _, v := range r.int32s {
			t.Int = append(t.Int, int64(int32(v)))
		}
	case Int64:
		for _, v := range r.int64s {
			t.Int = append(t.Int, int64(v))
		}
	case Uint32, Uint64:
		for i, v := range r.uint64s {
			if v > math.MaxInt64 {
				return newErr(ErrUnsupported, fmt.Sprintf("%s value %d at index %d does not fit int64", r.dt, v, i))
			}
			t.Int = append(t.Int, int64(v))
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func dimsInt64(d []uint64) []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly (every
// half value is a float32 value): subnormals are renormalised, infinities
// stay infinite and NaNs stay NaN with their payload shifted up.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0: // +-0
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24; shift until the implicit bit appears
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case exp == 0x1f: // inf (mant 0) or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// bfloat16ToFloat32 converts bfloat16 bits (the top half of a float32).
func bfloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
