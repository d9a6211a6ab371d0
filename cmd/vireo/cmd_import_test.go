package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/pkg/onnx"
	"vireo/pkg/onnximport"
)

// nhwcClassifier writes a tiny TensorFlow-style classifier: NHWC input
// (1,8,8,3), the exporter's Transpose to NCHW, global pooling and a 3->4
// Gemm.
func nhwcClassifier(t *testing.T, extraOp string) string {
	t.Helper()
	g := &graph.Graph{Name: "tiny", Opset: 13, Initializers: map[string]*graph.Tensor{
		"w": {Name: "w", DType: graph.Float32, Shape: []int{4, 3}, Float: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}},
	}}
	g.Inputs = []graph.ValueInfo{{Name: "image", DType: graph.Float32, Shape: []int{-1, 8, 8, 3}, DimParams: []string{"N", "", "", ""}}}
	g.Nodes = []*graph.Node{
		{Name: "t", Op: "Transpose", Inputs: []string{"image"}, Outputs: []string{"x"}, Attrs: map[string]graph.Attr{"perm": {Kind: graph.AttrInts, Ints: []int64{0, 3, 1, 2}}}},
		{Name: "p", Op: "GlobalAveragePool", Inputs: []string{"x"}, Outputs: []string{"p"}},
		{Name: "f", Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"f"}},
		{Name: "g", Op: "Gemm", Inputs: []string{"f", "w"}, Outputs: []string{"logits"}, Attrs: map[string]graph.Attr{"transB": {Kind: graph.AttrInt, Int: 1}}},
	}
	out := "logits"
	if extraOp != "" {
		g.Nodes = append(g.Nodes, &graph.Node{Name: "e", Op: extraOp, Inputs: []string{"logits"}, Outputs: []string{"y"}})
		out = "y"
	}
	g.Outputs = []graph.ValueInfo{{Name: out, DType: graph.Float32, Shape: []int{-1, 4}}}
	p := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := onnx.WriteFile(p, onnx.NewModel(g)); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportCommand(t *testing.T) {
	src := nhwcClassifier(t, "")
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.txt")
	if err := os.WriteFile(labels, []byte("cat\ndog\nbird\nfish\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "model")
	var stdout, stderr bytes.Buffer
	err := runImport(context.Background(), []string{src, "--name", "tiny", "--task", "classify", "--labels", labels,
		"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("import: %v (stderr %s)", err, stderr.String())
	}
	m, b, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Input.Layout != "nchw" || m.Input.Channels != 3 || m.Input.Height != 8 || m.Input.Width != 8 || len(m.Labels) != 4 || m.Labels[3] != "fish" {
		t.Fatalf("manifest %+v", m)
	}
	om, err := onnx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s := om.Graph.Inputs[0].Shape; len(s) != 4 || s[1] != 3 || s[2] != 8 {
		t.Fatalf("stored input shape %v (want (N,3,8,8))", s)
	}
	for _, n := range om.Graph.Nodes {
		if n.Op == "Transpose" {
			t.Fatalf("stored model still transposes: %v", n)
		}
	}
	if !strings.Contains(stdout.String(), "original layout nhwc") {
		t.Errorf("stdout %q does not report the layout", stdout.String())
	}
}

func TestImportCommandErrors(t *testing.T) {
	ctx := context.Background()
	var so, se bytes.Buffer
	err := runImport(ctx, []string{nhwcClassifier(t, "NonZero"), "--name", "x", "--task", "classify", "--out", t.TempDir()}, &so, &se)
	if !errors.Is(err, onnximport.ErrUnsupported) || !strings.Contains(err.Error(), "NonZero x1") {
		t.Errorf("unsupported op: err = %v", err)
	}
	err = runImport(ctx, []string{nhwcClassifier(t, ""), "--name", "x", "--task", "regress", "--points", "3", "--out", t.TempDir()}, &so, &se)
	if err == nil || !strings.Contains(err.Error(), "2*points") {
		t.Errorf("regress with 4 outputs and 3 points: err = %v", err)
	}
	var ue usageError
	if err := runImport(ctx, []string{"--name", "x"}, &so, &se); !errors.As(err, &ue) {
		t.Errorf("no file: err = %v (want a usage error)", err)
	}
	if err := runImport(ctx, []string{nhwcClassifier(t, ""), "--name", "x", "--task", "classify", "--mean", "1,2", "--out", t.TempDir()}, &so, &se); !errors.As(err, &ue) {
		t.Errorf("2 means for 3 channels: err = %v (want a usage error)", err)
	}
	if err := runImport(ctx, []string{nhwcClassifier(t, ""), "--name", "x", "--decode", "blazeface", "--task", "classify", "--out", t.TempDir()}, &so, &se); !errors.As(err, &ue) {
		t.Errorf("--decode blazeface --task classify: err = %v (want a usage error)", err)
	}
	err = runImport(ctx, []string{nhwcClassifier(t, ""), "--name", "x", "--decode", "blazeface", "--out", t.TempDir()}, &so, &se)
	if !errors.Is(err, onnximport.ErrInvalid) || !strings.Contains(err.Error(), "(N,512,1)") {
		t.Errorf("--decode blazeface on a classifier: err = %v (want ErrInvalid naming the outputs it needs)", err)
	}
	err = runImport(ctx, []string{nhwcClassifier(t, ""), "--name", "x", "--task", "classify", "--decode", "yolo", "--out", t.TempDir()}, &so, &se)
	if !errors.Is(err, onnximport.ErrInvalid) {
		t.Errorf("--decode yolo: err = %v (want ErrInvalid)", err)
	}
}

func TestImportPush(t *testing.T) {
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	var so, se bytes.Buffer
	err = runImport(context.Background(), []string{nhwcClassifier(t, ""), "--name", "tiny", "--task", "multilabel", "--push", "--nats", s.ClientURL()}, &so, &se)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := modelstore.Open(context.Background(), js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := st.Versions(context.Background(), "tiny")
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions %v, err %v (want one)", vs, err)
	}
	b, m, err := st.Get(context.Background(), "tiny", vs[0].Version)
	if err != nil || len(b) == 0 || m.Task != model.MultiLabel || m.Threshold != model.DefaultThreshold {
		t.Fatalf("get: manifest %+v err %v", m, err)
	}
	if !strings.Contains(so.String(), "pushed tiny v0001") {
		t.Errorf("stdout %q", so.String())
	}
}
