package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vireo/pkg/data"
)

func TestDataPrepareFashion(t *testing.T) {
	if _, err := os.Stat(filepath.Join(data.DefaultFashionDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Debian package dataset-fashion-mnist not installed (make deps)")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"data", "prepare", "fashion", "--dir", dir, "--seed", "3"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "60000 train / 10000 valid") || !strings.Contains(out.String(), filepath.Join(dir, "fashion")) {
		t.Errorf("stdout: %q", out.String())
	}
	if !strings.Contains(errb.String(), "copy") || !strings.Contains(errb.String(), "4/4") {
		t.Errorf("no progress bar on stderr: %q", errb.String())
	}
	if _, err := data.Locate(dir, "fashion"); err != nil {
		t.Error(err)
	}
}

// TestDataPrepareTiles: --train-tiles sets the training tile count; the
// validation tiles stay 2000.
func TestDataPrepareTiles(t *testing.T) {
	if _, err := os.Stat(filepath.Join(data.DefaultFashionDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Debian package dataset-fashion-mnist not installed (make deps)")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"data", "prepare", "fashion-tiles", "--dir", dir, "--train-tiles", "30", "--quiet"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "fashion-tiles: 30 train / 2000 valid 64x64x1 multilabel") {
		t.Errorf("stdout: %q", out.String())
	}
}

func TestDataUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"data"}, {"data", "prepare"}, {"data", "prepare", "nope"}, {"data", "prepare", "fashion", "--seed", "x"}, {"data", "prepare", "fashion-tiles", "--train-tiles", "-1"}} {
		err := run(context.Background(), args, &out, &errb)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
