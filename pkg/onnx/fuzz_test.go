package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode and DecodeTensor. Neither may
// panic; every error must wrap ErrMalformed or ErrUnsupported; and a model
// that decodes must encode and decode back to the same IR.
//
// Run it with a count: go test -fuzz=FuzzDecode -fuzztime=2000000x
// ./pkg/onnx (about a minute here). With a duration, Go 1.26 can end a
// clean run with a spurious "context deadline exceeded" and no crasher
// (golang/go#75804, fixed in Go 1.27).
func FuzzDecode(f *testing.F) {
	seeds := [][]byte{}
	for _, m := range []*Model{tinyModel(), boolModel()} {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
		for _, cut := range []int{1, 7, len(b) / 3, len(b) / 2, len(b) - 1} {
			seeds = append(seeds, b[:cut])
		}
	}
	for _, t := range []pb{
		tensorPB("h", Float16, 3).packed(tensorInt32Data, 0x3c00, 0xc000, 0x7bff),
		tensorPB("w", Float, 2, 3).bytes(tensorRawData, make([]byte, 20)),
		tensorPB("d", Double, 1).fixed64(tensorDoubleData, 0),
	} {
		seeds = append(seeds, t)
	}
	// A few real exports when the conformance data is installed: typed
	// fields, packed and unpacked lists, fp16 tensors, subgraphs.
	for _, c := range []string{
		"node/test_conv_with_strides_padding/model.onnx",
		"node/test_constantofshape_float_ones/model.onnx",
		"node/test_if/model.onnx",
		"node/test_cast_FLOAT16_to_FLOAT/test_data_set_0/input_0.pb",
		"simple/test_gradient_of_add/model.onnx",
	} {
		if b, err := os.ReadFile(filepath.Join(conformanceDir, c)); err == nil && len(b) < 64<<10 {
			seeds = append(seeds, b)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeTensor(b); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("DecodeTensor: unexpected error kind: %v", err)
		}
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Decode: unexpected error kind: %v", err)
			}
			return
		}
		// Encode fills two defaults; expect them in the round trip.
		if m.IRVersion == 0 {
			m.IRVersion = DefaultIRVersion
		}
		if len(m.OpsetImports) == 0 {
			m.OpsetImports = []OpsetImport{{Version: DefaultOpset}}
			m.Graph.Opset = DefaultOpset
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded model does not encode: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		if d := diff(m, m2); d != "" {
			t.Fatalf("round trip differs at Model%s", d)
		}
	})
}
