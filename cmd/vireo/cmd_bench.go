package main

import (
	"context"
	"flag"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"vireo/pkg/arch"
	"vireo/pkg/backend"
	"vireo/pkg/kernels/bench"
)

func init() {
	register(command{"bench", "benchmarks: kernels, model (JSON lines with --json)", runBench})
}

// benchSubs are bench's subcommands; others (pipeline) register here too.
var benchSubs = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"kernels": benchKernels,
	"model":   benchModel,
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("bench: want a subcommand: %s", strings.Join(sortedKeys(benchSubs), ", "))
	}
	f, ok := benchSubs[args[0]]
	if !ok {
		return usagef("bench: unknown subcommand %q (have %s)", args[0], strings.Join(sortedKeys(benchSubs), ", "))
	}
	return f(ctx, args[1:], stdout, stderr)
}

// backendFlags adds --backend and --threads to fs.
func backendFlags(fs *flag.FlagSet) *backend.Config {
	var c backend.Config
	fs.StringVar(&c.Name, "backend", envOr("VIREO_BACKEND", "cpu"), "compute backend: "+strings.Join(backend.Names(), ", ")+" [VIREO_BACKEND]")
	fs.IntVar(&c.Threads, "threads", envInt("VIREO_THREADS", 0), "compute threads, 0 = all cores [VIREO_THREADS]")
	fs.StringVar(&c.Math, "math", envOr("VIREO_MATH", "fp32"), "operand precision of the matrix products and convolutions: fp32, or fp16/bf16 on the cuda backend's tensor cores (FP32 sums) [VIREO_MATH]")
	return &c
}

func benchKernels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench kernels", stderr)
	bc := backendFlags(fs)
	jsonOut := fs.Bool("json", false, "print one JSON object per case (the only format so far)")
	cases := fs.String("cases", "", "comma-separated substrings of case names to keep (all: "+strings.Join(bench.CaseNames(), ",")+")")
	reps := fs.Int("reps", 0, "timed repetitions per kernel, median reported (0: 7)")
	cpuClock := fs.Bool("cpu-clock", false, "time by process CPU time instead of wall time (for shared machines)")
	quick := fs.Bool("quick", false, "tiny shapes, to check the harness (numbers mean nothing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_ = jsonOut
	b, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer b.Close()
	var keep []string
	if *cases != "" {
		keep = strings.Split(*cases, ",")
	}
	return bench.Kernels(ctx, b, stdout, bench.Options{Cases: keep, Reps: *reps, CPUClock: *cpuClock, Quick: *quick})
}

func benchModel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench model", stderr)
	bc := backendFlags(fs)
	var o arch.BenchOptions
	fs.StringVar(&o.Arch, "arch", "resnet34-unet", "architecture, e.g. resnet18, resnet34-unet, resnet18@0.25")
	fs.StringVar(&o.Task, "task", "", "classify, multilabel, segment or regress (default: segment for a U-Net, classify otherwise)")
	fs.IntVar(&o.Size, "size", 224, "input height and width")
	fs.IntVar(&o.Batch, "batch", 8, "batch size")
	fs.IntVar(&o.Iters, "iters", 0, "timed runs (0: 20)")
	fs.BoolVar(&o.Quick, "quick", false, "few runs, to check the harness")
	fs.Bool("json", false, "print one JSON object (the only format so far)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer b.Close()
	return arch.BenchModel(ctx, b, stdout, o)
}

// startCPUProfile starts a CPU profile into path (none when path is empty);
// stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
