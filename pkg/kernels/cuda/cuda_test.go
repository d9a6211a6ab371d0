//go:build cuda

package cuda

// This test binary imports gorgonia.org/cu, whose package init exits the
// process (code 1, "Error in initialization") where there is no driver or
// GPU, before any test can skip. Build it with `make build-cuda`
// (bin/cuda.test) and run it through scripts/gpu-check.sh, which checks
// for /dev/nvidia0 and libcuda.so.1 first and records a skip otherwise.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/bench"
	"vireo/pkg/kernels/kernelstest"
)

func newTestBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("cuda backend: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Logf("device %+v", b.Info())
	return b
}

// TestConformance runs the whole kernel conformance suite; the families
// without a CUDA kernel fail with ErrUnsupported naming the op.
func TestConformance(t *testing.T) {
	kernelstest.Run(t, newTestBackend(t))
}

// tcPeakTFLOPS is the dense FP16/BF16 tensor-core rate of an H200 as
// measured on the device machines (an 8192^3 bf16 product through
// PyTorch/cuBLAS: 769-798 TFLOP/s; the datasheet says ~990), the ceiling
// the fp16/bf16 timings are reported against.
const tcPeakTFLOPS = 790

// TestDeviceSGEMM times the GEMM kernels on square and conv-like shapes in
// each math mode (fp32: gemm.cu's SGEMM on the CUDA cores; fp16 and bf16:
// tensorcore.cu's WMMA kernel) and writes one JSON line per mode and
// shape to $VIREO_CUDA_BENCH_DIR/sgemm.jsonl (skipped when that is unset;
// numbers are for the report, no assertion on speed). The tensor-core
// lines carry their fraction of tcPeakTFLOPS.
func TestDeviceSGEMM(t *testing.T) {
	dir := os.Getenv("VIREO_CUDA_BENCH_DIR")
	if dir == "" {
		t.Skip("VIREO_CUDA_BENCH_DIR unset: no SGEMM timing requested")
	}
	b := newTestBackend(t)
	f, err := os.Create(filepath.Join(dir, "sgemm.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, mode := range []string{kernels.MathFP32, kernels.MathFP16, kernels.MathBF16} {
		if err := b.SetMath(mode); err != nil {
			t.Fatal(err)
		}
		for _, s := range [][3]int{{1024, 1024, 1024}, {4096, 4096, 4096}, {64, 576, 3136}, {256, 2304, 196}, {512, 4608, 784}} {
			m, k, n := s[0], s[1], s[2]
			run, free, err := bench.Sgemm(b, m, k, n)
			if err != nil {
				t.Fatalf("%s gemm %v: %v", mode, s, err)
			}
			timed := func() error {
				if err := run(); err != nil {
					return err
				}
				return b.Sync()
			}
			ds, err := bench.Interleave(context.Background(), b, []func() error{timed}, 3, 10, false)
			free()
			if err != nil {
				t.Fatalf("%s gemm %v: %v", mode, s, err)
			}
			gflops := 2 * float64(m) * float64(k) * float64(n) / ds[0].Seconds() / 1e9
			rec := map[string]any{"math": mode, "m": m, "k": k, "n": n, "seconds": ds[0].Seconds(), "gflops": gflops, "device": b.Info().Name}
			if mode != kernels.MathFP32 {
				rec["pct_of_tc_peak"] = 100 * gflops / 1e3 / tcPeakTFLOPS
			}
			t.Logf("%s gemm m=%d k=%d n=%d: %v, %.1f TFLOP/s", mode, m, k, n, ds[0], gflops/1e3)
			if err := enc.Encode(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
}
