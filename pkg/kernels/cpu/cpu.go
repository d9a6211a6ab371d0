package cpu

import (
	"fmt"
	"runtime"
	"sync"

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
}

var _ kernels.Backend = (*CPU)(nil)

// task is one chunk of a parallel loop.
type task struct {
	fn     func(lo, hi int)
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
	c := &CPU{threads: cfg.Threads, tasks: make(chan task)}
	for i := 1; i < c.threads; i++ {
		c.wg.Add(1)
		go c.worker()
	}
	return c, nil
}

func (c *CPU) worker() {
	defer c.wg.Done()
	for t := range c.tasks {
		t.fn(t.lo, t.hi)
		t.done.Done()
	}
}

// Threads is the number of threads of compute the backend uses.
func (c *CPU) Threads() int { return c.threads }

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
// returns when all chunks are done. Small loops run inline.
func (c *CPU) parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := min(c.threads, (n+grain-1)/grain)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var done sync.WaitGroup
	done.Add(chunks - 1)
	for i := 1; i < chunks; i++ {
		c.tasks <- task{fn: fn, lo: i * n / chunks, hi: (i + 1) * n / chunks, done: &done}
	}
	fn(0, n/chunks)
	done.Wait()
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
