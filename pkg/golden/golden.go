// Package golden compares a test's output with a file under testdata, the
// habit of STYLE.md 14: `go test -update` rewrites the file, and a plain run
// fails with both versions when they differ.
//
// The -update flag stays declared in each test package (a flag declared
// here would clash with theirs); callers pass its value.
package golden

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Bytes compares got with the file at path, first rewriting the file when
// update is set.
func Bytes(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed (go test -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// JSON is Bytes on v as indented JSON with a final newline.
func JSON(t testing.TB, path string, v any, update bool) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	Bytes(t, path, append(got, '\n'), update)
}
