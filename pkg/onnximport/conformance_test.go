package onnximport

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/onnx"
)

// nodeCases holds ONNX's per-operator conformance cases (Debian package
// libonnx-testdata): one directory per case with model.onnx and
// test_data_set_N/{input,output}_M.pb.
const nodeCases = "/usr/share/libonnx-testdata/data/node"

var conformanceVerbose = flag.Bool("conformance.v", false, "log every refused conformance case with its reason")

// Tolerance of the conformance comparison: |got-want| <= confAbs + confRel*|want|.
const (
	confAbs = 1e-4
	confRel = 1e-3
)

type opTally struct {
	pass, refused, stub, fail int
	reasons                   map[string]int
}

// caseOutcome is the result of one conformance case.
type caseOutcome int

const (
	outcomePass caseOutcome = iota
	outcomeRefused
	outcomeStub // a kernel answered kernels.ErrUnsupported (a gap: fails the test)
	outcomeFail
)

// TestConformance runs every node case whose ops the importer claims
// (graph.SupportedOp) through Import, graph.Compile and Run on the CPU
// backend, and compares each output with the case's expected output.
// Each claimed case must pass or be refused with an error wrapping an
// ErrUnsupported/ErrOpset (which names the op and the attribute
// combination); a wrong result or any other error fails the test.
func TestConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(nodeCases, "*"))
	if len(dirs) == 0 {
		t.Skipf("ONNX conformance cases not installed at %s (Debian package libonnx-testdata)", nodeCases)
	}
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tally := map[string]*opTally{}
	claimed, unclaimed := 0, 0
	for _, dir := range dirs {
		m, err := onnx.ReadFile(filepath.Join(dir, "model.onnx"))
		if err != nil {
			continue // the decoder's own tests report what it refuses
		}
		ops := map[string]bool{}
		ok := true
		for _, n := range m.Graph.Nodes {
			ops[n.Op] = true
			ok = ok && graph.SupportedOp(n.Domain, n.Op)
		}
		if !ok || len(ops) == 0 {
			unclaimed++
			continue
		}
		claimed++
		out, reason := runCase(t, b, dir, m)
		name := filepath.Base(dir)
		for op := range ops {
			ta := tally[op]
			if ta == nil {
				ta = &opTally{reasons: map[string]int{}}
				tally[op] = ta
			}
			switch out {
			case outcomePass:
				ta.pass++
			case outcomeRefused:
				ta.refused++
				ta.reasons[reason]++
			case outcomeStub:
				ta.stub++
			case outcomeFail:
				ta.fail++
			}
		}
		switch out {
		case outcomeFail:
			t.Errorf("%s: %s", name, reason)
		case outcomeStub:
			// Every CPU kernel family is implemented: a kernel that
			// answers ErrUnsupported for a claimed case is a gap.
			t.Errorf("%s: a kernel refused a claimed case: %s", name, reason)
		case outcomeRefused:
			if *conformanceVerbose {
				t.Logf("%s: refused: %s", name, reason)
			}
		}
	}
	ops := make([]string, 0, len(tally))
	for op := range tally {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var sb strings.Builder
	tp, tr, ts, tf := 0, 0, 0, 0
	fmt.Fprintf(&sb, "%d claimed cases (%d not claimed: an op the executor lacks)\n", claimed, unclaimed)
	fmt.Fprintf(&sb, "%-22s %5s %7s %5s %5s\n", "op", "pass", "refused", "stub", "fail")
	for _, op := range ops {
		ta := tally[op]
		fmt.Fprintf(&sb, "%-22s %5d %7d %5d %5d\n", op, ta.pass, ta.refused, ta.stub, ta.fail)
		tp, tr, ts, tf = tp+ta.pass, tr+ta.refused, ts+ta.stub, tf+ta.fail
		rs := make([]string, 0, len(ta.reasons))
		for r := range ta.reasons {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		for _, r := range rs {
			fmt.Fprintf(&sb, "    refused x%d: %s\n", ta.reasons[r], r)
		}
	}
	fmt.Fprintf(&sb, "(per-op rows count a case once per op it uses: %d pass, %d refused, %d stub, %d fail)", tp, tr, ts, tf)
	t.Log("conformance per op:\n" + sb.String())
}

// runCase runs every test_data_set of one case.
func runCase(t *testing.T, b kernels.Backend, dir string, m *onnx.Model) (caseOutcome, string) {
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return outcomeRefused, "no test_data_set"
	}
	for _, set := range sets {
		out, reason := runSet(b, set, m)
		if out != outcomePass {
			return out, reason
		}
	}
	return outcomePass, ""
}

func readPBs(set, prefix string, n int) ([]*graph.Tensor, error) {
	var out []*graph.Tensor
	for i := 0; i < n; i++ {
		raw, err := os.ReadFile(filepath.Join(set, fmt.Sprintf("%s_%d.pb", prefix, i)))
		if err != nil {
			return nil, err
		}
		tt, err := onnx.DecodeTensor(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, tt)
	}
	return out, nil
}

// runSet imports the case with its data shapes, compiles and runs it. Graph
// inputs of integer type (shapes, indices, axes) become initializers with
// the case's values: the executor computes in float32 and folds integer
// values when compiling. When the importer asks for a constant (Clip's
// bounds, Resize's scales given as graph inputs), the run is repeated with
// every input but the first frozen the same way.
func runSet(b kernels.Backend, set string, m *onnx.Model) (caseOutcome, string) {
	g := m.Graph
	var runtimeIns []graph.ValueInfo
	for _, in := range g.Inputs {
		if _, ok := g.Initializers[in.Name]; !ok {
			runtimeIns = append(runtimeIns, in)
		}
	}
	ins, err := readPBs(set, "input", len(runtimeIns))
	if err != nil {
		return outcomeRefused, "input data: " + err.Error()
	}
	wants, err := readPBs(set, "output", len(g.Outputs))
	if err != nil {
		return outcomeRefused, "output data: " + err.Error()
	}
	out, reason := runFrozen(b, m, runtimeIns, ins, wants, false)
	if out == outcomeRefused && strings.Contains(reason, "must be a constant") {
		out, reason = runFrozen(b, m, runtimeIns, ins, wants, true)
	}
	return out, reason
}

func runFrozen(b kernels.Backend, m *onnx.Model, runtimeIns []graph.ValueInfo, ins, wants []*graph.Tensor, freezeAll bool) (caseOutcome, string) {
	g := *m.Graph
	g.Initializers = map[string]*graph.Tensor{}
	for k, v := range m.Graph.Initializers {
		g.Initializers[k] = v
	}
	g.Inputs = nil
	var feed []*graph.Tensor
	shapes := map[string][]int{}
	for i, in := range runtimeIns {
		if in.Shape != nil && !kernels.Shape(in.Shape).Equal(kernels.Shape(ins[i].Shape)) {
			match := len(in.Shape) == len(ins[i].Shape)
			for j, d := range in.Shape {
				match = match && (d < 0 || d == ins[i].Shape[j])
			}
			if !match {
				return outcomeRefused, fmt.Sprintf("case data: input %q has shape %v, the model declares %v", in.Name, ins[i].Shape, in.Shape)
			}
		}
		if m.ElemTypes[in.Name] == onnx.BFloat16 && ins[i].DType == graph.Int64 {
			// ONNX 1.12 stores bfloat16 case data as UINT16 bit patterns.
			f := make([]float32, len(ins[i].Int))
			for j, v := range ins[i].Int {
				f[j] = math.Float32frombits(uint32(v) << 16)
			}
			ins[i] = &graph.Tensor{DType: graph.Float32, Shape: ins[i].Shape, Float: f}
		}
		if ins[i].DType == graph.Int64 || (freezeAll && i > 0) {
			tt := *ins[i]
			tt.Name = in.Name
			g.Initializers[in.Name] = &tt
			continue
		}
		g.Inputs = append(g.Inputs, in)
		shapes[in.Name] = ins[i].Shape
		feed = append(feed, ins[i])
	}
	mm := *m
	mm.Graph = &g
	r, err := ImportModel(&mm, Options{InputLayout: LayoutNCHW, InputShapes: shapes})
	if err != nil {
		return classify(err)
	}
	prog, err := graph.Compile(r.Graph(), b, graph.Options{InputShapes: shapes})
	if err != nil {
		return classify(err)
	}
	defer prog.Close()
	feedT := make([]*kernels.Tensor, len(feed))
	for i, f := range feed {
		feedT[i] = kernels.FromSlice(f.Float, f.Shape...)
	}
	outs, err := prog.Run(feedT...)
	if err != nil {
		if errors.Is(err, kernels.ErrUnsupported) {
			return outcomeStub, err.Error()
		}
		return outcomeFail, "run: " + err.Error()
	}
	for i, want := range wants {
		got := make([]float32, outs[i].Numel())
		if err := b.Download(got, outs[i]); err != nil {
			return outcomeFail, err.Error()
		}
		if !kernels.Shape(want.Shape).Equal(outs[i].Shape) && want.Numel() != len(got) {
			return outcomeFail, fmt.Sprintf("output %d: shape %v (want %v)", i, outs[i].Shape, want.Shape)
		}
		if !kernels.Shape(want.Shape).Equal(outs[i].Shape) && len(want.Shape) != 0 {
			return outcomeFail, fmt.Sprintf("output %d: shape %v (want %v)", i, outs[i].Shape, want.Shape)
		}
		for j := range got {
			var w float64
			if want.DType == graph.Int64 {
				w = float64(want.Int[j])
			} else {
				w = float64(want.Float[j])
			}
			gj := float64(got[j])
			if math.IsNaN(w) && math.IsNaN(gj) {
				continue
			}
			if math.IsInf(w, 0) && w == gj {
				continue
			}
			if d := math.Abs(gj - w); !(d <= confAbs+confRel*math.Abs(w)) {
				return outcomeFail, fmt.Sprintf("output %d element %d: got %g, want %g (|diff| %.3g)", i, j, gj, w, d)
			}
		}
	}
	return outcomePass, ""
}

// classify sorts an import or compile error: refusals (unsupported op,
// attribute, dtype, opset, or a value that must be constant) versus
// failures.
func classify(err error) (caseOutcome, string) {
	switch {
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrOpset), errors.Is(err, graph.ErrUnsupported), errors.Is(err, onnx.ErrUnsupported):
		return outcomeRefused, trimNode(err.Error())
	case errors.Is(err, kernels.ErrUnsupported):
		return outcomeStub, err.Error()
	}
	return outcomeFail, "import/compile: " + err.Error()
}

// nodeRe matches a node label in graph errors.
var nodeRe = regexp.MustCompile(`node "[^"]*" \(([^)]*)\): `)

// trimNode drops the node's name from a graph error so that equal
// refusals of different cases group: `graph: unsupported: node "y" (Foo):
// attribute ...` becomes `graph: unsupported: Foo: attribute ...`.
func trimNode(s string) string { return nodeRe.ReplaceAllString(s, "$1: ") }
