package cpu_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// A minimal reader of the protobuf wire format, just enough of ONNX's
// ModelProto and TensorProto to run the ONNX node conformance cases of the
// pool and layout families against the CPU backend (the project's ONNX
// reader lives elsewhere; this keeps these tests free of it).

type pbField struct {
	num, wire int
	v         uint64 // varint, fixed32 or fixed64 value
	b         []byte // length-delimited payload
}

var errPB = errors.New("pb: malformed message")

func pbVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errPB
}

func pbParse(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		key, n, err := pbVarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := pbField{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			if f.v, n, err = pbVarint(b); err != nil {
				return nil, err
			}
		case 1:
			if len(b) < 8 {
				return nil, errPB
			}
			f.v, n = binary.LittleEndian.Uint64(b), 8
		case 2:
			l, m, err := pbVarint(b)
			if err != nil || uint64(len(b)-m) < l {
				return nil, errPB
			}
			f.b, n = b[m:m+int(l)], m+int(l)
		case 5:
			if len(b) < 4 {
				return nil, errPB
			}
			f.v, n = uint64(binary.LittleEndian.Uint32(b)), 4
		default:
			return nil, errPB
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}

// pbInts reads a repeated integer field, packed or not.
func pbInts(f pbField) ([]int64, error) {
	if f.wire == 0 {
		return []int64{int64(f.v)}, nil
	}
	var out []int64
	for b := f.b; len(b) > 0; {
		v, n, err := pbVarint(b)
		if err != nil {
			return nil, err
		}
		out, b = append(out, int64(v)), b[n:]
	}
	return out, nil
}

// pbFloats reads a repeated float field, packed or not.
func pbFloats(f pbField) []float32 {
	if f.wire == 5 {
		return []float32{math.Float32frombits(uint32(f.v))}
	}
	out := make([]float32, len(f.b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(f.b[4*i:]))
	}
	return out
}

// pbTensor is a decoded TensorProto: floats for type float (1), ints for
// int64 (7) and int32 (6); other types keep only their dims and type.
type pbTensor struct {
	dims   []int
	dtype  int
	floats []float32
	ints   []int64
}

func pbDecodeTensor(b []byte) (*pbTensor, error) {
	fs, err := pbParse(b)
	if err != nil {
		return nil, err
	}
	t := &pbTensor{}
	var raw []byte
	for _, f := range fs {
		switch f.num {
		case 1:
			d, err := pbInts(f)
			if err != nil {
				return nil, err
			}
			for _, v := range d {
				t.dims = append(t.dims, int(v))
			}
		case 2:
			t.dtype = int(f.v)
		case 4:
			t.floats = append(t.floats, pbFloats(f)...)
		case 7:
			v, err := pbInts(f)
			if err != nil {
				return nil, err
			}
			t.ints = append(t.ints, v...)
		case 9:
			raw = f.b
		}
	}
	switch {
	case raw != nil && t.dtype == 1:
		t.floats = pbFloats(pbField{wire: 2, b: raw})
	case raw != nil && t.dtype == 7:
		for i := 0; i+8 <= len(raw); i += 8 {
			t.ints = append(t.ints, int64(binary.LittleEndian.Uint64(raw[i:])))
		}
	case raw != nil && t.dtype == 6: // int32
		for i := 0; i+4 <= len(raw); i += 4 {
			t.ints = append(t.ints, int64(int32(binary.LittleEndian.Uint32(raw[i:]))))
		}
	}
	// int32 values outside raw_data are in field 5 (int32_data) as varints.
	for _, f := range fs {
		if f.num == 5 {
			v, err := pbInts(f)
			if err != nil {
				return nil, err
			}
			for _, x := range v {
				t.ints = append(t.ints, int64(int32(x)))
			}
		}
	}
	return t, nil
}

// pbAttr is one NodeProto attribute.
type pbAttr struct {
	f    float32
	i    int64
	s    string
	ints []int64
}

// pbCase is one ONNX node test: the node's op, attributes, inputs (by
// position; nil where absent) and expected outputs.
type pbCase struct {
	op      string
	attrs   map[string]pbAttr
	inputs  []*pbTensor
	outputs []*pbTensor
}

// pbLoadCase reads dir/model.onnx (the last node of the graph is the op
// under test; its inputs come from the graph inputs in
// test_data_set_0/input_k.pb, absent or empty names give nil) and the
// expected outputs.
func pbLoadCase(dir string) (*pbCase, error) {
	model, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil, err
	}
	mf, err := pbParse(model)
	if err != nil {
		return nil, err
	}
	var graph []pbField
	for _, f := range mf {
		if f.num == 7 {
			if graph, err = pbParse(f.b); err != nil {
				return nil, err
			}
		}
	}
	var node []pbField
	var graphInputs []string
	for _, f := range graph {
		switch f.num {
		case 1:
			if node, err = pbParse(f.b); err != nil {
				return nil, err
			}
		case 11:
			vi, err := pbParse(f.b)
			if err != nil {
				return nil, err
			}
			for _, g := range vi {
				if g.num == 1 {
					graphInputs = append(graphInputs, string(g.b))
				}
			}
		}
	}
	c := &pbCase{attrs: map[string]pbAttr{}}
	var nodeInputs []string
	nOut := 0
	for _, f := range node {
		switch f.num {
		case 1:
			nodeInputs = append(nodeInputs, string(f.b))
		case 2:
			nOut++
		case 4:
			c.op = string(f.b)
		case 5:
			af, err := pbParse(f.b)
			if err != nil {
				return nil, err
			}
			var name string
			var a pbAttr
			for _, g := range af {
				switch g.num {
				case 1:
					name = string(g.b)
				case 2:
					a.f = math.Float32frombits(uint32(g.v))
				case 3:
					a.i = int64(g.v)
				case 4:
					a.s = string(g.b)
				case 8:
					v, err := pbInts(g)
					if err != nil {
						return nil, err
					}
					a.ints = append(a.ints, v...)
				}
			}
			c.attrs[name] = a
		}
	}
	data := filepath.Join(dir, "test_data_set_0")
	byName := map[string]*pbTensor{}
	for k, name := range graphInputs {
		b, err := os.ReadFile(filepath.Join(data, fmt.Sprintf("input_%d.pb", k)))
		if err != nil {
			return nil, err
		}
		if byName[name], err = pbDecodeTensor(b); err != nil {
			return nil, err
		}
	}
	for _, name := range nodeInputs {
		c.inputs = append(c.inputs, byName[name])
	}
	for k := range nOut {
		b, err := os.ReadFile(filepath.Join(data, fmt.Sprintf("output_%d.pb", k)))
		if err != nil {
			return nil, err
		}
		t, err := pbDecodeTensor(b)
		if err != nil {
			return nil, err
		}
		c.outputs = append(c.outputs, t)
	}
	return c, nil
}
