package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/bench"
)

// BenchOptions size `vireo bench train`.
type BenchOptions struct {
	// Arch, Task, Size, Batch: the model and batch timed (resnet18,
	// classify, 64, 32).
	Arch, Task  string
	Size, Batch int
	// Classes (10) or Points (1) of the head; SmallStem for small inputs.
	Classes, Points int
	SmallStem       bool
	Channels        int
	Optimizer       Optim
	// Freeze times steps with the body frozen (fastai's freeze: the head
	// trains, the body's BatchNorm too), which skips the body's weight
	// gradients; GFLOPS still counts a full step, so compare images/s.
	Freeze bool
	// Warmup (1) and Reps (5): untimed and timed rounds; each round runs
	// one training step and one SGEMM, interleaved.
	Warmup, Reps int
	// M, K, N of the SGEMM reference (1024^3).
	M, K, N int
	// CPUClock times by process CPU time (see kernels/bench).
	CPUClock bool
	// Profile, when > 0, also runs that many more steps (after one
	// untimed) with every kernel timed, forward and backward, and reports
	// each node's median in BenchResult.Ops.
	Profile int
	Seed    uint64
}

func (o *BenchOptions) setDefaults() {
	if o.Arch == "" {
		o.Arch = "resnet18"
	}
	if o.Task == "" {
		o.Task = arch.TaskClassify
		if s, err := arch.ParseArch(o.Arch); err == nil && s.UNet {
			o.Task = arch.TaskSegment
		}
	}
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Batch == 0 {
		o.Batch = 32
	}
	if o.Classes == 0 {
		o.Classes = 10
	}
	if o.Points == 0 {
		o.Points = 1
	}
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.Optimizer == "" {
		o.Optimizer = AdamW
	}
	if o.Warmup == 0 {
		o.Warmup = 1
	}
	if o.Reps == 0 {
		o.Reps = 5
	}
	if o.M == 0 {
		o.M, o.K, o.N = 1024, 1024, 1024
	}
}

// BenchResult is `vireo bench train --json`'s object.
type BenchResult struct {
	Arch      string `json:"arch"`
	Task      string `json:"task"`
	Size      int    `json:"size"`
	Batch     int    `json:"batch"`
	Optimizer Optim  `json:"optimizer"`
	Frozen    bool   `json:"frozen,omitempty"`
	Backend   string `json:"backend"`
	Threads   int    `json:"threads"`
	Reps      int    `json:"reps"`
	Clock     string `json:"clock"`
	// StepMS is the median time of one training step (upload, forward,
	// loss, backward, optimiser update); ImagesPerS = Batch/StepMS.
	StepMS     float64 `json:"step_ms"`
	ImagesPerS float64 `json:"images_per_s"`
	// GFLOPPerImage counts a training step as 3x the forward conv and
	// matmul FLOPs (forward, data gradient, weight gradient); GFLOPS is
	// the step's rate by that count.
	GFLOPPerImage float64 `json:"gflop_per_image"`
	GFLOPS        float64 `json:"gflops"`
	// Sgemm is the reference GEMM's shape "MxKxN", its median time and
	// rate, measured interleaved with the steps; Ratio = GFLOPS/SgemmGFLOPS.
	Sgemm       string  `json:"sgemm"`
	SgemmMS     float64 `json:"sgemm_ms"`
	SgemmGFLOPS float64 `json:"sgemm_gflops"`
	Ratio       float64 `json:"ratio"`
	// BLASCore is the OpenBLAS kernel set of a CPU backend: the SGEMM
	// rate, and so Ratio, depend on it (SkylakeX's is about twice
	// Haswell's on an AVX-512 machine).
	BLASCore string `json:"blas_core,omitempty"`
	// Ops is the profile (BenchOptions.Profile): every node's forward,
	// then every backward, in execution order.
	Ops []OpTime `json:"ops,omitempty"`
}

// OpTime is one node's forward or backward in a profiled training step:
// medians over the profiled steps.
type OpTime struct {
	Node     string `json:"node"`
	Op       string `json:"op"`
	Shape    []int  `json:"shape,omitempty"`
	Backward bool   `json:"backward,omitempty"`
	// MS is the wall time; Cores the CPU time over it (how many cores the
	// kernel kept busy).
	MS    float64 `json:"ms"`
	Cores float64 `json:"cores"`
	// FLOPs counts a conv's or matmul's forward as arch.FLOPs does, its
	// backward as twice that when it computes the data gradient too (else
	// once: the weight gradient); 0 for other ops. GFLOPS = FLOPs/MS.
	FLOPs  int64   `json:"flops,omitempty"`
	GFLOPS float64 `json:"gflops,omitempty"`
}

// stepProfile receives a profiled step's kernel times.
type stepProfile struct {
	fwd, bwd []graph.StepTime
}

// profile runs reps profiled steps after one untimed one and returns each
// kernel's medians, with FLOPs from nodeFlops.
func (l *Learner) profile(ctx context.Context, reps int, step func() error, nodeFlops map[string]int64) ([]OpTime, error) {
	l.prof = &stepProfile{}
	defer func() { l.prof = nil }()
	var runs [][]graph.StepTime
	for i := 0; i <= reps; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
		if i > 0 {
			runs = append(runs, append(append([]graph.StepTime{}, l.prof.fwd...), l.prof.bwd...))
		}
	}
	ops := make([]OpTime, len(runs[0]))
	for k := range ops {
		wall, cpu := make([]float64, len(runs)), make([]float64, len(runs))
		for r := range runs {
			wall[r], cpu[r] = float64(runs[r][k].Time), float64(runs[r][k].CPU)
		}
		s := runs[0][k]
		o := OpTime{Node: s.Node, Op: s.Op, Shape: s.Shape, Backward: s.Backward, MS: bench.Median(wall) / 1e6}
		if o.MS > 0 {
			o.Cores = bench.Median(cpu) / 1e6 / o.MS
		}
		if f := nodeFlops[s.Node]; f > 0 {
			o.FLOPs = f
			if s.Backward && s.InputGrad {
				o.FLOPs = 2 * f
			}
			if o.MS > 0 {
				o.GFLOPS = float64(o.FLOPs) / (o.MS * 1e6)
			}
		}
		ops[k] = o
	}
	return ops, nil
}

// Bench times training steps of a model on b against an SGEMM measured in
// the same run (interleaved, warm-up discarded, medians).
func Bench(ctx context.Context, b kernels.Backend, opt BenchOptions) (*BenchResult, error) {
	opt.setDefaults()
	if opt.Size < 1 || opt.Batch < 1 || opt.Reps < 1 {
		return nil, fmt.Errorf("%w: bench size/batch/reps (got %d/%d/%d, want >= 1)", ErrConfig, opt.Size, opt.Batch, opt.Reps)
	}
	m, err := arch.Build(opt.Arch, opt.Task, arch.Config{Classes: opt.Classes, Points: opt.Points, SmallStem: opt.SmallStem,
		InChannels: opt.Channels, Seed: opt.Seed})
	if err != nil {
		return nil, err
	}
	meta := data.Meta{Task: data.Task(m.Task), VoidClass: -1, Points: opt.Points}
	for i := 0; i < opt.Classes; i++ {
		meta.Classes = append(meta.Classes, fmt.Sprint(i))
	}
	l, err := New(b, m, Config{Meta: meta, BatchSize: opt.Batch, Size: opt.Size, Channels: opt.Channels, Optimizer: opt.Optimizer, Seed: opt.Seed})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if opt.Freeze {
		l.Freeze()
	}
	flops, err := arch.FLOPs(m.Graph, map[string][]int{m.Graph.Inputs[0].Name: {opt.Batch, opt.Channels, opt.Size, opt.Size}})
	if err != nil {
		return nil, err
	}
	bt := syntheticBatch(meta, opt.Batch, opt.Channels, opt.Size, opt.Classes, opt.Points, opt.Seed)
	lrs := Const(1e-5).For(l.Groups())
	step := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := l.step(bt, lrs, 0.9)
		return err
	}
	sg, free, err := bench.Sgemm(b, opt.M, opt.K, opt.N)
	if err != nil {
		return nil, err
	}
	defer free()
	times, err := bench.Interleave(ctx, b, []func() error{step, sg}, opt.Warmup, opt.Reps, opt.CPUClock)
	if err != nil {
		return nil, err
	}
	res := &BenchResult{Arch: m.Arch, Task: m.Task, Size: opt.Size, Batch: opt.Batch, Optimizer: opt.Optimizer, Frozen: opt.Freeze,
		Backend: b.Name(), Threads: 1, Reps: opt.Reps, Clock: "wall", Sgemm: fmt.Sprintf("%dx%dx%d", opt.M, opt.K, opt.N),
		BLASCore: kernels.BLASCore(b)}
	if t, ok := b.(interface{ Threads() int }); ok {
		res.Threads = t.Threads()
	}
	if opt.CPUClock {
		res.Clock = "cpu"
	}
	stepS, sgS := times[0].Seconds(), times[1].Seconds()
	trainFlops := 3 * float64(flops)
	res.StepMS = stepS * 1e3
	res.ImagesPerS = float64(opt.Batch) / stepS
	res.GFLOPPerImage = trainFlops / float64(opt.Batch) / 1e9
	res.GFLOPS = trainFlops / stepS / 1e9
	res.SgemmMS = sgS * 1e3
	res.SgemmGFLOPS = 2 * float64(opt.M) * float64(opt.K) * float64(opt.N) / sgS / 1e9
	res.Ratio = res.GFLOPS / res.SgemmGFLOPS
	if opt.Profile > 0 {
		per, err := arch.NodeFLOPs(m.Graph, map[string][]int{m.Graph.Inputs[0].Name: {opt.Batch, opt.Channels, opt.Size, opt.Size}})
		if err != nil {
			return nil, err
		}
		if res.Ops, err = l.profile(ctx, opt.Profile, step, per); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// syntheticBatch is a random batch with valid targets for the task.
func syntheticBatch(meta data.Meta, n, c, s, classes, points int, seed uint64) *data.Batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	bt := &data.Batch{N: n, C: c, Size: s, X: make([]float32, n*c*s*s), Index: make([]int, n)}
	for i := range bt.X {
		bt.X[i] = float32(rng.NormFloat64())
	}
	switch meta.Task {
	case data.Classify:
		bt.Y, bt.YShape = make([]float32, n), []int{n}
		for i := range bt.Y {
			bt.Y[i] = float32(rng.IntN(classes))
		}
	case data.MultiLabel:
		bt.Y, bt.YShape = make([]float32, n*classes), []int{n, classes}
		for i := range bt.Y {
			bt.Y[i] = float32(rng.IntN(2))
		}
	case data.Segment:
		bt.Y, bt.YShape = make([]float32, n*s*s), []int{n, s, s}
		for i := range bt.Y {
			bt.Y[i] = float32(rng.IntN(classes))
		}
	case data.Regress:
		bt.Y, bt.YShape = make([]float32, n*2*points), []int{n, 2 * points}
		for i := range bt.Y {
			bt.Y[i] = float32(2*rng.Float64() - 1)
		}
	}
	return bt
}
