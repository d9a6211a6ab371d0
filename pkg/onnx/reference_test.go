package onnx

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// referenceScript compares, with the reference implementation (Debian's
// python3-onnx and numpy), each original conformance file with the file we
// wrote after decoding it. Models: the re-encoded one passes the checker
// when the original does, and nodes, attributes, initializers, graph
// inputs/outputs (element types, dims, dim_params) and opsets agree, with
// tensors compared after the conversions Decode documents (floating types to
// float32, integer and bool types to int64), bit for bit. Tensors: same
// comparison. Prints one line per mismatch and a summary line.
const referenceScript = `
import sys, onnx, numpy as np
from onnx import numpy_helper

def arr(t):
    a = numpy_helper.to_array(t)
    if a.dtype.kind == 'f':
        return a.astype(np.float32)
    if a.dtype.kind in 'iub':
        return a.astype(np.int64)
    return a

def same(a, b):
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == np.float32:
        return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))))
    return bool(np.array_equal(a, b))

def dims(vi):
    tt = vi.type.tensor_type
    return (tt.elem_type, [(d.dim_value, d.dim_param) for d in tt.shape.dim], tt.HasField('shape'))

def attr(a):
    k = a.type
    if k == onnx.AttributeProto.FLOAT: return ('f', np.float32(a.f).tobytes())
    if k == onnx.AttributeProto.INT: return ('i', a.i)
    if k == onnx.AttributeProto.STRING: return ('s', a.s)
    if k == onnx.AttributeProto.FLOATS: return ('fs', np.array(a.floats, np.float32).tobytes())
    if k == onnx.AttributeProto.INTS: return ('is', list(a.ints))
    if k == onnx.AttributeProto.STRINGS: return ('ss', list(a.strings))
    return ('?', k)

bad = 0
models = tensors = 0
for line in open(sys.argv[1]):
    kind, orig, ours = line.split()
    try:
        if kind == 'tensor':
            tensors += 1
            o, u = onnx.TensorProto(), onnx.TensorProto()
            o.ParseFromString(open(orig, 'rb').read()); u.ParseFromString(open(ours, 'rb').read())
            if o.name != u.name or not same(arr(o), arr(u)):
                print('tensor differs:', orig); bad += 1
            continue
        models += 1
        o, u = onnx.load(orig), onnx.load(ours)
        try:
            onnx.checker.check_model(o)
            ok = True
        except Exception:
            ok = False
        if ok:
            onnx.checker.check_model(u)
        og, ug = o.graph, u.graph
        problems = []
        if o.ir_version != u.ir_version: problems.append('ir_version')
        if sorted((x.domain, x.version) for x in o.opset_import) != sorted((x.domain, x.version) for x in u.opset_import): problems.append('opset_import')
        if len(og.node) != len(ug.node): problems.append('node count')
        for i, (a, b) in enumerate(zip(og.node, ug.node)):
            if (a.op_type, a.domain, a.name, list(a.input), list(a.output)) != (b.op_type, b.domain, b.name, list(b.input), list(b.output)):
                problems.append('node %d' % i)
            aa = {x.name: x for x in a.attribute}; ba = {x.name: x for x in b.attribute}
            if set(aa) != set(ba): problems.append('node %d attribute names' % i); continue
            for n in aa:
                if aa[n].type == onnx.AttributeProto.TENSOR:
                    if ba[n].type != onnx.AttributeProto.TENSOR or not same(arr(aa[n].t), arr(ba[n].t)):
                        problems.append('node %d attribute %s' % (i, n))
                elif attr(aa[n]) != attr(ba[n]):
                    problems.append('node %d attribute %s' % (i, n))
        oi = {t.name: t for t in og.initializer}; ui = {t.name: t for t in ug.initializer}
        if set(oi) != set(ui): problems.append('initializer names')
        for n in oi:
            if n in ui and not same(arr(oi[n]), arr(ui[n])): problems.append('initializer ' + n)
        for f in ('input', 'output', 'value_info'):
            a, b = getattr(og, f), getattr(ug, f)
            if [(x.name, dims(x)) for x in a] != [(x.name, dims(x)) for x in b]: problems.append(f)
        if problems:
            print('model differs:', orig, problems); bad += 1
    except Exception as e:
        print('error:', orig, type(e).__name__, str(e).splitlines()[0] if str(e) else ''); bad += 1
print('checked %d models, %d tensors, %d mismatches' % (models, tensors, bad))
sys.exit(1 if bad else 0)
`

// TestReferenceAgreesOnConformance re-encodes every conformance model and
// tensor we decode and has the reference implementation compare them with
// the originals.
func TestReferenceAgreesOnConformance(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx, numpy").Run(); err != nil {
		t.Skipf("python3-onnx not available (%s -c 'import onnx': %v)", py, err)
	}
	if testing.Short() {
		t.Skip("runs python over ~3,700 files (about 10 s); skipped in -short")
	}
	out := t.TempDir()
	var list strings.Builder
	n := 0
	write := func(kind, orig string, b []byte) {
		n++
		p := filepath.Join(out, fmt.Sprintf("%05d.pb", n))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&list, "%s %s %s\n", kind, orig, p)
	}
	res := scanConformance(t, func(t *testing.T, rel string, m *Model) {
		b, err := Encode(m)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		write("model", filepath.Join(conformanceDir, rel), b)
	})
	pbs, _ := filepath.Glob(filepath.Join(conformanceDir, "*", "*", "test_data_set_*", "*.pb"))
	tensors := 0
	for _, pb := range pbs {
		b, err := os.ReadFile(pb)
		if err != nil {
			t.Fatal(err)
		}
		tt, err := DecodeTensor(b)
		if err != nil {
			continue // counted and checked by scanConformance
		}
		enc, err := EncodeTensor(tt)
		if err != nil {
			t.Fatalf("%s: %v", pb, err)
		}
		write("tensor", pb, enc)
		tensors++
	}
	listPath := filepath.Join(out, "list.txt")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", referenceScript, listPath)
	got, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if err != nil {
		if len(lines) > 40 {
			lines = append(lines[:40], "...", lines[len(lines)-1])
		}
		t.Fatalf("reference comparison failed: %v\n%s", err, strings.Join(lines, "\n"))
	}
	t.Logf("%s (decoded %d models, %d tensors)", lines[len(lines)-1], res.modelsOK, tensors)
}
