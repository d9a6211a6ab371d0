package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"vireo/pkg/kernels"
)

// ErrNoCase is returned when Options.Cases matches no case.
var ErrNoCase = errors.New("bench: no case matches the filter")

// Options select and size the run.
type Options struct {
	// Cases keeps the cases whose name contains any of these strings; empty
	// keeps all. See CaseNames.
	Cases []string
	// Reps is the number of timed repetitions per kernel (median reported);
	// 0 means 7 (3 in Quick mode).
	Reps int
	// Warmup runs per kernel, not timed; 0 means 1.
	Warmup int
	// CPUClock times by the process's CPU time (user+system, all
	// threads) instead of wall time. On a shared, oversubscribed machine
	// wall time mostly measures the other tenants; CPU time does not
	// (cache sharing aside), but it hides idle threads, so it measures
	// efficiency per core-second, not parallel speed-up.
	CPUClock bool
	// Quick shrinks every case to a tiny shape (batch 1, a few channels),
	// for tests of the harness itself: its numbers mean nothing.
	Quick bool
}

func (o *Options) setDefaults() {
	if o.Reps <= 0 {
		o.Reps = 7
		if o.Quick {
			o.Reps = 3
		}
	}
	if o.Warmup <= 0 {
		o.Warmup = 1
	}
}

// Result is one output line.
type Result struct {
	Case    string `json:"case"`
	Op      string `json:"op"`
	Shape   string `json:"shape"`
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	Reps    int    `json:"reps"`
	// Clock is "wall" or "cpu" (see Options.CPUClock).
	Clock string `json:"clock"`
	// MS and GFLOPS are the op's median time and rate.
	MS     float64 `json:"ms"`
	GFLOPS float64 `json:"gflops"`
	// GEMM is the equivalent GEMM shape(s), "MxKxN"; SgemmMS is the median
	// time of the backend's Gemm on them (summed when there are two) and
	// SgemmGFLOPS the rate for the op's FLOP count at that time.
	GEMM        string  `json:"gemm"`
	SgemmMS     float64 `json:"sgemm_ms"`
	SgemmGFLOPS float64 `json:"sgemm_gflops"`
	// Ratio is GFLOPS / SgemmGFLOPS (= SgemmMS / MS).
	Ratio float64 `json:"ratio"`
	// BLASCore is the OpenBLAS kernel set of a CPU backend (the rates
	// above depend on it: SkylakeX's SGEMM is about twice Haswell's).
	BLASCore string `json:"blas_core,omitempty"`
	// GBps, CopyGBps and MemRatio are set for memory-bound cases: bytes
	// the op must move (x, w, y once each) per second, the rate of a
	// backend Copy of as many bytes, and their ratio.
	GBps     float64 `json:"gbps,omitempty"`
	CopyGBps float64 `json:"copy_gbps,omitempty"`
	MemRatio float64 `json:"mem_ratio,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// convCase is a Conv2D case: x (n,c,h,w), w (m,c/group,k,k).
type convCase struct {
	name          string
	n, c, h, w, m int
	k             int
	p             kernels.ConvParams
	// what to time: "fwd", "bwd_data", "bwd_filter", "bwd" (data+filter).
	mode string
	note string
}

func allCases(quick bool) []convCase {
	pad1 := [4]int{1, 1, 1, 1}
	cs := []convCase{
		{name: "conv3x3_64x64_56_b8", n: 8, c: 64, h: 56, w: 56, m: 64, k: 3, p: kernels.ConvParams{Pads: pad1}, mode: "fwd"},
		{name: "conv3x3_128x128_28_b8", n: 8, c: 128, h: 28, w: 28, m: 128, k: 3, p: kernels.ConvParams{Pads: pad1}, mode: "fwd"},
		{name: "conv1x1_256x256_14_b8", n: 8, c: 256, h: 14, w: 14, m: 256, k: 1, mode: "fwd"},
		{name: "conv3x3s2_64x128_56_b8", n: 8, c: 64, h: 56, w: 56, m: 128, k: 3, p: kernels.ConvParams{Pads: pad1, Strides: [2]int{2, 2}}, mode: "fwd"},
		{name: "dwconv3x3_64_56_b8", n: 8, c: 64, h: 56, w: 56, m: 64, k: 3, p: kernels.ConvParams{Pads: pad1, Group: 64}, mode: "fwd",
			note: "depthwise is memory-bound (9 MACs per input value): read gbps/mem_ratio against a same-sized Copy; the sgemm figure is a (1x9)x(9xN*C*oH*oW) GEMM, the best an im2col+GEMM depthwise could do"},
		{name: "conv3x3_64x64_56_b8_bwd", n: 8, c: 64, h: 56, w: 56, m: 64, k: 3, p: kernels.ConvParams{Pads: pad1}, mode: "bwd",
			note: "dx and dw; sgemm is the sum of the two equivalent GEMMs, dcol = W^T*dY (K x M x N) and dW = dY*col^T (M x N x K)"},
		{name: "conv3x3_64x64_56_b8_bwd_data", n: 8, c: 64, h: 56, w: 56, m: 64, k: 3, p: kernels.ConvParams{Pads: pad1}, mode: "bwd_data"},
		{name: "conv3x3_64x64_56_b8_bwd_filter", n: 8, c: 64, h: 56, w: 56, m: 64, k: 3, p: kernels.ConvParams{Pads: pad1}, mode: "bwd_filter"},
	}
	if quick {
		for i := range cs {
			c := &cs[i]
			ch := 8
			c.n, c.h, c.w = 1, 10, 10
			if c.p.Group > 1 {
				c.p.Group = ch
			}
			c.c, c.m = ch, ch
		}
	}
	return cs
}

// CaseNames lists the cases Kernels knows, in run order.
func CaseNames() []string {
	var out []string
	for _, c := range allCases(false) {
		out = append(out, c.name)
	}
	return out
}

// gemmShape is an M x K x N product (a (M,K) times b (K,N)).
type gemmShape struct{ m, k, n int }

func (g gemmShape) String() string { return fmt.Sprintf("%dx%dx%d", g.m, g.k, g.n) }

// Kernels runs the selected cases on b and writes one JSON Result per line
// to w. It stops at ctx's cancellation with ctx.Err().
func Kernels(ctx context.Context, b kernels.Backend, w io.Writer, opt Options) error {
	opt.setDefaults()
	var cases []convCase
	for _, c := range allCases(opt.Quick) {
		if len(opt.Cases) == 0 || slices.ContainsFunc(opt.Cases, func(f string) bool { return strings.Contains(c.name, f) }) {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return fmt.Errorf("%w: %q (cases: %s)", ErrNoCase, opt.Cases, strings.Join(CaseNames(), ", "))
	}
	threads := 1
	if t, ok := b.(interface{ Threads() int }); ok {
		threads = t.Threads()
	}
	core := kernels.BLASCore(b)
	enc := json.NewEncoder(w)
	for _, c := range cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := runCase(ctx, b, c, opt)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", c.name, err)
		}
		res.Backend, res.Threads, res.Reps, res.Clock, res.BLASCore = b.Name(), threads, opt.Reps, "wall", core
		if opt.CPUClock {
			res.Clock = "cpu"
		}
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("bench: write: %w", err)
		}
	}
	return nil
}

// arena allocates random-filled tensors on a backend and frees them all.
type arena struct {
	b   kernels.Backend
	r   *rand.Rand
	all []*kernels.Tensor
}

func (a *arena) tensor(s ...int) (*kernels.Tensor, error) {
	t, err := a.b.Alloc(kernels.Shape(s))
	if err != nil {
		return nil, err
	}
	a.all = append(a.all, t)
	v := make([]float32, t.Numel())
	for i := range v {
		v[i] = a.r.Float32()*2 - 1
	}
	return t, a.b.Upload(t, v)
}

func (a *arena) free() {
	for _, t := range a.all {
		a.b.Free(t)
	}
}

func runCase(ctx context.Context, b kernels.Backend, c convCase, opt Options) (Result, error) {
	ar := &arena{b: b, r: rand.New(rand.NewPCG(1, 2))}
	defer ar.free()
	xs := kernels.Shape{c.n, c.c, c.h, c.w}
	g := max(c.p.Group, 1)
	ws := kernels.Shape{c.m, c.c / g, c.k, c.k}
	ys, err := kernels.Conv2DOutShape(xs, ws, c.p)
	if err != nil {
		return Result{}, err
	}
	x, err := ar.tensor(xs...)
	if err != nil {
		return Result{}, err
	}
	wt, err := ar.tensor(ws...)
	if err != nil {
		return Result{}, err
	}
	y, err := ar.tensor(ys...)
	if err != nil {
		return Result{}, err
	}
	gm, gk, gn := c.m/g, ws[1]*c.k*c.k, c.n*ys[2]*ys[3]
	flopsOne := 2 * float64(c.m) * float64(gk) * float64(gn) // one pass over all groups
	res := Result{Case: c.name, Shape: fmt.Sprintf("x%v w%v y%v %s", xs, ws, ys, paramString(c.p)), Note: c.note}
	var op func() error
	var gemms []gemmShape
	flops := flopsOne
	switch c.mode {
	case "fwd":
		res.Op = "conv2d"
		op = func() error { return b.Conv2D(y, x, wt, nil, c.p) }
		gemms = []gemmShape{{gm, gk, gn * g}}
		if g > 1 {
			// Depthwise: one row per channel; the equivalent GEMM folds
			// the channels into N.
			gemms = []gemmShape{{1, gk, gn * c.m}}
		}
	case "bwd", "bwd_data", "bwd_filter":
		if g != 1 {
			return Result{}, fmt.Errorf("%w: backward cases are ungrouped", kernels.ErrUnsupported)
		}
		dx, err := ar.tensor(xs...)
		if err != nil {
			return Result{}, err
		}
		dw, err := ar.tensor(ws...)
		if err != nil {
			return Result{}, err
		}
		var gx, gw *kernels.Tensor
		data, filter := gemmShape{gk, gm, gn}, gemmShape{gm, gn, gk}
		switch c.mode {
		case "bwd":
			res.Op, gx, gw = "conv2d_backward(dx,dw)", dx, dw
			gemms, flops = []gemmShape{data, filter}, 2*flopsOne
		case "bwd_data":
			res.Op, gx = "conv2d_backward(dx)", dx
			gemms = []gemmShape{data}
		default:
			res.Op, gw = "conv2d_backward(dw)", dw
			gemms = []gemmShape{filter}
		}
		op = func() error { return b.Conv2DBackward(gx, gw, nil, y, x, wt, c.p) }
	default:
		return Result{}, fmt.Errorf("%w: mode %q", kernels.ErrParam, c.mode)
	}

	// One runner per timed kernel: the op, each GEMM, and (depthwise) a Copy.
	runners := []func() error{op}
	var names []string
	for _, gs := range gemms {
		a, err := ar.tensor(gs.m, gs.k)
		if err != nil {
			return Result{}, err
		}
		bb, err := ar.tensor(gs.k, gs.n)
		if err != nil {
			return Result{}, err
		}
		cc, err := ar.tensor(gs.m, gs.n)
		if err != nil {
			return Result{}, err
		}
		runners = append(runners, func() error { return b.Gemm(cc, a, bb, kernels.GemmParams{Alpha: 1}) })
		names = append(names, gs.String())
	}
	res.GEMM = strings.Join(names, "+")
	memBound := g > 1
	bytes := 4 * float64(xs.Numel()+ws.Numel()+ys.Numel())
	if memBound {
		// Copy x into a y-sized buffer and back: as many bytes as the op.
		src, err := ar.tensor(xs.Numel())
		if err != nil {
			return Result{}, err
		}
		dst, err := ar.tensor(xs.Numel())
		if err != nil {
			return Result{}, err
		}
		runners = append(runners, func() error { return b.Copy(dst, src) })
	}
	times, err := interleave(ctx, b, runners, opt.Warmup, opt.Reps, opt.CPUClock)
	if err != nil {
		return Result{}, err
	}
	res.MS = ms(times[0])
	res.GFLOPS = flops / times[0].Seconds() / 1e9
	var sg time.Duration
	for i := range gemms {
		sg += times[1+i]
	}
	res.SgemmMS = ms(sg)
	res.SgemmGFLOPS = flops / sg.Seconds() / 1e9
	res.Ratio = res.GFLOPS / res.SgemmGFLOPS
	if memBound {
		res.GBps = bytes / times[0].Seconds() / 1e9
		// A copy reads and writes each byte: 2 * len bytes moved.
		res.CopyGBps = 2 * 4 * float64(xs.Numel()) / times[len(times)-1].Seconds() / 1e9
		res.MemRatio = res.GBps / res.CopyGBps
	}
	return res, nil
}

// interleave runs each runner warmup times, then reps rounds of all
// runners in turn (so drifting machine load hits them alike), and returns
// each runner's median time.
func interleave(ctx context.Context, b kernels.Backend, runners []func() error, warmup, reps int, cpuClock bool) ([]time.Duration, error) {
	base := time.Now()
	now := func() time.Duration { return time.Since(base) }
	if cpuClock {
		now = kernels.ProcessCPUTime
	}
	for range warmup {
		for _, r := range runners {
			if err := r(); err != nil {
				return nil, err
			}
		}
	}
	if err := b.Sync(); err != nil {
		return nil, err
	}
	samples := make([][]time.Duration, len(runners))
	for range reps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i, r := range runners {
			t0 := now()
			if err := r(); err != nil {
				return nil, err
			}
			if err := b.Sync(); err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], now()-t0)
		}
	}
	out := make([]time.Duration, len(runners))
	for i, s := range samples {
		slices.Sort(s)
		out[i] = s[len(s)/2]
	}
	return out, nil
}

// Median is the median of v (0 for none); v is left as it was.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func paramString(p kernels.ConvParams) string {
	p = p.WithDefaults()
	return fmt.Sprintf("stride=%v pads=%v dil=%v group=%d", p.Strides, p.Pads, p.Dilations, p.Group)
}
