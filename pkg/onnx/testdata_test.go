package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// conformanceDir holds ONNX's conformance cases (Debian package
// libonnx-testdata): node/ (one operator each), pytorch-converted/,
// pytorch-operator/ and simple/ (small exported networks).
const conformanceDir = "/usr/share/libonnx-testdata/data"

// unsupportedReason maps an ErrUnsupported error to a short feature name
// for the report: the message after the last ": ".
func unsupportedReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

type caseResult struct {
	models, modelsOK int
	pbs, pbsOK       int
	pbsNotTensor     int
	unsupported      map[string][]string // reason -> files
}

// scanConformance decodes every model.onnx and test_data_set_*/*.pb under
// conformanceDir. check is called for every model that decodes.
func scanConformance(t *testing.T, check func(t *testing.T, path string, m *Model)) caseResult {
	t.Helper()
	if _, err := os.Stat(conformanceDir); err != nil {
		t.Skipf("ONNX conformance data not installed (Debian package libonnx-testdata): %v", err)
	}
	models, err := filepath.Glob(filepath.Join(conformanceDir, "*", "*", "model.onnx"))
	if err != nil || len(models) == 0 {
		t.Skipf("no model.onnx under %s", conformanceDir)
	}
	res := caseResult{unsupported: map[string][]string{}}
	for _, path := range models {
		res.models++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(conformanceDir, path)
		m, err := Decode(b)
		kinds := valueKinds(b)
		switch {
		case err == nil:
			res.modelsOK++
			if check != nil {
				check(t, rel, m)
			}
		case errors.Is(err, ErrUnsupported):
			r := unsupportedReason(err)
			res.unsupported[r] = append(res.unsupported[r], rel)
		default:
			t.Errorf("%s: %v", rel, err)
		}
		pbs, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "test_data_set_*", "*.pb"))
		for _, pb := range pbs {
			res.pbs++
			rel, _ := filepath.Rel(conformanceDir, pb)
			b, err := os.ReadFile(pb)
			if err != nil {
				t.Fatal(err)
			}
			// input_N.pb / output_N.pb hold a TensorProto only when the
			// model declares a tensor there; sequences, maps and optionals
			// are other messages, which are not ours to read.
			base := filepath.Base(pb)
			if k, ok := kinds[base]; ok && k != "tensor" {
				res.pbsNotTensor++
				r := "not a TensorProto (" + k + ")"
				res.unsupported[r] = append(res.unsupported[r], rel)
				continue
			}
			_, err = DecodeTensor(b)
			switch {
			case err == nil:
				res.pbsOK++
			case errors.Is(err, ErrUnsupported):
				r := unsupportedReason(err)
				res.unsupported[r] = append(res.unsupported[r], rel)
			default:
				t.Errorf("%s: %v", rel, err)
			}
		}
	}
	return res
}

func (r caseResult) report(t *testing.T) {
	t.Logf("models: %d, decoded %d; tensors (.pb): %d, decoded %d, not tensors %d",
		r.models, r.modelsOK, r.pbs, r.pbsOK, r.pbsNotTensor)
	reasons := make([]string, 0, len(r.unsupported))
	for k := range r.unsupported {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		files := r.unsupported[k]
		ex := files
		if len(ex) > 3 {
			ex = ex[:3]
		}
		t.Logf("unsupported %-45q %4d  e.g. %s", k, len(files), strings.Join(ex, ", "))
	}
}

func TestDecodeConformanceFiles(t *testing.T) {
	res := scanConformance(t, nil)
	res.report(t)
	// Only these features may be refused: anything else is a regression.
	allowed := map[string]bool{
		"STRING tensor": true, "element type STRING": true,
		"sequence type": true, "optional type": true, "map type": true,
		"not a TensorProto (sequence)": true, "not a TensorProto (optional)": true, "not a TensorProto (map)": true,
		"subgraph attribute (control flow such as If/Loop/Scan)": true,
	}
	for r, files := range res.unsupported {
		if !allowed[r] {
			t.Errorf("unexpected unsupported feature %q in %d files, e.g. %s", r, len(files), files[0])
		}
	}
	if res.modelsOK < res.models*9/10 {
		t.Errorf("decoded %d of %d models, want at least 90%%", res.modelsOK, res.models)
	}
}
