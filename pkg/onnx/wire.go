package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded protobuf field: v holds varint and fixed values, b
// the payload of length-delimited ones (a sub-slice of the input, not a
// copy).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// walk calls fn for each field of the message encoded in b, in order.
// Unknown fields are passed too (fn ignores them). Truncated data, bad tags
// and lengths past the end of b are ErrMalformed.
func walk(b []byte, fn func(f field) error) error {
	off := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return newErr(ErrMalformed, fmt.Sprintf("bad field tag at byte %d: %v", off, protowire.ParseError(n)))
		}
		b = b[n:]
		off += n
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default: // groups (deprecated): skip
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return newErr(ErrMalformed, fmt.Sprintf("field %d at byte %d: %v", num, off, protowire.ParseError(n)))
		}
		b = b[n:]
		off += n
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func wireName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "bytes"
	case protowire.StartGroupType, protowire.EndGroupType:
		return "group"
	}
	return fmt.Sprintf("wiretype(%d)", int(t))
}

func (f field) want(name string, t protowire.Type) error {
	if f.typ == t {
		return nil
	}
	return newErr(ErrMalformed, fmt.Sprintf("field %d (%s): wire type %s, want %s", f.num, name, wireName(f.typ), wireName(t)))
}

func (f field) str(name string) (string, error) {
	if err := f.want(name, protowire.BytesType); err != nil {
		return "", err
	}
	return string(f.b), nil
}

func (f field) msg(name string) ([]byte, error) {
	if err := f.want(name, protowire.BytesType); err != nil {
		return nil, err
	}
	return f.b, nil
}

func (f field) int64(name string) (int64, error) {
	if err := f.want(name, protowire.VarintType); err != nil {
		return 0, err
	}
	return int64(f.v), nil
}

// int32 reads an int32 field (a varint, sign-extended to 64 bits on the
// wire for negative values).
func (f field) int32(name string) (int32, error) {
	if err := f.want(name, protowire.VarintType); err != nil {
		return 0, err
	}
	return int32(f.v), nil
}

func (f field) float32(name string) (float32, error) {
	if err := f.want(name, protowire.Fixed32Type); err != nil {
		return 0, err
	}
	return math.Float32frombits(uint32(f.v)), nil
}

// varints appends the values of a repeated varint field, packed (one bytes
// field) or not (one varint per field).
func (f field) varints(name string, dst []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, f.v), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): packed varint %d: %v", f.num, name, len(dst), protowire.ParseError(n)))
			}
			dst = append(dst, v)
			b = b[n:]
		}
		return dst, nil
	}
	return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): wire type %s, want varint or packed bytes", f.num, name, wireName(f.typ)))
}

// fixed32s appends the values of a repeated fixed32 field (float).
func (f field) fixed32s(name string, dst []uint32) ([]uint32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, uint32(f.v)), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): packed fixed32 length %d is not a multiple of 4", f.num, name, len(f.b)))
		}
		for b := f.b; len(b) > 0; b = b[4:] {
			v, _ := protowire.ConsumeFixed32(b)
			dst = append(dst, v)
		}
		return dst, nil
	}
	return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): wire type %s, want fixed32 or packed bytes", f.num, name, wireName(f.typ)))
}

// fixed64s appends the values of a repeated fixed64 field (double).
func (f field) fixed64s(name string, dst []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, f.v), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): packed fixed64 length %d is not a multiple of 8", f.num, name, len(f.b)))
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			v, _ := protowire.ConsumeFixed64(b)
			dst = append(dst, v)
		}
		return dst, nil
	}
	return dst, newErr(ErrMalformed, fmt.Sprintf("field %d (%s): wire type %s, want fixed64 or packed bytes", f.num, name, wireName(f.typ)))
}
