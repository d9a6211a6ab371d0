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
	"vireo/pkg/kernels/bench"
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
	rows := make([]profRow, len(runs[0]))
	for k := range rows {
		wall, cpu := make([]float64, len(runs)), make([]float64, len(runs))
		for r := range runs {
			wall[r], cpu[r] = float64(runs[r][k].Time), float64(runs[r][k].CPU)
		}
		s := runs[0][k]
		rows[k] = profRow{node: s.Node, op: s.Op, shape: s.Shape, wall: time.Duration(bench.Median(wall)), cpu: time.Duration(bench.Median(cpu))}
	}
	return writeProfile(w, rows, top)
}

// profRow is one kernel of a profile: a node's forward or backward, its
// median wall and CPU time, and its FLOPs (0: not counted).
type profRow struct {
	node, op  string
	shape     []int
	backward  bool
	wall, cpu time.Duration
	flops     int64
}

// writeProfile writes a profile's table: time per op type (and direction)
// summed over its nodes, with the cores kept busy and, for convolutions
// and matrix products, GFLOP/s; then the top slowest kernels.
func writeProfile(w io.Writer, rows []profRow, top int) error {
	type agg struct {
		op         string
		n          int
		wall, cpu  time.Duration
		flops      int64
		flopsTimed time.Duration
	}
	key := func(r profRow) string {
		if r.backward {
			return r.op + " (backward)"
		}
		return r.op
	}
	byOp := map[string]*agg{}
	var total, totalCPU time.Duration
	for _, r := range rows {
		k := key(r)
		a := byOp[k]
		if a == nil {
			a = &agg{op: k}
			byOp[k] = a
		}
		a.n++
		a.wall += r.wall
		a.cpu += r.cpu
		if r.flops > 0 {
			a.flops += r.flops
			a.flopsTimed += r.wall
		}
		total += r.wall
		totalCPU += r.cpu
	}
	ops := make([]*agg, 0, len(byOp))
	for _, a := range byOp {
		ops = append(ops, a)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].wall > ops[j].wall })
	cores := func(cpu, wall time.Duration) string {
		if wall <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", float64(cpu)/float64(wall))
	}
	rate := func(flops int64, wall time.Duration) string {
		if flops == 0 || wall <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(flops)/float64(wall)) // FLOP/ns = GFLOP/s
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "op\tnodes\tms\t%%\tcores\tGFLOP/s\n")
	for _, a := range ops {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.1f\t%s\t%s\n", a.op, a.n, ms(a.wall), 100*float64(a.wall)/float64(max(total, 1)), cores(a.cpu, a.wall), rate(a.flops, a.flopsTimed))
	}
	fmt.Fprintf(tw, "total\t%d\t%.3f\t\t%s\t\n\n", len(rows), ms(total), cores(totalCPU, total))
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return rows[idx[i]].wall > rows[idx[j]].wall })
	fmt.Fprintf(tw, "step\tnode\top\tshape\tms\tcores\tGFLOP/s\n")
	for _, i := range idx[:min(top, len(idx))] {
		r := rows[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.3f\t%s\t%s\n", i, r.node, key(r), shapeString(r.shape), ms(r.wall), cores(r.cpu, r.wall), rate(r.flops, r.wall))
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
