//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
	"gorgonia.org/cu"

	"vireo/pkg/kernels"
)

// ErrClosed is returned by every op of a closed Backend.
var ErrClosed = errors.New("cuda: backend is closed")

// Config configures a CUDA backend.
type Config struct {
	// Device is the CUDA device ordinal (0 first).
	Device int
	// Logger receives one line per backend start and stop.
	Logger zerolog.Logger
	// MinComputeMajor is the lowest compute capability major version
	// accepted (default 8: the PTX is compute_80 and compute_90).
	MinComputeMajor int
	// Math is the initial math mode (kernels.MathFP32, the default when
	// empty, MathFP16 or MathBF16); see Backend.SetMath.
	Math string
}

func (c *Config) setDefaults() {
	if c.MinComputeMajor == 0 {
		c.MinComputeMajor = 8
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Device < 0 {
		return fmt.Errorf("%w: cuda: Device=%d (want >= 0)", kernels.ErrParam, c.Device)
	}
	if _, err := parseMath(c.Math); err != nil {
		return err
	}
	if c.MinComputeMajor < 8 {
		return fmt.Errorf("%w: cuda: MinComputeMajor=%d (want >= 8: the PTX targets compute_80 and compute_90)", kernels.ErrParam, c.MinComputeMajor)
	}
	return nil
}

// DeviceInfo describes the device a Backend runs on.
type DeviceInfo struct {
	Name                       string
	Ordinal                    int
	ComputeMajor, ComputeMinor int
	Multiprocessors            int
	TotalMem                   int64
	DriverVersion              int
	PTXArch                    int // the compute_XX PTX that was loaded
}

// Backend is the CUDA backend. Create it with New and Close it when done.
type Backend struct {
	log  zerolog.Logger
	info DeviceInfo

	work chan func()
	wg   sync.WaitGroup // joins the owner goroutine

	// mu guards closed; do holds it for reading for the whole exchange
	// with the owner so Close waits for calls in flight.
	mu     sync.RWMutex
	closed bool

	// math is the math mode (mathFP32, mathFP16, mathBF16), read when an
	// op is issued.
	math atomic.Int32

	// Owned by the owner goroutine.
	ctx     cu.CUContext
	modules []cu.Module
	fns     map[string]cu.Function
	scratch devBuf // staging for host bytes and launch metadata
	partial devBuf // float64 partial sums of the losses (see partials)
}

var _ kernels.Backend = (*Backend)(nil)

// devBuf is a device allocation.
type devBuf struct {
	ptr   cu.DevicePtr
	bytes int64
}

// New creates a context on cfg.Device on a new owner goroutine and loads
// the embedded PTX modules.
func New(cfg Config) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{log: cfg.Logger, work: make(chan func()), fns: map[string]cu.Function{}}
	mode, _ := parseMath(cfg.Math) // checked by Validate
	b.math.Store(mode)
	started := make(chan error, 1)
	b.wg.Add(1)
	go b.owner(cfg, started)
	if err := <-started; err != nil {
		b.wg.Wait()
		return nil, err
	}
	b.log.Info().Str("device", b.info.Name).Int("ordinal", b.info.Ordinal).
		Int("sm", b.info.ComputeMajor*10+b.info.ComputeMinor).Int("ptx", b.info.PTXArch).
		Int64("mem_bytes", b.info.TotalMem).Str("math", b.Math()).Msg("cuda backend started")
	return b, nil
}

// owner runs every driver call of the backend on one locked OS thread.
func (b *Backend) owner(cfg Config, started chan<- error) {
	defer b.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.start(cfg); err != nil {
		b.stop()
		started <- err
		return
	}
	started <- nil
	for fn := range b.work {
		fn()
	}
	b.stop()
}

func (b *Backend) start(cfg Config) error {
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("%w: cuda: counting devices: %v", kernels.ErrUnsupported, err)
	}
	if cfg.Device >= n {
		return fmt.Errorf("%w: cuda: device %d (have %d devices)", kernels.ErrParam, cfg.Device, n)
	}
	dev, err := cu.GetDevice(cfg.Device)
	if err != nil {
		return fmt.Errorf("cuda: device %d: %w", cfg.Device, err)
	}
	info := DeviceInfo{Ordinal: cfg.Device, DriverVersion: cu.Version()}
	if info.Name, err = dev.Name(); err != nil {
		return fmt.Errorf("cuda: device %d name: %w", cfg.Device, err)
	}
	if info.ComputeMajor, err = dev.Attribute(cu.ComputeCapabilityMajor); err != nil {
		return fmt.Errorf("cuda: device %d capability: %w", cfg.Device, err)
	}
	if info.ComputeMinor, err = dev.Attribute(cu.ComputeCapabilityMinor); err != nil {
		return fmt.Errorf("cuda: device %d capability: %w", cfg.Device, err)
	}
	if info.Multiprocessors, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return fmt.Errorf("cuda: device %d multiprocessors: %w", cfg.Device, err)
	}
	if info.TotalMem, err = dev.TotalMem(); err != nil {
		return fmt.Errorf("cuda: device %d memory: %w", cfg.Device, err)
	}
	if info.ComputeMajor < cfg.MinComputeMajor {
		return fmt.Errorf("%w: cuda: %s has compute capability %d.%d (want >= %d.0)", kernels.ErrUnsupported, info.Name, info.ComputeMajor, info.ComputeMinor, cfg.MinComputeMajor)
	}
	b.info = info
	if b.ctx, err = dev.MakeContext(cu.SchedBlockingSync); err != nil {
		return fmt.Errorf("cuda: context on %s: %w", info.Name, err)
	}
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		return fmt.Errorf("cuda: make context current: %w", err)
	}
	return b.loadModules()
}

// stop frees what the owner holds; it runs on the owner goroutine.
func (b *Backend) stop() {
	var empty cu.CUContext
	if b.ctx == empty {
		return
	}
	if err := cu.Synchronize(); err != nil {
		b.log.Warn().Err(err).Msg("cuda: synchronize at close")
	}
	for _, d := range []*devBuf{&b.scratch, &b.partial} {
		if d.ptr != 0 {
			if err := cu.MemFree(d.ptr); err != nil {
				b.log.Warn().Err(err).Msg("cuda: free scratch")
			}
			*d = devBuf{}
		}
	}
	for _, m := range b.modules {
		if err := m.Unload(); err != nil {
			b.log.Warn().Err(err).Msg("cuda: unload module")
		}
	}
	b.modules = nil
	if err := b.ctx.Destroy(); err != nil {
		b.log.Warn().Err(err).Msg("cuda: destroy context")
	}
}

// do runs fn on the owner goroutine and returns its error.
func (b *Backend) do(fn func() error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	errc := make(chan error, 1)
	b.work <- func() { errc <- fn() }
	return <-errc
}

// Info describes the device.
func (b *Backend) Info() DeviceInfo { return b.info }

// Name implements kernels.Memory.
func (b *Backend) Name() string { return "cuda" }

// Sync implements kernels.Memory: it waits for every queued kernel and
// returns the first asynchronous error.
func (b *Backend) Sync() error {
	return b.do(func() error {
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("cuda: synchronize: %w", err)
		}
		return nil
	})
}

// Close waits for calls in flight, frees the scratch memory and modules,
// destroys the context and joins the owner goroutine. Tensors allocated
// from the backend must not be used after.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.work)
	b.mu.Unlock()
	b.wg.Wait()
	b.log.Info().Str("device", b.info.Name).Msg("cuda backend closed")
	return nil
}
