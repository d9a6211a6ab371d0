package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"vireo/pkg/model"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
	"vireo/services/ingest/dashboard"
	"vireo/services/internal/boot"
)

// Service name used in subjects (<p>.errors.ingest) and logs.
const Service = "ingest"

// QueueGroup is the queue group of the ingest image subscription, so
// replicas share <p>.ingest.image.*.
const QueueGroup = "vireo-ingest"

var errStarting = errors.New("starting")

// Run serves the HTTP API on cfg.Addr (with /metrics, /healthz and /readyz
// on the same mux) and the NATS image subject until ctx is done, then stops
// taking requests, lets those in flight finish (up to PredictTimeout),
// joins every goroutine and returns nil. It returns an error when it cannot
// start (bad config, JetStream unreachable, address in use).
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
	deps.Health.Set("nats", errStarting)
	startCtx, cancel := context.WithTimeout(ctx, 3*cfg.RequestTimeout)
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
		return fmt.Errorf("ingest: %w", err)
	}
	models := cfg.ModelsImpl
	if models == nil {
		models = conn.Store
	}
	errSubj := conn.ErrSubj
	dash, err := dashboard.New(dashboard.Config{Prefix: cfg.Prefix, RequestTimeout: cfg.RequestTimeout}, deps.NC, deps.Metrics, log)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	s := &service{dash: dash,
		cfg: cfg, deps: deps, log: log, subj: subj, js: js, kv: kv, models: models, met: met,
		errSubj: errSubj, mem: memory.NewGoAllocator(), sem: make(chan struct{}, cfg.MaxInFlight),
		manifests: map[string]cachedManifest{},
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
	dash    *dashboard.Dashboard
	errSubj string
	mem     memory.Allocator
	sem     chan struct{} // predictions in flight
	lastSeq atomic.Uint64

	mu        sync.Mutex // guards manifests
	manifests map[string]cachedManifest

	wg sync.WaitGroup // NATS request handlers
}

type cachedManifest struct {
	version string
	m       model.Manifest
	at      time.Time
}

func (s *service) run(ctx context.Context) error {
	sub, err := s.deps.NC.QueueSubscribe(s.subj.IngestImageAll(), QueueGroup, func(m *nats.Msg) { s.onImage(ctx, m) })
	if err != nil {
		return fmt.Errorf("ingest: subscribe %s: %w", s.subj.IngestImageAll(), err)
	}
	if err := s.deps.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("ingest: subscribe %s: %w", s.subj.IngestImageAll(), err)
	}
	s.deps.Health.Set("nats", nil)
	mux := http.NewServeMux()
	s.routes(mux)
	g, ok := s.deps.Metrics.(prometheus.Gatherer)
	if !ok {
		g = prometheus.NewRegistry()
	}
	ops.Handle(mux, g, s.deps.Health)
	var dwg sync.WaitGroup
	dctx, stopDash := context.WithCancel(ctx)
	dwg.Go(func() {
		if err := s.dash.Run(dctx); err != nil {
			s.log.Error().Err(err).Msg("dashboard event feed stopped")
		}
	})
	err = ops.Serve(ctx, s.cfg.Addr, mux, s.log, s.cfg.OnListen)
	stopDash()
	dwg.Wait() // the dashboard's feed, after its streams have ended
	// Stop taking NATS requests and wait for those in flight.
	if uerr := sub.Drain(); uerr != nil {
		_ = sub.Unsubscribe()
	}
	s.waitSubDrained(sub)
	s.wg.Wait()
	return err
}

// waitSubDrained waits (bounded) until the subscription has delivered
// every message it had taken.
func (s *service) waitSubDrained(sub *nats.Subscription) {
	deadline := time.Now().Add(s.cfg.PredictTimeout)
	for sub.IsValid() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// onImage handles one message on <p>.ingest.image.<source>: it runs the
// prediction on a goroutine of its own (bounded by MaxInFlight, joined by
// run), so the subscription is never blocked by a slow model.
func (s *service) onImage(ctx context.Context, m *nats.Msg) {
	source := m.Subject[len(s.subj.Prefix()+".ingest.image."):]
	modelName := m.Header.Get(schema.HeaderModel)
	select {
	case s.sem <- struct{}{}:
	default:
		s.replyNATS(m, s.reject(&apiError{status: http.StatusTooManyRequests, reason: "busy", source: source, model: modelName,
			err: fmt.Errorf("ingest: %d predictions in flight (max %d)", s.cfg.MaxInFlight, s.cfg.MaxInFlight)}))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		rctx := context.WithoutCancel(ctx) // a taken request is answered even at shutdown
		s.met.requests.WithLabelValues("nats").Inc()
		if modelName == "" {
			s.replyNATS(m, s.reject(&apiError{status: http.StatusBadRequest, reason: "missing_model", source: source,
				err: fmt.Errorf("ingest: header %s is missing (want the model name)", schema.HeaderModel)}))
			return
		}
		res, aerr := s.predict(rctx, modelName, source, m.Data, m.Reply != "")
		if aerr != nil {
			s.replyNATS(m, s.reject(aerr))
			return
		}
		if m.Reply != "" {
			if err := m.Respond(res); err != nil {
				s.log.Warn().Err(err).Str("source", source).Msg("reply")
			}
		}
	}()
}

func (s *service) replyNATS(m *nats.Msg, body []byte) {
	if m.Reply == "" {
		return
	}
	if err := m.Respond(body); err != nil {
		s.log.Warn().Err(err).Msg("reply")
	}
}

// apiError is a rejected input or a failed request.
type apiError struct {
	status int
	reason string
	source string
	seq    uint64
	model  string
	err    error
}

// reject counts and logs a rejected request, publishes its schema.Error on
// <p>.errors.ingest and returns the JSON body.
func (s *service) reject(e *apiError) []byte {
	msg := e.err.Error()
	if len(msg) > schema.MaxMessageLen {
		msg = msg[:schema.MaxMessageLen]
	}
	out := schema.Error{SchemaVersion: schema.Version, Error: msg, Reason: e.reason, Seq: e.seq}
	if schema.ValidateSource(e.source) == nil {
		out.Source = e.source
	}
	if schema.ValidateModel(e.model) == nil {
		out.Model = e.model
	}
	s.met.rejected.WithLabelValues(e.reason).Inc()
	ev := s.log.Info()
	if e.status >= 500 {
		ev = s.log.Warn()
	}
	ev.Str("reason", e.reason).Int("status", e.status).Str("source", out.Source).Str("model", out.Model).Err(e.err).Msg("request rejected")
	b, _ := json.Marshal(out)
	if err := s.deps.NC.Publish(s.errSubj, b); err != nil {
		s.log.Error().Err(err).Msg("publish error message")
	}
	return b
}

// nextSeq returns a seq for an ingested image: nanoseconds since the epoch,
// strictly increasing in this process, so (source, seq) Msg-Ids of
// different images (also from other ingest replicas) do not collide in the
// FRAMES duplicates window.
func (s *service) nextSeq() uint64 {
	for {
		last := s.lastSeq.Load()
		next := max(uint64(time.Now().UnixNano()), last+1)
		if s.lastSeq.CompareAndSwap(last, next) {
			return next
		}
	}
}
