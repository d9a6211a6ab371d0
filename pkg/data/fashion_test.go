package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func needFashion(t *testing.T) {
	t.Helper()
	for _, f := range fashionFiles {
		if !fileExists(filepath.Join(DefaultFashionDir, f)) {
			t.Skipf("Debian package dataset-fashion-mnist not installed (%s missing; make deps)", f)
		}
	}
}

func TestPrepareFashion(t *testing.T) {
	needFashion(t)
	dir := filepath.Join(t.TempDir(), "fashion")
	var stages []string
	err := Prepare(context.Background(), "fashion", dir, 1, func(s string, done, total int) {
		if done == total {
			stages = append(stages, s)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stages, ",") != "check,copy" {
		t.Errorf("progress stages: got %v", stages)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 60000 || s.Valid.Len() != 10000 || s.Meta.Task != Classify || len(s.Meta.Classes) != 10 {
		t.Fatalf("got train=%d valid=%d meta=%+v", s.Train.Len(), s.Valid.Len(), s.Meta)
	}
	counts := make([]int, 10)
	for i := 0; i < s.Valid.Len(); i++ {
		it, err := s.Valid.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		counts[it.Label]++
		if i == 0 && (it.Width != 28 || it.Height != 28 || it.Channels != 1 || len(it.Pixels) != 784) {
			t.Fatalf("item 0: %dx%dx%d, %d bytes", it.Width, it.Height, it.Channels, len(it.Pixels))
		}
	}
	for c, n := range counts { // the official test set is balanced
		if n != 1000 {
			t.Errorf("class %d: got %d test items, want 1000", c, n)
		}
	}
	if _, err := os.Stat(dir + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial directory left behind: %v", err)
	}
}

func TestPrepareFashionBadInput(t *testing.T) {
	needFashion(t)
	ctx := context.Background()
	empty := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	err := PrepareWith(ctx, PrepareConfig{Name: "fashion", Dir: out, FashionDir: empty})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), filepath.Join(empty, fashionFiles[0])) || !strings.Contains(err.Error(), "dataset-fashion-mnist") {
		t.Errorf("missing package: got %v", err)
	}

	bad := t.TempDir()
	for _, f := range fashionFiles {
		if err := copyFile(filepath.Join(DefaultFashionDir, f), filepath.Join(bad, f)); err != nil {
			t.Fatal(err)
		}
	}
	corrupt := filepath.Join(bad, fashionFiles[2])
	b, _ := os.ReadFile(corrupt)
	os.WriteFile(corrupt, b[:len(b)/2], 0o644)
	err = PrepareWith(ctx, PrepareConfig{Name: "fashion", Dir: out, FashionDir: bad})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("corrupt idx: got %v, want ErrData naming %s", err, corrupt)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed prepare left %s: %v", out, err)
	}
	if _, err := Open(out); !errors.Is(err, ErrData) {
		t.Errorf("open of nothing: got %v", err)
	}
	if err := Prepare(ctx, "nope", out, 0, nil); !errors.Is(err, ErrData) {
		t.Errorf("unknown name: got %v", err)
	}
}
