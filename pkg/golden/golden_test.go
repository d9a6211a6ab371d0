package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeT records a failure instead of stopping the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic(f) }
func (f *fakeT) Fatal(...any)          { f.failed = true; panic(f) }

func run(tb *fakeT, fn func()) {
	defer func() {
		if r := recover(); r != nil && r != tb {
			panic(r)
		}
	}()
	fn()
}

func TestJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testdata", "x.golden.json")
	v := map[string]int{"a": 1}
	JSON(t, path, v, true) // writes, then matches
	if b, _ := os.ReadFile(path); string(b) != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("written %q", b)
	}
	JSON(t, path, v, false)
	ft := &fakeT{TB: t}
	run(ft, func() { JSON(ft, path, map[string]int{"a": 2}, false) })
	if !ft.failed {
		t.Fatal("a changed value passed")
	}
	ft = &fakeT{TB: t}
	run(ft, func() { JSON(ft, filepath.Join(t.TempDir(), "missing.json"), v, false) })
	if !ft.failed {
		t.Fatal("a missing golden file passed")
	}
}
