package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ptxHash is sha256 over "name\n" + content of each file, in sorted name
// order: hash_files in scripts/gen-ptx.sh.
func ptxHash(t *testing.T, dir string, exts ...string) (string, []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if slices.Contains(exts, filepath.Ext(e.Name())) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(n + "\n"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), names
}

// TestPTXFresh fails when a .cu/.cuh source changed after `make ptx`, or
// when the committed PTX is not what make ptx wrote (hand-edited, missing
// an arch). It needs no nvcc and no GPU, so it runs in the default tests.
func TestPTXFresh(t *testing.T) {
	src, srcs := ptxHash(t, ".", ".cu", ".cuh")
	if src != ptxSourceHash {
		t.Errorf("CUDA sources %v hash %s, but the PTX was generated from %s: run make ptx (needs make cuda-deps) and commit ptx/ and ptx_hash.go", srcs, src, ptxSourceHash)
	}
	ptx, files := ptxHash(t, "ptx", ".ptx")
	if ptx != ptxFilesHash {
		t.Errorf("ptx/ files %v hash %s (want %s as written by make ptx)", files, ptx, ptxFilesHash)
	}
	for _, s := range srcs {
		if !strings.HasSuffix(s, ".cu") {
			continue
		}
		for _, arch := range []string{"80", "90"} {
			want := strings.TrimSuffix(s, ".cu") + "_" + arch + ".ptx"
			if !slices.Contains(files, want) {
				t.Errorf("ptx/%s missing (want compute_%s PTX of %s)", want, arch, s)
			}
		}
	}
}
