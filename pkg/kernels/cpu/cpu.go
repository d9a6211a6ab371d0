package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"vireo/pkg/kernels"
)

// Config configures a CPU backend.
type Config struct {
	// Threads is the most threads of compute the backend uses at once
	// (goroutines plus OpenBLAS threads). 0 means runtime.GOMAXPROCS(0).
	Threads int
}

func (c *Config) setDefaults() {
	if c.Threads == 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Threads < 0 {
		return fmt.Errorf("%w: cpu: Threads=%d (want >= 0)", kernels.ErrParam, c.Threads)
	}
	return nil
}

// CPU is the CPU backend. Create it with New and Close it when done.
type CPU struct {
	threads int
	tasks   chan task
	wg      sync.WaitGroup // joins the workers
	closeMu sync.Mutex
	closed  bool
	jobs    jobPool
	plans   plans
	scratch scratchPool
}

var _ kernels.Backend = (*CPU)(nil)

// ranger is the body of a parallel loop: run processes items [lo,hi). It
// may run on several goroutines at once, so it only reads its receiver.
type ranger interface{ run(lo, hi int) }

// rangeFunc adapts a closure to ranger (a func value is pointer-shaped:
// the conversion does not allocate, but the closure itself escapes).
type rangeFunc func(lo, hi int)

func (f rangeFunc) run(lo, hi int) { f(lo, hi) }

// task is one chunk of a parallel loop.
type task struct {
	r      ranger
	lo, hi int
	done   *sync.WaitGroup
}

// New returns a CPU backend with cfg.Threads threads of compute.
func New(cfg Config) (*CPU, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	setBLASThreads(1)
	c := &CPU{threads: cfg.Threads, tasks: make(chan task), jobs: jobPool{free: map[any][]any{}}}
	for i := 1; i < c.threads; i++ {
		c.wg.Add(1)
		go c.worker()
	}
	return c, nil
}

func (c *CPU) worker() {
	defer c.wg.Done()
	for t := range c.tasks {
		t.r.run(t.lo, t.hi)
		t.done.Done()
	}
}

// Threads is the number of threads of compute the backend uses.
func (c *CPU) Threads() int { return c.threads }

// BLASCore is the OpenBLAS kernel set the backend's GEMMs run on (see
// the package function BLASCore).
func (c *CPU) BLASCore() string { return BLASCore() }

// Name implements kernels.Memory.
func (c *CPU) Name() string { return "cpu" }

// Close stops the worker goroutines and waits for them.
func (c *CPU) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.tasks)
	c.wg.Wait()
	return nil
}

// parallel runs fn over [0,n) in at most Threads contiguous chunks of at
// least grain items, the calling goroutine taking the first chunk, and
// returns when all chunks are done. Small loops run inline. fn escapes to
// the heap (one allocation per call, plus the WaitGroup's): the inference
// kernels use parallelFor instead, which allocates nothing.
func (c *CPU) parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if c.chunks(n, grain) <= 1 {
		fn(0, n)
		return
	}
	var done sync.WaitGroup
	c.split(n, grain, rangeFunc(fn), &done)
}

// chunks is the number of chunks parallel and parallelFor cut [0,n) into.
func (c *CPU) chunks(n, grain int) int {
	return min(c.threads, (n+max(grain, 1)-1)/max(grain, 1))
}

// split runs r over [0,n) as parallel does (n > 0), with done to join the
// workers' chunks.
func (c *CPU) split(n, grain int, r ranger, done *sync.WaitGroup) {
	chunks := c.chunks(n, grain)
	if chunks <= 1 {
		r.run(0, n)
		return
	}
	done.Add(chunks - 1)
	for i := 1; i < chunks; i++ {
		c.tasks <- task{r: r, lo: i * n / chunks, hi: (i + 1) * n / chunks, done: done}
	}
	r.run(0, n/chunks)
	done.Wait()
}

// job is a parallel loop's body with the WaitGroup that joins it, reused
// through the backend's jobPool.
type job[T any] struct {
	body T
	wg   sync.WaitGroup
}

// jobPool keeps finished jobs per body type for reuse (a free list, not a
// sync.Pool: a steady-state call must find its job even after a GC or a
// move to another P). It grows to the most jobs of a type in flight at
// once and never shrinks.
type jobPool struct {
	mu   sync.Mutex
	free map[any][]any // key: (*job[T])(nil); values: *job[T]
}

func getJob[T any](c *CPU) *job[T] {
	key := any((*job[T])(nil))
	c.jobs.mu.Lock()
	l := c.jobs.free[key]
	if n := len(l); n > 0 {
		j := l[n-1].(*job[T])
		l[n-1] = nil
		c.jobs.free[key] = l[:n-1]
		c.jobs.mu.Unlock()
		return j
	}
	c.jobs.mu.Unlock()
	return new(job[T])
}

func putJob[T any](c *CPU, j *job[T]) {
	var zero T
	j.body = zero // drop the body's references to the caller's data
	key := any((*job[T])(nil))
	c.jobs.mu.Lock()
	c.jobs.free[key] = append(c.jobs.free[key], j)
	c.jobs.mu.Unlock()
}

// parallelFor is parallel for a loop body given as a struct whose pointer
// has a run(lo, hi) method: body is copied into a pooled job, so handing
// it to the workers allocates nothing in the steady state. Bodies only
// read their fields in run (several goroutines share one).
func parallelFor[T any, P interface {
	*T
	ranger
}](c *CPU, n, grain int, body T) {
	if n <= 0 {
		return
	}
	j := getJob[T](c)
	j.body = body
	c.split(n, grain, P(&j.body), &j.wg)
	putJob(c, j)
}

// claimer hands out blocks of blk indices of [0,n) to dynamicFor's
// threads.
type claimer struct {
	next   int64 // atomic
	n, blk int
}

// claim returns the next block, or ok=false when none is left.
func (cl *claimer) claim() (lo, hi int, ok bool) {
	lo = int(atomic.AddInt64(&cl.next, int64(cl.blk))) - cl.blk
	if lo >= cl.n {
		return 0, 0, false
	}
	return lo, min(lo+cl.blk, cl.n), true
}

// worker is the body of a dynamic loop: work claims blocks from cl until
// none are left, setting up its per-thread scratch once.
type worker interface{ work(cl *claimer) }

// dynJob runs a worker body on each of parallelFor's chunks.
type dynJob[T any, P interface {
	*T
	worker
}] struct {
	body T
	cl   claimer
}

func (d *dynJob[T, P]) run(_, _ int) { P(&d.body).work(&d.cl) }

// dynamicFor is dynamic for a body given as a struct whose pointer has a
// work(cl) method, allocation-free like parallelFor.
func dynamicFor[T any, P interface {
	*T
	worker
}](c *CPU, n, blk int, body T) {
	if n <= 0 {
		return
	}
	blk = max(blk, 1)
	parallelFor[dynJob[T, P]](c, min(c.threads, (n+blk-1)/blk), 1, dynJob[T, P]{body: body, cl: claimer{n: n, blk: blk}})
}

// host returns t's host data, or an error for a tensor of another backend.
func host(name string, t *kernels.Tensor) ([]float32, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: %s is nil", kernels.ErrShape, name)
	}
	if t.Data == nil && t.Dev != nil {
		return nil, fmt.Errorf("%w: %s lives in device memory", kernels.ErrDevice, name)
	}
	if len(t.Data) != t.Numel() {
		return nil, fmt.Errorf("%w: %s has %d values for shape %v (want %d)", kernels.ErrShape, name, len(t.Data), t.Shape, t.Numel())
	}
	return t.Data, nil
}

// hostOp is host(op+": "+name, t) that builds the name only for the
// error (no allocation on the good path).
func hostOp(op, name string, t *kernels.Tensor) ([]float32, error) {
	if d, ok := hostData(t); ok {
		return d, nil
	}
	return host(op+": "+name, t)
}

// hostData is host without the error (no allocation on the good path).
func hostData(t *kernels.Tensor) ([]float32, bool) {
	if t == nil || (t.Data == nil && t.Dev != nil) || len(t.Data) != t.Numel() {
		return nil, false
	}
	return t.Data, true
}

// sameSize returns the host data of up to four tensors that must have the
// same number of elements (an array, so the check does not allocate).
func sameSize(op string, names []string, ts ...*kernels.Tensor) ([4][]float32, error) {
	var out [4][]float32
	for i, t := range ts {
		d, ok := hostData(t)
		if !ok {
			_, err := host(op+": "+names[i], t) // the error says why
			return out, err
		}
		if i > 0 && len(d) != len(out[0]) {
			return out, fmt.Errorf("%w: %s: %s is %v (want %d elements like %s %v)", kernels.ErrShape, op, names[i], t.Shape, len(out[0]), names[0], ts[0].Shape)
		}
		out[i] = d
	}
	return out, nil
}

// Alloc implements kernels.Memory.
func (c *CPU) Alloc(s kernels.Shape) (*kernels.Tensor, error) {
	for i, d := range s {
		if d < 0 {
			return nil, fmt.Errorf("%w: alloc: dimension %d of %v is negative", kernels.ErrShape, i, s)
		}
	}
	return &kernels.Tensor{Shape: s.Clone(), Data: make([]float32, s.Numel())}, nil
}

// Free implements kernels.Memory; the garbage collector owns host memory.
func (c *CPU) Free(t *kernels.Tensor) {}

// Upload implements kernels.Memory.
func (c *CPU) Upload(dst *kernels.Tensor, src []float32) error {
	d, err := host("upload: dst", dst)
	if err != nil {
		return err
	}
	if len(src) != len(d) {
		return fmt.Errorf("%w: upload: %d values into %v (want %d)", kernels.ErrShape, len(src), dst.Shape, len(d))
	}
	copy(d, src)
	return nil
}

// Download implements kernels.Memory.
func (c *CPU) Download(dst []float32, src *kernels.Tensor) error {
	s, err := host("download: src", src)
	if err != nil {
		return err
	}
	if len(dst) != len(s) {
		return fmt.Errorf("%w: download: %v into %d values (want %d)", kernels.ErrShape, src.Shape, len(dst), len(s))
	}
	copy(dst, s)
	return nil
}

// Fill implements kernels.Memory.
func (c *CPU) Fill(t *kernels.Tensor, v float32) error {
	d, err := host("fill", t)
	if err != nil {
		return err
	}
	for i := range d {
		d[i] = v
	}
	return nil
}

// Copy implements kernels.Memory.
func (c *CPU) Copy(dst, src *kernels.Tensor) error {
	d, err := host("copy: dst", dst)
	if err != nil {
		return err
	}
	s, err := host("copy: src", src)
	if err != nil {
		return err
	}
	if len(d) != len(s) {
		return fmt.Errorf("%w: copy %v into %v (numel got=%d, want=%d)", kernels.ErrShape, src.Shape, dst.Shape, len(s), len(d))
	}
	copy(d, s)
	return nil
}

// Sync implements kernels.Memory; CPU ops are synchronous.
func (c *CPU) Sync() error { return nil }
