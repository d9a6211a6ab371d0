//go:build !cuda

package backend

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDefaultBuildHasNoCUDA: the default build of the binary and of this
// package must not link gorgonia.org/cu, whose init exits the process on
// a machine without a GPU.
func TestDefaultBuildHasNoCUDA(t *testing.T) {
	for _, n := range Names() {
		if n == "cuda" {
			t.Fatalf("backends %v include cuda without the cuda build tag", Names())
		}
	}
	if testing.Short() {
		t.Skip("go list -deps of cmd/vireo skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH to list the binary's dependencies")
	}
	out, err := exec.Command(goBin, "list", "-deps", "vireo/cmd/vireo", "vireo/pkg/backend").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "gorgonia.org/cu") {
			t.Fatalf("the default build of cmd/vireo imports %s (want no gorgonia.org/cu without -tags cuda)", p)
		}
	}
}
