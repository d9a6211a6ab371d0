package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
)

// profileONNX runs the Vireo program reps times with every kernel timed
// (graph.Program.RunProfiled) and writes, to w, the median time of each
// op type summed over its nodes and the slowest nodes: where the time
// goes, for `vireo bench onnx --profile`.
func profileONNX(ob *onnxBench, reps, top int, w io.Writer) error {
	var runs [][]graph.StepTime
	for i := 0; i < reps+1; i++ {
		_, st, err := ob.prog.RunProfiled(kernels.FromSlice(ob.x, ob.shape...))
		if err != nil {
			return fmt.Errorf("bench onnx: profile: %w", err)
		}
		if i > 0 { // warm-up discarded
			runs = append(runs, st)
		}
	}
	if len(runs) == 0 || len(runs[0]) == 0 {
		return nil
	}
	// Median per step over the runs.
	steps := make([]graph.StepTime, len(runs[0]))
	for k := range steps {
		ts := make([]float64, len(runs))
		for r := range runs {
			ts[r] = float64(runs[r][k].Time)
		}
		steps[k] = runs[0][k]
		steps[k].Time = time.Duration(median(ts))
	}
	type agg struct {
		op    string
		n     int
		total time.Duration
	}
	byOp := map[string]*agg{}
	var total time.Duration
	for _, s := range steps {
		a := byOp[s.Op]
		if a == nil {
			a = &agg{op: s.Op}
			byOp[s.Op] = a
		}
		a.n++
		a.total += s.Time
		total += s.Time
	}
	ops := make([]*agg, 0, len(byOp))
	for _, a := range byOp {
		ops = append(ops, a)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].total > ops[j].total })
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "op\tnodes\tms\t%%\n")
	for _, a := range ops {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.1f\n", a.op, a.n, ms(a.total), 100*float64(a.total)/float64(max(total, 1)))
	}
	fmt.Fprintf(tw, "total\t%d\t%.3f\t\n\n", len(steps), ms(total))
	idx := make([]int, len(steps))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return steps[idx[i]].Time > steps[idx[j]].Time })
	fmt.Fprintf(tw, "step\tnode\top\tshape\tms\n")
	for _, i := range idx[:min(top, len(idx))] {
		s := steps[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.3f\n", i, s.Node, s.Op, shapeString(s.Shape), ms(s.Time))
	}
	return tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}
