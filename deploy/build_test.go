package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"vireo/pkg/kernels/cpu"
)

// builds holds the binaries the tests build (go build, once per package
// per test run) in buildDir, which TestMain removes.
var (
	buildDir string
	buildMu  sync.Mutex
	builds   = map[string]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// goBuild builds pkg (a path or module package) into a binary named name,
// once per test run, and returns its path; it skips the test when no go
// toolchain is on PATH.
func goBuild(t *testing.T, name, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain on PATH to build %s: %v", name, err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "vireo-deploy-test-"); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(buildDir, name)
	start := time.Now()
	if out, err := exec.Command(goBin, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("go build %s: %v", pkg, time.Since(start).Round(time.Millisecond))
	builds[pkg] = bin
	return bin
}

// TestVireoBLASCore runs `vireo version` without OPENBLAS_CORETYPE: the
// process must end up on OpenBLAS's own choice of kernels or, where that
// is the generic Prescott set on a CPU with AVX2 or AVX-512, restarted
// with the better one (cmd/vireo/blas.go); never on Prescott then.
func TestVireoBLASCore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vireo")
	}
	vireo := goBuild(t, "vireo", "../cmd/vireo")
	cmd := exec.Command(vireo, "version")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vireo version: %v\n%s", err, out)
	}
	var core, env string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "openblas core "); ok {
			core, env, _ = strings.Cut(rest, " ")
		}
	}
	t.Logf("vireo version: %q", out)
	if core == "" {
		t.Fatalf("vireo version printed no openblas core line:\n%s", out)
	}
	better := cpu.BLASCoreFor("Prescott") // what Prescott would be replaced by here
	switch env {
	case `(OPENBLAS_CORETYPE="")`: // OpenBLAS's own choice
		if core == "Prescott" && better != "" {
			t.Errorf("vireo runs OpenBLAS's generic Prescott kernels on a CPU that runs %s", better)
		}
	case `(OPENBLAS_CORETYPE="` + better + `")`: // restarted
		if core != better || better == "" {
			t.Errorf("vireo restarted with OPENBLAS_CORETYPE=%s but runs %s", better, core)
		}
	default:
		t.Errorf("vireo version: OPENBLAS_CORETYPE %s, want none or %q", env, better)
	}
}
