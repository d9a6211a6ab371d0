package frames

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/ops"
	"vireo/pkg/schema"
	"vireo/services/internal/boot"
)

// Service name used in subjects (<p>.errors.frames) and logs.
const Service = "frames"

// EndKey is the SOURCES key under which the frames service records how a
// registration ended (JSON EndRecord). It contains a '.', so it is never a
// source id. Deleting a source should delete this key too.
func EndKey(id string) string { return id + ".end" }

// EndRecord is the value of EndKey(id): the registration revision that
// ended and its end-of-stream event. A registration whose revision has an
// EndRecord is not read again when the service restarts; registering the
// source again (a new revision) reads it again.
type EndRecord struct {
	Revision uint64             `json:"revision"`
	End      schema.EndOfStream `json:"end"`
}

var (
	errDeleted  = errors.New("frames: source deleted")
	errReplaced = errors.New("frames: source registration replaced")
	errStarting = errors.New("watching the SOURCES bucket: initial registrations not read yet")
)

// Run reads every source registered in the SOURCES bucket until ctx is
// done, then stops every source (publishing what was already captured and
// awaiting its acks), joins every goroutine and returns nil. It returns an
// error when it cannot start (a bad config, JetStream unreachable) or when
// the bucket watch fails.
func Run(ctx context.Context, cfg Config, deps ops.Deps) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if deps.NC == nil {
		return fmt.Errorf("%w: deps.NC is nil", ErrConfig)
	}
	deps = deps.WithDefaults()
	log := deps.Log.With().Str("service", Service).Logger()
	met, err := newMetrics(deps.Metrics)
	if err != nil {
		return err
	}
	deps.Health.Set("sources", errStarting)
	startCtx, cancel := context.WithTimeout(ctx, 3*cfg.PublishTimeout)
	defer cancel()
	conn, err := boot.Open(startCtx, deps.NC, boot.Options{
		Service: Service, Prefix: cfg.Prefix, Replicas: cfg.Replicas, NoProvision: cfg.NoProvision, NoStore: cfg.ModelsImpl != nil,
	})
	if err != nil {
		return err
	}
	subj, js := conn.Subj, conn.JS
	kv, err := schema.OpenSources(startCtx, js, subj, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("frames: %w", err)
	}
	models := cfg.ModelsImpl
	if models == nil {
		models = conn.Store
	}
	errSubj := conn.ErrSubj
	s := &service{
		cfg: cfg, deps: deps, log: log, subj: subj, js: js, kv: kv, models: models,
		met: met, errSubj: errSubj, mem: memory.NewGoAllocator(), runners: map[string]*runner{},
	}
	return s.run(ctx)
}

type service struct {
	cfg     Config
	deps    ops.Deps
	log     zerolog.Logger
	subj    schema.Subjects
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	models  Models
	met     *metrics
	errSubj string
	mem     memory.Allocator

	wg      sync.WaitGroup
	runners map[string]*runner // owned by run's goroutine
}

// runner is one source's goroutine.
type runner struct {
	rev    uint64
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// run owns the bucket watch and the runners map.
func (s *service) run(ctx context.Context) error {
	w, err := s.kv.Watch(ctx, "*") // source ids only: EndKey keys have two tokens
	if err != nil {
		return fmt.Errorf("frames: watch sources: %w", err)
	}
	defer func() {
		_ = w.Stop()
		for id := range s.runners {
			s.stop(id, nil)
		}
		s.wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("frames: watch of the sources bucket ended")
			}
			if e == nil { // initial values delivered
				s.deps.Health.Set("sources", nil)
				s.log.Info().Int("sources", len(s.runners)).Msg("sources loaded")
				continue
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				s.start(ctx, e)
			case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
				s.stop(e.Key(), errDeleted)
			}
		}
	}
}

// stop cancels a source's runner with cause (nil: service shutdown) and
// waits for it.
func (s *service) stop(id string, cause error) {
	r, ok := s.runners[id]
	if !ok {
		return
	}
	if cause == nil {
		cause = context.Canceled
	}
	r.cancel(cause)
	<-r.done
	delete(s.runners, id)
}

// start (re)starts the source of a registration entry.
func (s *service) start(ctx context.Context, e jetstream.KeyValueEntry) {
	id := e.Key()
	if r, ok := s.runners[id]; ok {
		if r.rev == e.Revision() {
			return
		}
		s.stop(id, errReplaced)
	}
	var reg schema.SourceRegistration
	err := json.Unmarshal(e.Value(), &reg)
	if err == nil {
		err = reg.Validate()
	}
	if err == nil && schema.ValidateSource(id) != nil {
		err = schema.ValidateSource(id)
	}
	if err == nil && reg.ID != "" && reg.ID != id {
		err = fmt.Errorf("%w: registration id %q under key %q (want them equal)", schema.ErrInvalid, reg.ID, id)
	}
	if err != nil {
		s.publishError(id, reg.Model, 0, "invalid_registration", fmt.Errorf("source %q: %w", id, err))
		return
	}
	rctx, cancel := context.WithCancelCause(ctx)
	r := &runner{rev: e.Revision(), cancel: cancel, done: make(chan struct{})}
	s.runners[id] = r
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(r.done)
		s.met.running.Inc()
		defer s.met.running.Dec()
		s.runSource(rctx, id, e.Revision(), reg)
	}()
}

// publishError publishes a JSON schema.Error on <p>.errors.frames and logs it.
func (s *service) publishError(source, model string, seq uint64, reason string, err error) {
	msg := err.Error()
	if len(msg) > schema.MaxMessageLen {
		msg = msg[:schema.MaxMessageLen]
	}
	e := schema.Error{SchemaVersion: schema.Version, Error: msg, Reason: reason, Seq: seq}
	if schema.ValidateSource(source) == nil {
		e.Source = source
	}
	if schema.ValidateModel(model) == nil {
		e.Model = model
	}
	s.met.errors.WithLabelValues(reason).Inc()
	s.log.Warn().Str("source", source).Str("model", model).Str("reason", reason).Err(err).Msg("source error")
	b, _ := json.Marshal(e)
	if perr := s.deps.NC.Publish(s.errSubj, b); perr != nil {
		s.log.Error().Err(perr).Msg("publish error message")
	}
}

func (s *service) publishEnd(eos schema.EndOfStream) {
	subj, err := s.subj.Events(eos.Source)
	if err != nil {
		return
	}
	b, _ := json.Marshal(eos)
	if err := s.deps.NC.Publish(subj, b); err != nil {
		s.log.Error().Err(err).Str("source", eos.Source).Msg("publish end of stream")
	}
	_ = s.deps.NC.Flush()
}

// newMsg builds a frame batch message.
func newMsg(subject, msgID string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(schema.HeaderSchemaVersion, fmt.Sprint(schema.Version))
	return m
}

// detached is a ctx for the last publishes of a stopping source.
func detached(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
