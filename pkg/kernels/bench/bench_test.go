package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"vireo/pkg/kernels/bench"
	"vireo/pkg/kernels/cpu"
)

func TestKernelsQuick(t *testing.T) {
	c, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if err := bench.Kernels(context.Background(), c, &buf, bench.Options{Quick: true, Reps: 2}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	seen := map[string]bool{}
	for sc.Scan() {
		// Decode into a plain map too, so the JSON names (not only the Go
		// struct) are checked.
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"case", "op", "shape", "gflops", "sgemm_gflops", "ms", "ratio", "threads", "backend", "gemm", "blas_core"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %q: no field %q", sc.Text(), k)
			}
		}
		var r bench.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.GFLOPS <= 0 || r.SgemmGFLOPS <= 0 || r.MS <= 0 || r.Ratio <= 0 {
			t.Errorf("%s: non-positive rates %+v", r.Case, r)
		}
		if r.Backend != "cpu" || r.Threads != 2 {
			t.Errorf("%s: backend %q threads %d (want cpu, 2)", r.Case, r.Backend, r.Threads)
		}
		if r.Case == "dwconv3x3_64_56_b8" && (r.GBps <= 0 || r.CopyGBps <= 0 || r.Note == "") {
			t.Errorf("depthwise: want gbps, copy_gbps and a note, got %+v", r)
		}
		seen[r.Case] = true
	}
	for _, name := range bench.CaseNames() {
		if !seen[name] {
			t.Errorf("case %s missing from the output", name)
		}
	}
}

func TestKernelsFilter(t *testing.T) {
	c, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if err := bench.Kernels(context.Background(), c, &buf, bench.Options{Quick: true, Reps: 1, Cases: []string{"conv1x1"}}); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
		t.Fatalf("filter conv1x1: %d lines (want 1): %s", n, buf.String())
	}
	err = bench.Kernels(context.Background(), c, &buf, bench.Options{Quick: true, Cases: []string{"nope"}})
	if !errors.Is(err, bench.ErrNoCase) {
		t.Fatalf("unknown case: got %v (want ErrNoCase)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := bench.Kernels(ctx, c, &buf, bench.Options{Quick: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v (want context.Canceled)", err)
	}
}
