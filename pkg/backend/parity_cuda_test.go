//go:build cuda

package backend

// TestModelParity runs each bundled model (models/*/model.onnx) on the
// CPU backend and on the CUDA backend with the same input and compares the
// outputs. Like every cuda-tagged test binary it exits at start where there
// is no driver or GPU (gorgonia.org/cu's init): build it with `make
// build-cuda` (bin/parity.test) and run it through scripts/gpu-check.sh.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// parityRelTol is the largest difference allowed between the CPU and CUDA
// outputs, relative to the largest magnitude of the CPU output: both run
// FP32 with different summation orders (blocked CPU GEMMs and Winograd vs
// the GPU's implicit GEMM), which on these ResNets differ by ~1e-6..1e-5
// of the output's scale; 1e-3 leaves room and still catches a wrong
// kernel (an indexing or epilogue error moves outputs by O(1) of scale).
const parityRelTol = 1e-3

// Batch sizes: the parity batch, and the batch and repetitions of the
// (informational) throughput measurement.
const (
	parityBatch = 4
	rateBatch   = 16
	rateRuns    = 20
)

// repoRoot walks up from the working directory (the package directory
// under `go test`, the repository root under scripts/gpu-check.sh, or
// anywhere else) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// modelsDir is $VIREO_MODELS_DIR, else models/ under the repository root.
func modelsDir() (string, error) {
	if d := os.Getenv("VIREO_MODELS_DIR"); d != "" {
		return d, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "models"), nil
}

func TestModelParity(t *testing.T) {
	dir, err := modelsDir()
	if err != nil {
		t.Skipf("models: %v (run from inside the repository or set VIREO_MODELS_DIR)", err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*", model.ONNXFile))
	if len(paths) == 0 {
		t.Skipf("no bundled models under %s (want %s/*/%s)", dir, dir, model.ONNXFile)
	}
	sort.Strings(paths)
	cpuB, err := Open(Config{Name: "cpu"})
	if err != nil {
		t.Fatalf("cpu backend: %v", err)
	}
	defer cpuB.Close()
	gpuB, err := Open(Config{Name: "cuda"})
	if err != nil {
		t.Fatalf("cuda backend: %v", err)
	}
	defer gpuB.Close()
	for _, p := range paths {
		mdir := filepath.Dir(p)
		t.Run(filepath.Base(mdir), func(t *testing.T) { modelParity(t, mdir, cpuB, gpuB) })
	}
}

// modelInput is a deterministic batch of n frames: seeded random 8-bit
// pixels normalised as the manifest says, (v/255 - mean[c]) / std[c].
func modelInput(m model.Manifest, n int, seed uint64) []float32 {
	in := m.Input
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	plane := in.Height * in.Width
	x := make([]float32, n*in.Channels*plane)
	for i := range x {
		c := (i / plane) % in.Channels
		mean, std := 0.0, 1.0
		if c < len(m.Normalization.Mean) {
			mean = m.Normalization.Mean[c]
		}
		if c < len(m.Normalization.Std) && m.Normalization.Std[c] != 0 {
			std = m.Normalization.Std[c]
		}
		x[i] = float32((float64(r.IntN(256))/255 - mean) / std)
	}
	return x
}

// run compiles g for the input shape on b, runs it once on x and returns
// the outputs on the host (and the compiled program and its input tensor,
// for the caller to close or reuse).
func run(b kernels.Backend, g *graph.Graph, input string, shape []int, x []float32) ([][]float32, *graph.Program, *kernels.Tensor, error) {
	prog, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{input: shape}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("compile on %s: %w", b.Name(), err)
	}
	in, err := b.Alloc(kernels.Shape(shape))
	if err != nil {
		prog.Close()
		return nil, nil, nil, err
	}
	if err := b.Upload(in, x); err != nil {
		prog.Close()
		b.Free(in)
		return nil, nil, nil, err
	}
	outs, err := prog.Run(in)
	if err != nil {
		prog.Close()
		b.Free(in)
		return nil, nil, nil, fmt.Errorf("run on %s: %w", b.Name(), err)
	}
	host := make([][]float32, len(outs))
	for i, o := range outs {
		host[i] = make([]float32, o.Numel())
		if err := b.Download(host[i], o); err != nil {
			prog.Close()
			b.Free(in)
			return nil, nil, nil, err
		}
	}
	return host, prog, in, nil
}

func modelParity(t *testing.T, dir string, cpuB, gpuB kernels.Backend) {
	m, onnxBytes, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		t.Fatal(err)
	}
	g := om.Graph
	var inputs []string
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; !isInit {
			inputs = append(inputs, in.Name)
		}
	}
	if len(inputs) != 1 {
		t.Fatalf("%s: %d graph inputs (want 1)", dir, len(inputs))
	}
	shape := []int{parityBatch, m.Input.Channels, m.Input.Height, m.Input.Width}
	x := modelInput(m, parityBatch, 1)

	want, cprog, cin, err := run(cpuB, g, inputs[0], shape, x)
	if err != nil {
		t.Fatal(err)
	}
	cprog.Close()
	cpuB.Free(cin)
	got, gprog, gin, err := run(gpuB, g, inputs[0], shape, x)
	if err != nil {
		t.Fatal(err)
	}
	gprog.Close()
	gpuB.Free(gin)

	for i := range want {
		name := g.Outputs[i].Name
		if len(got[i]) != len(want[i]) {
			t.Fatalf("output %q: %d values on cuda, %d on cpu", name, len(got[i]), len(want[i]))
		}
		var maxAbs, scale, maxRel float64
		worst := 0
		for j := range want[i] {
			w, gv := float64(want[i][j]), float64(got[i][j])
			d := math.Abs(gv - w)
			if math.IsNaN(gv) != math.IsNaN(w) || math.IsInf(gv, 0) != math.IsInf(w, 0) {
				d = math.Inf(1)
			}
			if d > maxAbs {
				maxAbs, worst = d, j
			}
			scale = max(scale, math.Abs(w))
			if r := d / max(math.Abs(w), 1e-6); r > maxRel {
				maxRel = r
			}
		}
		relToScale := maxAbs / max(scale, 1e-12)
		t.Logf("%s (%s, input %v) output %q %d values: max abs diff %.3g, max abs diff / max |cpu| (%.3g) = %.3g, max elementwise rel diff %.3g",
			m.Name, m.Arch, shape, name, len(want[i]), maxAbs, scale, relToScale, maxRel)
		if !(relToScale <= parityRelTol) {
			t.Errorf("%s output %q: max abs diff %.3g at element %d (cpu %v, cuda %v) is %.3g of the output's max magnitude %.3g (want <= %g)",
				m.Name, name, maxAbs, worst, want[i][worst], got[i][worst], relToScale, scale, parityRelTol)
		}
	}

	// Throughput on the GPU, for information: rateRuns batches of
	// rateBatch, timed from the first launch to the last output's
	// download (which waits for the kernels).
	rshape := []int{rateBatch, m.Input.Channels, m.Input.Height, m.Input.Width}
	_, rprog, rin, err := run(gpuB, g, inputs[0], rshape, modelInput(m, rateBatch, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer gpuB.Free(rin)
	defer rprog.Close()
	var outs []*kernels.Tensor
	start := time.Now()
	for range rateRuns {
		if outs, err = rprog.Run(rin); err != nil {
			t.Fatal(err)
		}
	}
	last := make([]float32, outs[0].Numel())
	if err := gpuB.Download(last, outs[0]); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("%s on cuda: %d batches of %d in %v: %.0f images/s (%.2f ms per batch)",
		m.Name, rateRuns, rateBatch, el.Round(time.Microsecond), float64(rateRuns*rateBatch)/el.Seconds(), el.Seconds()*1e3/rateRuns)
}
