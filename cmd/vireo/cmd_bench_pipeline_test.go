package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchPipelineQuick runs `vireo bench pipeline --quick --json` and
// checks the harness: one JSON object, every rate and latency measured,
// and exactly one result per sampled frame of the 4 sources.
func TestBenchPipelineQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline on vtest.avi 4 times over (~10-20 s)")
	}
	if _, err := os.Stat(filepath.Join(opencvData, "vtest.avi")); err != nil {
		t.Skipf("opencv-doc not installed (%v): run make deps", err)
	}
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"bench", "pipeline", "--quick", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("bench pipeline: %v\n%s", err, errOut.String())
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	// --quick samples every 40th of vtest.avi's 795 frames: 20 per source.
	if got := rep["pipeline_frames"]; got != float64(4*20) {
		t.Errorf("pipeline_frames %v, want %d", got, 4*20)
	}
	for _, k := range []string{"pipeline_fps", "engine_fps", "pipeline_vs_engine", "pipeline_fps_batch1", "engine_fps_batch1",
		"batch_gain", "p50_ms", "p99_ms", "p50_ms_at_50", "p99_ms_at_50", "p50_ms_at_90", "p99_ms_at_90",
		"decode_fps", "gocv_fps", "decode_vs_gocv", "pipeline_mean_batch", "pipeline_vs_engine_per_cpu"} {
		v, ok := rep[k].(float64)
		if !ok || !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	if rep["p99_ms_at_50"].(float64) < rep["p50_ms_at_50"].(float64) {
		t.Errorf("p99 %v below p50 %v", rep["p99_ms_at_50"], rep["p50_ms_at_50"])
	}
	// One progress line per measurement on stderr, in the order run.
	last := -1
	for _, want := range []string{"decode round 1/1:", "engine alone:", "pipeline at max batch 16: 80 frames", "latency at 50%", "latency at 90%",
		"engine alone again:", "pipeline at max batch 1: 40 frames"} {
		i := strings.Index(errOut.String(), "bench pipeline: "+want)
		if i <= last {
			t.Errorf("stderr lacks %q after the previous line:\n%s", want, errOut.String())
		}
		last = i
	}
}

func TestBenchPipelineFlags(t *testing.T) {
	var out, errOut syncBuffer
	for _, args := range [][]string{
		{"bench", "pipeline", "--sources", "0"},
		{"bench", "pipeline", "--max-batch", "1"},
		{"bench", "pipeline", "--phases", "pipeline,nope"},
		{"bench", "pipeline", "--phases", "latency"}, // latency needs the pipeline's rate
		{"bench", "pipeline", "--video", filepath.Join(t.TempDir(), "missing.avi")},
	} {
		err := run(context.Background(), args, &out, &errOut)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
