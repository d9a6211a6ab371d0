package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vireo/pkg/data"
	"vireo/pkg/onnx"
)

// TestTrainEvalUsage: missing or malformed flags are usage errors that
// name the flag, before any data is read.
func TestTrainEvalUsage(t *testing.T) {
	for _, c := range []struct {
		run  func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error
		args []string
		want string
	}{
		{trainCmd, []string{"--out", "x"}, "--data"},
		{trainCmd, []string{"--data", "x"}, "--out"},
		{evalCmd, []string{"--data", "x"}, "--model"},
		{evalCmd, []string{"--model", "m", "--data", "x", "--split", "test"}, "--split"},
		{benchTrainCmd, []string{"--opt", "lamb"}, "--opt"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "heavy"}, "--aug"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "none", "--flip-vert"}, "--flip-vert"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-lighting", "1.5"}, "--max-lighting"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "none", "--max-lighting", "0"}, "--max-lighting"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-zoom", "0.5"}, "--max-zoom"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-rotate", "200"}, "--max-rotate"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-shift", "0.7"}, "--max-shift"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--erase", "1.5"}, "--erase"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "none", "--erase", "0.5"}, "--erase"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--padding", "wavy"}, "--padding"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--label-smoothing", "1"}, "--label-smoothing"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--dropout", "1"}, "--dropout"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--dropout", "-0.1"}, "--dropout"},
	} {
		var out, errb bytes.Buffer
		err := c.run(context.Background(), c.args, &out, &errb)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
}

// TestDefaultAugment: classification, multi-label tiles (their items are
// upright) and segmentation flip horizontally by default, regression does
// not; --flip-vert gives the 8 dihedral symmetries.
func TestDefaultAugment(t *testing.T) {
	for _, task := range []data.Task{data.Classify, data.MultiLabel, data.Segment} {
		a := defaultAugment(task, false)
		if !a.FlipH || a.Dihedral {
			t.Errorf("%s: FlipH %v, Dihedral %v; want a horizontal flip only", task, a.FlipH, a.Dihedral)
		}
		if a = defaultAugment(task, true); !a.Dihedral {
			t.Errorf("%s with flipVert: Dihedral false", task)
		}
	}
	if a := defaultAugment(data.Regress, false); a.FlipH || a.Dihedral {
		t.Errorf("regress: FlipH %v, Dihedral %v; want no flips", a.FlipH, a.Dihedral)
	}
}

func trainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return runTrain(ctx, a, o, e)
}
func evalCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error { return runEval(ctx, a, o, e) }
func benchTrainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return benchTrain(ctx, a, o, e)
}

// TestTrainAugmentFlags: --max-lighting, --max-zoom, --max-rotate,
// --max-shift and --erase
// replace the task's values; -1 (not given) keeps them; --aug none is nil.
func TestTrainAugmentFlags(t *testing.T) {
	o := trainOpts{aug: "default", maxLighting: 0, maxZoom: 1.1, maxRotate: -1}
	a := trainAugment(o, data.MultiLabel)
	def := defaultAugment(data.MultiLabel, false)
	if a.MaxLighting != 0 || a.MaxZoom != 1.1 || a.MaxRotate != def.MaxRotate || !a.FlipH {
		t.Errorf("multilabel with --max-lighting 0 --max-zoom 1.1: %+v (default %+v)", *a, *def)
	}
	o.maxLighting, o.maxZoom, o.maxRotate = -1, -1, 7
	if a = trainAugment(o, data.Segment); a.MaxRotate != 7 || a.MaxLighting != defaultAugment(data.Segment, false).MaxLighting {
		t.Errorf("segment with --max-rotate 7: %+v", *a)
	}
	if a = trainAugment(trainOpts{aug: "default", maxLighting: -1, maxZoom: -1, maxRotate: -1, maxShift: 0.1, erase: 0.5}, data.Classify); a.MaxShift != 0.1 || a.Erase != 0.5 || !a.FlipH {
		t.Errorf("classify with --max-shift 0.1 --erase 0.5: %+v", *a)
	}
	if got := augString(a); got != "flip, shift 0.1, erase 0.5" {
		t.Errorf("augString: %q", got)
	}
	if a = trainAugment(trainOpts{aug: "none", maxLighting: -1, maxZoom: -1, maxRotate: -1, maxShift: -1, erase: -1}, data.Classify); a != nil {
		t.Errorf("--aug none: %+v, want nil", *a)
	}
}

// TestTrainEvalEndToEnd runs `vireo train` on a small prepared
// fashion-tiles dataset (32 training tiles, the 2000 validation tiles)
// and `vireo eval --json` on what it wrote: the per-epoch table, the model
// directory (ONNX, manifest with the task's metrics, loss and learning
// rate plots), the CPU profile of --cpuprofile, and eval's metric names.
func TestTrainEvalEndToEnd(t *testing.T) {
	if _, err := os.Stat(filepath.Join(data.DefaultFashionDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Debian package dataset-fashion-mnist not installed (make deps)")
	}
	if testing.Short() {
		t.Skip("prepares a dataset and trains two short epochs (~10 s)")
	}
	dir := t.TempDir()
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"data", "prepare", "fashion-tiles", "--dir", dir, "--train-tiles", "32", "--quiet"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	model, prof := filepath.Join(dir, "m"), filepath.Join(dir, "cpu.prof")
	out.Reset()
	err := run(ctx, []string{"train", "--data", "fashion-tiles", "--data-root", dir, "--arch", "resnet8s@0.125", "--size", "32",
		"--epochs", "2", "--bs", "16", "--lr", "1e-3", "--seed", "1", "--threads", "2", "--out", model, "--no-progress", "--cpuprofile", prof,
		"--max-shift", "0.1", "--erase", "0.5", "--padding", "zeros", "--dropout", "0.5"}, &out, &errb)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, errb.String())
	}
	for _, want := range []string{"train_loss", "valid_loss", "fbeta", "wrote " + model} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("train's output has no %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"model.onnx", "manifest.json", "losses.png", "lr.png"} {
		if st, err := os.Stat(filepath.Join(model, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("--cpuprofile: %v", err)
	}
	var m struct {
		Task    string             `json:"task"`
		Metrics map[string]float64 `json:"metrics"`
		Notes   string             `json:"notes"`
	}
	if b, err := os.ReadFile(filepath.Join(model, "manifest.json")); err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	if _, ok := m.Metrics["fbeta"]; m.Task != "multilabel" || !ok {
		t.Errorf("manifest: task %q metrics %v, want multilabel with fbeta", m.Task, m.Metrics)
	}
	if !strings.Contains(m.Notes, "shift 0.1, erase 0.5") || !strings.Contains(m.Notes, "lr 1e-3") || !strings.Contains(m.Notes, "dropout 0.5") {
		t.Errorf("manifest notes do not name the recipe: %q", m.Notes)
	}
	mo, err := onnx.ReadFile(filepath.Join(model, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dropouts := 0
	for _, n := range mo.Graph.Nodes {
		if n.Op == "Dropout" {
			dropouts++
		}
	}
	if dropouts != 2 {
		t.Errorf("--dropout 0.5: the model has %d Dropout nodes, want the head's 2", dropouts)
	}
	out.Reset()
	if err := run(ctx, []string{"eval", "--model", model, "--data", "fashion-tiles", "--data-root", dir, "--json"}, &out, &errb); err != nil {
		t.Fatalf("eval: %v", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out.String())
	}
	for _, k := range []string{"fbeta", "accuracy_thresh", "per_class"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("eval --json has no %q: %s", k, out.String())
		}
	}
	if f, _ := ev["fbeta"].(float64); f != m.Metrics["fbeta"] {
		t.Errorf("eval fbeta %v, manifest %v: the same model on the same split", ev["fbeta"], m.Metrics["fbeta"])
	}
}

// TestBenchTrainProfile: --profile N adds "ops" to the JSON and writes the
// per-op table (with the backward kernels) and the N slowest kernels to
// stderr.
func TestBenchTrainProfile(t *testing.T) {
	var out, errb bytes.Buffer
	err := benchTrain(context.Background(), []string{"--arch", "resnet8s@0.125", "--size", "16", "--batch", "4", "--channels", "1", "--small-stem",
		"--reps", "2", "--m", "64", "--k", "64", "--n", "64", "--profile", "3", "--json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench train --profile: %v\n%s", err, errb.String())
	}
	var res struct {
		Ops []struct {
			Node     string `json:"node"`
			Backward bool   `json:"backward"`
		} `json:"ops"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Ops) == 0 {
		t.Fatalf("JSON %v, %d ops:\n%s", err, len(res.Ops), out.String())
	}
	for _, want := range []string{"op  ", "GFLOP/s", "Conv (backward)", "BatchNormalization", "total", "step  node"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if n := strings.Count(errb.String(), "\n"); n < 3+3 {
		t.Errorf("stderr has %d lines:\n%s", n, errb.String())
	}
	if err := benchTrain(context.Background(), []string{"--profile", "-1"}, &out, &errb); !errors.As(err, new(usageError)) {
		t.Errorf("--profile -1: %v, want a usage error", err)
	}
}
