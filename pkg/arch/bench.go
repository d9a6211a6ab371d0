package arch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
)

// BenchOptions configure BenchModel (`vireo bench model`).
type BenchOptions struct {
	// Arch is an architecture name for Build, e.g. "resnet34-unet".
	Arch string
	// Task is the task for Build ("" picks segment for a U-Net, classify
	// otherwise).
	Task string
	// Size is the input's H and W (0 means 224; a U-Net needs a multiple
	// of the encoder's stride).
	Size int
	// Batch is N (0 means 8).
	Batch int
	// Classes (0 means 10) and Points (0 means 1) size the output.
	Classes, Points int
	// SmallStem builds the small-input stem (see Config.SmallStem).
	SmallStem bool
	// Warmup runs are discarded (0 means 3; 1 in Quick mode).
	Warmup int
	// Iters timed runs (0 means 20; 3 in Quick mode).
	Iters int
	// Quick lowers the default Warmup and Iters for smoke tests.
	Quick bool
	// Seed seeds the weights and the input.
	Seed uint64
}

func (o *BenchOptions) setDefaults() {
	if o.Size == 0 {
		o.Size = 224
	}
	if o.Batch == 0 {
		o.Batch = 8
	}
	if o.Classes == 0 {
		o.Classes = 10
	}
	if o.Points == 0 {
		o.Points = 1
	}
	if o.Warmup == 0 {
		o.Warmup = 3
		if o.Quick {
			o.Warmup = 1
		}
	}
	if o.Iters == 0 {
		o.Iters = 20
		if o.Quick {
			o.Iters = 3
		}
	}
}

// Validate checks the options after defaults.
func (o BenchOptions) Validate() error {
	switch {
	case o.Size < 1:
		return fmt.Errorf("%w: bench Size=%d (want > 0)", ErrConfig, o.Size)
	case o.Batch < 1:
		return fmt.Errorf("%w: bench Batch=%d (want > 0)", ErrConfig, o.Batch)
	case o.Warmup < 0 || o.Iters < 1:
		return fmt.Errorf("%w: bench Warmup=%d Iters=%d (want >= 0 and >= 1)", ErrConfig, o.Warmup, o.Iters)
	}
	return nil
}

// BenchResult is the JSON object BenchModel prints.
type BenchResult struct {
	Arch    string `json:"arch"`
	Task    string `json:"task"`
	Size    int    `json:"size"`
	Batch   int    `json:"batch"`
	Backend string `json:"backend"`
	// Threads is the backend's thread count (0 when it does not say).
	Threads    int     `json:"threads"`
	Iters      int     `json:"iters"`
	Params     int     `json:"params"`
	ImagesPerS float64 `json:"images_per_s"`
	LatencyMS  struct {
		P50  float64 `json:"p50"`
		P90  float64 `json:"p90"`
		Mean float64 `json:"mean"`
	} `json:"latency_ms"` // per batch (one Run)
	// GFLOPPerImage is the model's cost from FLOPs (conv and matmul
	// multiply-adds times 2) per image.
	GFLOPPerImage float64 `json:"gflop_per_image"`
	// GFLOPS is the achieved rate at the median latency, GFLOP/s.
	GFLOPS float64 `json:"gflops"`
	// PeakBytes is the most bytes the program held allocated on the
	// backend at once (weights, activations, scratch).
	PeakBytes int64 `json:"peak_bytes"`
	// ActivationBytes is the planned memory for intermediate values (after
	// buffer reuse), NaiveActivationBytes one buffer per value, from the
	// Program's stats; Steps the kernels per Run, Folded the nodes
	// evaluated at compile time (constants; Conv+BN folding shows as fewer
	// Steps).
	ActivationBytes      int64 `json:"activation_bytes"`
	NaiveActivationBytes int64 `json:"naive_activation_bytes"`
	Steps                int   `json:"steps"`
	Folded               int   `json:"folded"`
	// HeapGrowthBytes is the Go heap's growth (runtime.MemStats.HeapAlloc)
	// from before Compile to after the timed runs; on the CPU backend the
	// tensors live in the Go heap and are part of it.
	HeapGrowthBytes int64 `json:"heap_growth_bytes"`
	// AllocBytesPerRun is the Go heap allocated per timed Run
	// (runtime.MemStats.TotalAlloc), ideally near 0.
	AllocBytesPerRun int64 `json:"alloc_bytes_per_run"`
}

// BenchModel builds opt.Arch, compiles it for inference on b, runs Warmup
// discarded and Iters timed runs on a random batch, and writes one JSON
// object (BenchResult) to w. It checks ctx between runs.
func BenchModel(ctx context.Context, b kernels.Backend, w io.Writer, opt BenchOptions) error {
	res, err := Bench(ctx, b, opt)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(res)
}

// Bench is BenchModel without the JSON.
func Bench(ctx context.Context, b kernels.Backend, opt BenchOptions) (*BenchResult, error) {
	opt.setDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	m, err := Build(opt.Arch, opt.Task, Config{Classes: opt.Classes, Points: opt.Points, SmallStem: opt.SmallStem, Seed: opt.Seed})
	if err != nil {
		return nil, err
	}
	inShape := []int{opt.Batch, 3, opt.Size, opt.Size}
	if m.Task == TaskSegment && (opt.Size%m.Stride != 0) {
		return nil, fmt.Errorf("%w: bench Size=%d for %s (want a multiple of %d)", ErrConfig, opt.Size, m.Arch, m.Stride)
	}
	flops, err := FLOPs(m.Graph, map[string][]int{inputName: inShape})
	if err != nil {
		return nil, err
	}

	var ms0, ms1, ms2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)

	cb := &countingBackend{Backend: b, sizes: map[*kernels.Tensor]int64{}}
	prog, err := graph.Compile(m.Graph, cb, graph.Options{InputShapes: map[string][]int{inputName: inShape}})
	if err != nil {
		return nil, fmt.Errorf("arch: bench %s: %w", m.Arch, err)
	}
	defer prog.Close()

	x, err := b.Alloc(kernels.Shape(inShape))
	if err != nil {
		return nil, err
	}
	defer b.Free(x)
	rng := rand.New(rand.NewPCG(opt.Seed, 1))
	host := make([]float32, x.Numel())
	for i := range host {
		host[i] = float32(rng.NormFloat64())
	}
	if err := b.Upload(x, host); err != nil {
		return nil, err
	}
	run := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := prog.Run(x); err != nil {
			return fmt.Errorf("arch: bench %s: %w", m.Arch, err)
		}
		return b.Sync()
	}
	for i := 0; i < opt.Warmup; i++ {
		if err := run(); err != nil {
			return nil, err
		}
	}
	runtime.ReadMemStats(&ms1)
	lat := make([]float64, opt.Iters)
	var total time.Duration
	for i := range lat {
		t0 := time.Now()
		if err := run(); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		total += d
		lat[i] = float64(d) / float64(time.Millisecond)
	}
	runtime.ReadMemStats(&ms2)

	res := &BenchResult{
		Arch: m.Arch, Task: m.Task, Size: opt.Size, Batch: opt.Batch,
		Backend: b.Name(), Iters: opt.Iters, Params: m.NumParams(),
	}
	if t, ok := b.(interface{ Threads() int }); ok {
		res.Threads = t.Threads()
	}
	slices.Sort(lat)
	res.LatencyMS.P50 = quantile(lat, 0.5)
	res.LatencyMS.P90 = quantile(lat, 0.9)
	res.LatencyMS.Mean = float64(total) / float64(time.Millisecond) / float64(opt.Iters)
	res.ImagesPerS = float64(opt.Batch*opt.Iters) / total.Seconds()
	res.GFLOPPerImage = float64(flops) / float64(opt.Batch) / 1e9
	if res.LatencyMS.P50 > 0 {
		res.GFLOPS = float64(flops) / 1e9 / (res.LatencyMS.P50 / 1e3)
	}
	res.PeakBytes = cb.peakBytes()
	st := prog.Stats()
	res.ActivationBytes, res.NaiveActivationBytes = st.PlannedBytes, st.NaiveBytes
	res.Steps, res.Folded = st.Steps, st.Folded
	res.HeapGrowthBytes = int64(ms2.HeapAlloc) - int64(ms0.HeapAlloc)
	res.AllocBytesPerRun = int64(ms2.TotalAlloc-ms1.TotalAlloc) / int64(opt.Iters)
	return res, nil
}

// quantile of sorted values, linear between neighbours.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}

// countingBackend passes everything to Backend and counts the bytes live
// from its Alloc calls (float32 elements, 4 bytes each) and their peak.
type countingBackend struct {
	kernels.Backend
	mu        sync.Mutex
	sizes     map[*kernels.Tensor]int64
	live, max int64
}

func (c *countingBackend) Alloc(s kernels.Shape) (*kernels.Tensor, error) {
	t, err := c.Backend.Alloc(s)
	if err != nil {
		return nil, err
	}
	n := int64(s.Numel()) * 4
	c.mu.Lock()
	c.sizes[t] = n
	c.live += n
	c.max = max(c.max, c.live)
	c.mu.Unlock()
	return t, nil
}

func (c *countingBackend) Free(t *kernels.Tensor) {
	c.mu.Lock()
	if n, ok := c.sizes[t]; ok {
		c.live -= n
		delete(c.sizes, t)
	}
	c.mu.Unlock()
	c.Backend.Free(t)
}

func (c *countingBackend) peakBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}
