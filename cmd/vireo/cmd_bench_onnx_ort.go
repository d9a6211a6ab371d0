//go:build ort

package main

import (
	"context"
	"fmt"
	"time"

	"vireo/pkg/kernels/bench"
	"vireo/pkg/ort"
)

// ortAvailable: this vireo links ONNX Runtime (tag ort), for benchmarks.
const ortAvailable = true

// benchVsORT times Vireo and ONNX Runtime on the same input, interleaved
// (one run of each per round, 2 warm-up rounds discarded), and records the
// medians and the largest differences of the outputs.
func benchVsORT(ctx context.Context, ob *onnxBench, res *onnxBenchResult) error {
	s, err := ort.NewSession(ob.raw, []string{ob.inName}, ob.outNames, ob.threads)
	if err != nil {
		return fmt.Errorf("bench onnx: %w", err)
	}
	defer s.Close()
	shape := make([]int64, len(ob.origShape))
	for i, d := range ob.origShape {
		shape[i] = int64(d)
	}
	in := []ort.Input{{Name: ob.inName, Shape: shape, Data: ob.origX}}
	var tv, to []float64
	var ours [][]float32
	var ref []ort.Output
	for i := 0; i < ob.reps+2; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, o, err := ob.runVireo()
		if err != nil {
			return err
		}
		t0 := time.Now()
		r, err := s.Run(in)
		do := time.Since(t0).Seconds() * 1000
		if err != nil {
			return fmt.Errorf("bench onnx: %w", err)
		}
		if i >= 2 {
			tv, to = append(tv, d), append(to, do)
		}
		ours, ref = o, r
	}
	refs := make([][]float32, len(ref))
	for i, r := range ref {
		refs[i] = r.Data
	}
	if res.MaxAbsDiff, res.MaxRelDiff, err = diffs(ours, refs); err != nil {
		return err
	}
	res.VireoMS, res.ORTMS = bench.Median(tv), bench.Median(to)
	if res.VireoMS > 0 {
		res.Ratio = res.ORTMS / res.VireoMS
	}
	return nil
}
