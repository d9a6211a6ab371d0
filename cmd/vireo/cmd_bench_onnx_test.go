package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBenchONNX(t *testing.T) {
	src := nhwcClassifier(t, "")
	var so, se bytes.Buffer
	err := runBench(context.Background(), []string{"onnx", "--model", src, "--input", "/usr/share/doc/opencv-doc/examples/data/messi5.jpg", "--batch", "2", "--reps", "3", "--json"}, &so, &se)
	if err != nil {
		t.Fatalf("bench onnx: %v (stderr %s)", err, se.String())
	}
	var r onnxBenchResult
	if err := json.Unmarshal(so.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", so.String(), err)
	}
	if r.VireoMS <= 0 || r.Batch != 2 || r.Layout != "nhwc" || len(r.Shape) != 4 || r.Shape[0] != 2 || r.Shape[1] != 3 {
		t.Fatalf("result %+v", r)
	}
	var ue usageError
	err = runBench(context.Background(), []string{"onnx", "--model", src, "--shape", "1x3x9x8"}, &so, &se)
	if !errors.As(err, &ue) {
		t.Errorf("--shape against a static input: err = %v (want a usage error)", err)
	}
	if !ortAvailable {
		err = runBench(context.Background(), []string{"onnx", "--model", src, "--vs-ort"}, &so, &se)
		if err == nil || !strings.Contains(err.Error(), "-tags ort") {
			t.Errorf("--vs-ort without the tag: err = %v", err)
		}
	}
}

// TestBenchONNXProfile: --profile N writes the per-op table (every op of
// the compiled program, a total) and the N slowest nodes to stderr, and
// still prints the JSON result.
func TestBenchONNXProfile(t *testing.T) {
	src := nhwcClassifier(t, "")
	var so, se bytes.Buffer
	err := runBench(context.Background(), []string{"onnx", "--model", src, "--reps", "3", "--profile", "2"}, &so, &se)
	if err != nil {
		t.Fatalf("bench onnx --profile: %v (stderr %s)", err, se.String())
	}
	var r onnxBenchResult
	if err := json.Unmarshal(so.Bytes(), &r); err != nil || r.VireoMS <= 0 {
		t.Fatalf("output %q: %v", so.String(), err)
	}
	out := se.String()
	for _, want := range []string{"op ", "GlobalAveragePool", "Gemm", "total", "step", "node"} {
		if !strings.Contains(out, want) {
			t.Errorf("profile lacks %q:\n%s", want, out)
		}
	}
	// The slowest-nodes table has a header and at most 2 rows.
	parts := strings.SplitN(out, "step", 2)
	if len(parts) != 2 {
		t.Fatalf("no slowest-nodes table:\n%s", out)
	}
	if rows := strings.Count(strings.TrimSpace(parts[1]), "\n"); rows != 2 {
		t.Errorf("slowest nodes: %d rows (want 2):\n%s", rows, out)
	}
}
