package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"vireo/pkg/model"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/services/infer"
)

// saveTinyModel writes a model directory: a 3-class classifier on 8x8.
func saveTinyModel(t *testing.T, dir, name string, scale float32) {
	t.Helper()
	b, m := modeltest.TinyClassifier(t, 8, 8, scale, [3]string{"a", "b", "c"})
	m.Name, m.Version, m.Metrics = name, "local", map[string]float64{"accuracy": 0.5}
	if err := model.Save(dir, b, m); err != nil {
		t.Fatal(err)
	}
}

func TestModelsCommand(t *testing.T) {
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	root := t.TempDir()
	saveTinyModel(t, filepath.Join(root, "one"), "people", 1)
	saveTinyModel(t, filepath.Join(root, "two"), "faces", 2)
	var plot bytes.Buffer // people has training plots, faces none
	if err := png.Encode(&plot, image.NewGray(image.Rect(0, 0, 4, 3))); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"losses.png", "lr.png"} {
		if err := os.WriteFile(filepath.Join(root, "one", f), plot.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	vireo := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append(append([]string{"models"}, args...), "--nats", s.ClientURL()), &out, &errOut)
		if err != nil && errOut.Len() > 0 {
			t.Logf("stderr: %s", errOut.String())
		}
		return out.String(), err
	}

	out, err := vireo("push", root) // both model directories
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "faces: pushed v0001, now serving") || !strings.Contains(out, "people: pushed v0001, now serving") {
		t.Fatalf("push output:\n%s", out)
	}
	out, err = vireo("push", "--if-missing", root)
	if err != nil || strings.Count(out, "skipped") != 2 {
		t.Fatalf("push --if-missing: %v\n%s", err, out)
	}
	if out, err = vireo("push", filepath.Join(root, "one")); err != nil || !strings.Contains(out, "people: pushed v0002, now serving") {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	out, err = vireo("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []modelRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Model != "people" || rows[1].Serving != "v0002" || rows[1].Versions != 2 || rows[1].Task != "classify" {
		t.Fatalf("list: %+v", rows)
	}
	// Flags after the positional argument.
	out, err = vireo("rollback", "people", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var p modelstore.Pointer
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Version != "v0001" || p.Previous != "v0002" {
		t.Fatalf("rollback: %s (%v)", out, err)
	}
	if out, err = vireo("rollback", "people", "--to", "v0002"); err != nil || !strings.Contains(out, "now serving v0002") {
		t.Fatalf("rollback --to: %v\n%s", err, out)
	}
	out, err = vireo("versions", "people")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "v0002") || !strings.Contains(lines[2], "*") || !strings.Contains(lines[1], "rollback from v0001") && !strings.Contains(lines[2], "rollback from v0001") {
		t.Fatalf("versions:\n%s", out)
	}
	if !strings.Contains(out, "accuracy=0.5") {
		t.Fatalf("versions without metrics:\n%s", out)
	}
	if strings.Count(out, "losses.png,lr.png") != 2 {
		t.Fatalf("versions of people: want both pushes with their plots:\n%s", out)
	}
	if out, err = vireo("versions", "faces"); err != nil || strings.Contains(out, ".png") {
		t.Fatalf("versions of faces (pushed without plots): %v\n%s", err, out)
	}
	notPNG := t.TempDir()
	saveTinyModel(t, notPNG, "people", 1)
	if err := os.WriteFile(filepath.Join(notPNG, "lr.png"), []byte("a text file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vireo("push", notPNG); err == nil || !strings.Contains(err.Error(), "not a PNG") {
		t.Fatalf("push of a directory whose lr.png is not a PNG: %v (want refused)", err)
	}

	for _, c := range []struct {
		args  []string
		usage bool
	}{
		{[]string{"frobnicate"}, true},
		{[]string{"versions"}, true},
		{[]string{"rollback", "a", "b"}, true},
		{[]string{"versions", "nobody"}, false},
		{[]string{"rollback", "faces"}, false}, // nothing served before
		{[]string{"push", t.TempDir()}, false},
	} {
		_, err := vireo(c.args...)
		var u usageError
		if err == nil || errors.As(err, &u) != c.usage {
			t.Errorf("models %v: err=%v (want usage error: %v)", c.args, err, c.usage)
		}
	}
	if _, err := vireo("versions", "nobody"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("versions of an unknown model: %v (want ErrNotFound)", err)
	}
	if _, err := vireo(); err == nil {
		t.Error("models without a command succeeded")
	}
}

func TestInferFlags(t *testing.T) {
	parse := func(args ...string) (infer.Config, error) {
		fs := newFlagSet("infer", &bytes.Buffer{})
		f := addInferFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			return infer.Config{}, err
		}
		return f.config()
	}
	for _, k := range []string{"VIREO_MODEL", "VIREO_BACKEND", "VIREO_THREADS", "VIREO_MAX_BATCH", "VIREO_MAX_DELAY", "VIREO_REPLICAS", "VIREO_PREFIX", "VIREO_NO_KEEP", "VIREO_KEEP_WINDOW", "VIREO_MAX_IN_FLIGHT"} {
		t.Setenv(k, "")
	}
	t.Setenv("VIREO_MAX_BATCH", "8")
	t.Setenv("VIREO_MAX_DELAY", "3ms")
	t.Setenv("VIREO_REPLICAS", "3")
	t.Setenv("VIREO_BACKEND", "cpu")
	t.Setenv("VIREO_THREADS", "0")
	t.Setenv("VIREO_PREFIX", "vireo")
	t.Setenv("VIREO_KEEP_WINDOW", "2h")
	t.Setenv("VIREO_MAX_IN_FLIGHT", "2")
	t.Setenv("VIREO_MATH", "fp16")
	got, err := parse("--model", "people, faces", "--max-batch", "4")
	if err != nil {
		t.Fatal(err)
	}
	want := infer.Config{Prefix: "vireo", Models: []string{"people", "faces"}, Backend: "cpu", Math: "fp16", Replicas: 3, MaxBatch: 4, MaxInFlight: 2, MaxDelay: 3 * time.Millisecond, KeepWindow: 2 * time.Hour}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config\n got %+v\nwant %+v", got, want)
	}
	if got, err := parse("--backend", "cuda", "--math", "bf16"); err != nil || got.Math != "bf16" || got.Backend != "cuda" {
		t.Errorf("--backend cuda --math bf16: %+v, %v", got, err)
	}
	for _, args := range [][]string{
		{"--max-delay", "soon"},
		{"--max-batch", "0"},
		{"--max-in-flight", "65"},
		{"--model", "a.b"},
		{"--replicas", "9"},
		{"--log-format", "xml"},
		{"--keep-window", "forever"},
		{"--keep-window", "1s"},
		{"--math", "fp8"},
		{"extra"},
	} {
		_, err := parse(args...)
		var u usageError
		if !errors.As(err, &u) && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: err=%v (want a usage error)", args, err)
		}
	}
}
