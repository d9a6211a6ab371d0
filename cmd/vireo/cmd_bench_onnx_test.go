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
