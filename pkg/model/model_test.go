package model

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/onnx"
)

var update = flag.Bool("update", false, "rewrite testdata/manifest.golden.json")

// sample is a complete segmentation manifest.
func sample() Manifest {
	return Manifest{
		Name:               "road-seg",
		Version:            "v3",
		Task:               Segment,
		Labels:             []string{"background", "road", "car", "void"},
		Input:              Input{Width: 320, Height: 240, Channels: 3, Color: "bgr"},
		Normalization:      Normalization{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}},
		VoidClass:          3,
		Metrics:            map[string]float64{"miou": 0.712, "acc": 0.93, "val_loss": 0.41},
		ParentVersion:      "v2",
		TrainingDataDigest: Digest([]byte("training set")),
		CorrectionDigest:   Digest([]byte("corrections")),
		CreatedAt:          time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC),
		Arch:               "resnet18-unet",
		Notes:              "fine-tuned on night frames",
	}
}

// segGraph is a one-node network shaped like sample(): input (N,3,240,320),
// output (N,4,240,320).
func segGraph() *graph.Graph {
	return &graph.Graph{
		Nodes:   []*graph.Node{{Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}}},
		Inputs:  []graph.ValueInfo{{Name: "x", DType: graph.Float32, Shape: []int{-1, 3, 240, 320}, DimParams: []string{"N", "", "", ""}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: graph.Float32, Shape: []int{-1, 4, 240, 320}, DimParams: []string{"N", "", "", ""}}},
		Initializers: map[string]*graph.Tensor{
			"w": {Name: "w", DType: graph.Float32, Shape: []int{4, 3, 1, 1}, Float: make([]float32, 12)},
		},
	}
}

// tinyONNX is segGraph encoded by package onnx.
func tinyONNX(t *testing.T) []byte {
	t.Helper()
	b, err := onnx.Encode(onnx.NewModel(segGraph()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifestGolden(t *testing.T) {
	m := sample()
	m.SetDefaults()
	m.ModelDigest = Digest([]byte("model bytes"))
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/model -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("manifest JSON differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
	back, err := Unmarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("golden file parses to %+v, want %+v", back, m)
	}
}

func TestSetDefaults(t *testing.T) {
	m := Manifest{Task: MultiLabel}
	m.SetDefaults()
	if m.FormatVersion != FormatVersion || m.Threshold != DefaultThreshold || m.Input.Layout != "nchw" || m.Input.Color != "rgb" {
		t.Errorf("defaults: %+v", m)
	}
	c := Manifest{Task: Classify}
	c.SetDefaults()
	if c.Threshold != 0 {
		t.Errorf("classify got threshold %v, want 0", c.Threshold)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Manifest { m := sample(); m.SetDefaults(); return m }
	if m := valid(); m.Validate() != nil {
		t.Fatalf("sample invalid: %v", m.Validate())
	}
	ml := valid()
	ml.Task, ml.VoidClass, ml.Threshold = MultiLabel, NoVoid, 0.35
	rg := valid()
	rg.Task, rg.VoidClass, rg.Labels, rg.Points = Regress, NoVoid, nil, 5
	for name, m := range map[string]Manifest{"multilabel": ml, "regress": rg} {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, c := range []struct {
		name   string
		break_ func(m *Manifest)
		msg    string
	}{
		{"task", func(m *Manifest) { m.Task = "detect" }, `task "detect"`},
		{"name", func(m *Manifest) { m.Name = "a/b" }, `name: "a/b": character '/'`},
		{"version empty", func(m *Manifest) { m.Version = "" }, "version: empty"},
		{"parent", func(m *Manifest) { m.ParentVersion = "v3" }, "parent_version \"v3\" equals version"},
		{"labels dup", func(m *Manifest) { m.Labels[2] = "road" }, `labels[2] "road" is a duplicate`},
		{"labels few", func(m *Manifest) { m.Labels = m.Labels[:1]; m.VoidClass = NoVoid }, "segment needs at least 2"},
		{"void range", func(m *Manifest) { m.VoidClass = 4 }, "void_class 4: want -1 or a class index below 4"},
		{"void classify", func(m *Manifest) { m.Task = Classify; m.VoidClass = 0 }, "void_class 0 given for task classify"},
		{"threshold", func(m *Manifest) { m.Task = MultiLabel; m.VoidClass = NoVoid; m.Threshold = 1.5 }, "threshold 1.5: want in (0, 1)"},
		{"threshold other", func(m *Manifest) { m.Threshold = 0.3 }, "threshold 0.3 given for task segment"},
		{"points", func(m *Manifest) { m.Task = Regress; m.VoidClass = NoVoid; m.Labels = nil }, "points: regress needs at least 1, got 0"},
		{"point names", func(m *Manifest) { m.Task = Regress; m.VoidClass = NoVoid; m.Points = 2 }, "labels: 4 point names for 2 points"},
		{"size", func(m *Manifest) { m.Input.Width = 0 }, "width x height 0x240"},
		{"channels", func(m *Manifest) { m.Input.Channels = 4 }, "input.channels 4"},
		{"layout", func(m *Manifest) { m.Input.Layout = "nhwc" }, `input.layout "nhwc"`},
		{"color", func(m *Manifest) { m.Input.Color = "yuv" }, `input.color_order "yuv"`},
		{"norm len", func(m *Manifest) { m.Normalization.Std = m.Normalization.Std[:2] }, "3 mean and 2 std values for 3 channels"},
		{"std zero", func(m *Manifest) { m.Normalization.Std[1] = 0 }, "normalization.std[1] 0"},
		{"digest", func(m *Manifest) { m.TrainingDataDigest = "md5:abc" }, `training_data_digest "md5:abc"`},
		{"metric nan", func(m *Manifest) { m.Metrics["x"] = zero() / zero() }, `metrics["x"] is NaN`},
		{"created", func(m *Manifest) { m.CreatedAt = time.Time{} }, "created_at is not set"},
		{"arch", func(m *Manifest) { m.Arch = " " }, "arch is empty"},
	} {
		m := valid()
		c.break_(&m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want ErrInvalid containing %q", c.name, err, c.msg)
		}
	}
	m := valid()
	m.FormatVersion = 2
	if err := m.Validate(); !errors.Is(err, ErrFormatVersion) || !strings.Contains(err.Error(), "format_version 2, want 1") {
		t.Errorf("format version: %v", err)
	}
	// All problems are reported at once.
	m = valid()
	m.Name, m.Arch = "", ""
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "name: empty") || !strings.Contains(err.Error(), "arch is empty") {
		t.Errorf("several problems: %v", err)
	}
}

func zero() float64 { return 0 }

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "road-seg", "v3")
	b := tinyONNX(t)
	m := sample()
	if err := Save(dir, b, m); err != nil {
		t.Fatal(err)
	}
	got, gotB, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := m
	want.SetDefaults()
	want.ModelDigest = Digest(b)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
	if !bytes.Equal(gotB, b) {
		t.Error("model bytes differ")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, _ := e.Info(); info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", e.Name(), info.Mode().Perm())
		}
	}
	if !reflect.DeepEqual(names, []string{ManifestFile, ONNXFile}) {
		t.Errorf("directory holds %v, want only the two files", names)
	}
	// Saving again replaces both files.
	m.Notes = "second save"
	if err := Save(dir, b, m); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := Load(dir); got.Notes != "second save" {
		t.Errorf("after second save notes %q", got.Notes)
	}
}

func TestSaveRejects(t *testing.T) {
	dir := t.TempDir()
	bad := sample()
	bad.Task = "detect"
	if err := Save(dir, tinyONNX(t), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid manifest: %v", err)
	}
	if err := Save(dir, []byte("not onnx"), sample()); !errors.Is(err, onnx.ErrMalformed) {
		t.Errorf("bad onnx bytes: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected saves left %d files", len(entries))
	}
}

func TestCheckGraph(t *testing.T) {
	m := sample()
	if err := CheckGraph(m, segGraph()); err != nil {
		t.Fatalf("matching graph: %v", err)
	}
	dyn := segGraph()
	dyn.Inputs[0].Shape = []int{-1, 3, -1, -1}
	dyn.Outputs[0].Shape = nil
	if err := CheckGraph(m, dyn); err != nil {
		t.Errorf("dynamic dims: %v", err)
	}
	cls := sample()
	cls.Task, cls.VoidClass, cls.Labels = Classify, NoVoid, []string{"a", "b"}
	clsGraph := segGraph()
	clsGraph.Outputs[0].Shape = []int{-1, 2}
	rg := sample()
	rg.Task, rg.VoidClass, rg.Labels, rg.Points = Regress, NoVoid, nil, 3
	rgGraph := segGraph()
	rgGraph.Outputs[0].Shape = []int{-1, 6}
	for name, c := range map[string]struct {
		m Manifest
		g *graph.Graph
	}{"classify": {cls, clsGraph}, "regress": {rg, rgGraph}} {
		if err := CheckGraph(c.m, c.g); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, c := range []struct {
		name   string
		m      Manifest
		break_ func(g *graph.Graph)
		msg    string
	}{
		{"input size", m, func(g *graph.Graph) { g.Inputs[0].Shape[3] = 224 }, `input "x" has shape [-1 3 240 224], manifest input is 3x240x320`},
		{"input rank", m, func(g *graph.Graph) { g.Inputs[0].Shape = []int{-1, 3} }, "want (N, C, H, W)"},
		{"classes", m, func(g *graph.Graph) { g.Outputs[0].Shape[1] = 5 }, `output "y" has 5 classes (shape [-1 5 240 320]), manifest has 4 labels`},
		{"segment rank", m, func(g *graph.Graph) { g.Outputs[0].Shape = []int{-1, 4} }, "want 4 for segment"},
		{"regress", rg, func(g *graph.Graph) { g.Outputs[0].Shape = []int{-1, 5} }, "want 2*points = 6"},
		{"no input", m, func(g *graph.Graph) { g.Inputs = nil }, "no input"},
		{"only initializer input", m, func(g *graph.Graph) { g.Inputs = []graph.ValueInfo{{Name: "w"}} }, "no input"},
	} {
		g := segGraph()
		c.break_(g)
		if err := CheckGraph(c.m, g); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want ErrInvalid containing %q", c.name, err, c.msg)
		}
	}
	// Save refuses a network that does not match its manifest.
	other := sample()
	other.Input.Width = 640
	if err := Save(t.TempDir(), tinyONNX(t), other); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "does not match the manifest") {
		t.Errorf("Save of mismatched model: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, tinyONNX(t), sample()); err != nil {
		t.Fatal(err)
	}
	// A model.onnx swapped after the manifest was written.
	if err := os.WriteFile(filepath.Join(dir, ONNXFile), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); !errors.Is(err, ErrDigest) {
		t.Errorf("swapped model: %v", err)
	}
	js, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	for _, c := range []struct {
		name string
		js   string
		want error
		msg  string
	}{
		{"unknown field", strings.Replace(string(js), `"notes"`, `"nots"`, 1), ErrInvalid, `unknown field "nots"`},
		{"format", strings.Replace(string(js), `"format_version": 1`, `"format_version": 7`, 1), ErrFormatVersion, "format_version 7"},
		{"not json", "{", ErrInvalid, "unexpected EOF"},
		{"trailing", string(js) + "{}", ErrInvalid, "trailing data"},
		{"wrong type", strings.Replace(string(js), `"width": 320`, `"width": "320"`, 1), ErrInvalid, "width"},
	} {
		if _, err := Unmarshal([]byte(c.js)); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
	// void_class may be left out: no void class.
	noVoid := strings.Replace(string(js), `"void_class": 3,`, ``, 1)
	if m, err := Unmarshal([]byte(noVoid)); err != nil || m.VoidClass != NoVoid {
		t.Errorf("missing void_class: %v, %d", err, m.VoidClass)
	}
	if _, _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}
