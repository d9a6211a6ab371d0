package infer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/backend"
	"vireo/pkg/kernels"
	"vireo/pkg/modelstore"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
	"vireo/services/internal/boot"
)

// Service name used in subjects (<p>.errors.infer) and logs.
const Service = "infer"

var (
	errNoModel  = errors.New("no model serving yet")
	errStarting = errors.New("starting")
)

// Run serves cfg.Models (or every model in the store) until ctx is done,
// then drains: queued frames are run and published (within
// cfg.DrainTimeout), messages not yet taken are given back with Nak, and
// every goroutine is joined before Run returns. It returns nil after a
// shutdown by ctx, or the first error that stops the service (a bad
// config, NATS unreachable at start, the backend failing to open).
func Run(ctx context.Context, cfg Config, deps ops.Deps) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if deps.NC == nil {
		return fmt.Errorf("%w: deps.NC is nil", ErrConfig)
	}
	deps = deps.WithDefaults()
	deps.Health.Set(Service, errStarting) // cleared once the workers are started
	log := deps.Log.With().Str("service", Service).Logger()
	met, err := newMetrics(deps.Metrics)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.PublishTimeout*3)
	defer cancel()
	conn, err := boot.Open(startCtx, deps.NC, boot.Options{
		Service: Service, Prefix: cfg.Prefix, Replicas: cfg.Replicas, NoProvision: cfg.NoProvision, KeepWindow: cfg.KeepWindow,
	})
	if err != nil {
		return err
	}
	subj, js, store := conn.Subj, conn.JS, conn.Store
	be := cfg.BackendImpl
	if be == nil {
		if be, err = backend.Open(backend.Config{Name: cfg.Backend, Threads: cfg.Threads, Math: cfg.Math}); err != nil {
			return fmt.Errorf("infer: backend: %w", err)
		}
		defer be.Close()
	}
	errSubj := conn.ErrSubj
	met.backend.WithLabelValues(be.Name(), backend.Math(be), kernels.BLASCore(be)).Set(1)

	s := &service{
		cfg: cfg, deps: deps, log: log, subj: subj, js: js, store: store,
		be: be, met: met, errSubj: errSubj,
	}
	return s.run(ctx)
}

// service starts one worker per model and joins them.
type service struct {
	cfg     Config
	deps    ops.Deps
	log     zerolog.Logger
	subj    schema.Subjects
	js      jetstream.JetStream
	store   *modelstore.Store
	be      kernels.Backend
	met     *metrics
	errSubj string

	wg       sync.WaitGroup
	cancel   context.CancelFunc
	mu       sync.Mutex
	firstErr error
}

func (s *service) start(ctx context.Context, model string) {
	w := newWorker(s, model)
	w.initHealth()
	s.wg.Go(func() {
		if err := w.run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Str("model", model).Msg("worker stopped")
			s.mu.Lock()
			if s.firstErr == nil {
				s.firstErr = fmt.Errorf("infer: model %s: %w", model, err)
			}
			s.mu.Unlock()
			s.cancel() // one model failing for good stops the service
		}
	})
}

func (s *service) run(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(ctx)
	defer func() {
		s.cancel()
		s.wg.Wait() // workers drain and return
	}()
	if len(s.cfg.Models) > 0 {
		for _, m := range s.cfg.Models {
			s.start(ctx, m)
		}
		s.deps.Health.Set(Service, nil)
		s.log.Info().Strs("models", s.cfg.Models).Str("backend", s.be.Name()).Str("blas_core", kernels.BLASCore(s.be)).Msg("infer started")
		<-ctx.Done()
		return s.err()
	}
	// Every model: start a worker when a model first gets a pointer.
	s.deps.Health.Set("infer-models", errNoModel)
	w, err := s.store.Watch(ctx, "")
	if err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	defer w.Stop()
	s.deps.Health.Set(Service, nil)
	s.log.Info().Str("backend", s.be.Name()).Str("blas_core", kernels.BLASCore(s.be)).Msg("infer started for every model in the store")
	var started []string
	for {
		select {
		case <-ctx.Done():
			return s.err()
		case p, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return s.err()
				}
				return fmt.Errorf("infer: model watcher closed")
			}
			if slices.Contains(started, p.Model) {
				continue
			}
			started = append(started, p.Model)
			s.deps.Health.Set("infer-models", nil)
			s.start(ctx, p.Model)
		}
	}
}

func (s *service) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}
