package retrain

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/backend"
	"vireo/pkg/kernels"
	"vireo/pkg/modelstore"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
	"vireo/services/internal/boot"
)

// Service is the service name (errors subject, logs, readiness check).
const Service = "retrain"

// Names of what the service creates besides Vireo's streams (each under
// the prefix, see schema.Subjects.StreamName).
const (
	// BucketState is the KV bucket of per-model retrain state: key <model>,
	// value State; its history (StateHistory revisions) keeps past runs.
	BucketState = "RETRAIN"
	// BucketFrames is the Object Store of corrected frames copied out of
	// FRAMES_KEEP ("<model>/<source>/<seq>"), so they outlive the window.
	BucketFrames = "CORRECTED_FRAMES"
	// Consumer is the durable consumer on CORRECTIONS.
	Consumer     = "retrain"
	StateHistory = 64
)

// Triggers of a run (Record.Trigger).
const (
	TriggerCount    = "count"
	TriggerSchedule = "schedule"
	TriggerRequest  = "request"
)

// ControlSubject is <p>.retrain.<model>: a request {"action":"start"} or
// {"action":"status"} is answered with a JSON Status (ingest's
// POST and GET /v1/models/{model}/retrain use it).
func ControlSubject(prefix, modelName string) (string, error) {
	subj, err := schema.NewSubjects(prefix)
	if err != nil {
		return "", err
	}
	if err := schema.ValidateModel(modelName); err != nil {
		return "", err
	}
	return subj.Prefix() + ".retrain." + modelName, nil
}

// Request is the body of a control request.
type Request struct {
	Action string `json:"action"` // "start" or "status"
}

// Control actions.
const (
	ActionStart  = "start"
	ActionStatus = "status"
)

// Status answers a control request: what the service knows of a model.
type Status struct {
	Model string `json:"model"`
	// State is "idle", "queued" or "running".
	State string `json:"state"`
	// Stage of a running retrain ("loading", "training_head",
	// "training_body", "evaluating", "publishing") and its progress.
	Stage   string `json:"stage,omitempty"`
	Epoch   int    `json:"epoch,omitempty"`
	Epochs  int    `json:"epochs,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	Batches int    `json:"batches,omitempty"`
	// Corrections is how many valid corrections of the model are kept;
	// Pending how many arrived since the last run; Trigger is
	// Config.MinCorrections.
	Corrections int `json:"corrections"`
	Pending     int `json:"pending"`
	Trigger     int `json:"trigger"`
	// Last is the last run's record.
	Last *Record `json:"last,omitempty"`
	// Error is set when the request could not be served.
	Error string `json:"error,omitempty"`
}

// State is the KV value per model.
type State struct {
	Model string `json:"model"`
	// LastSeq is the newest CORRECTIONS sequence a run has seen: later
	// corrections are "new" (they count towards the trigger).
	LastSeq uint64  `json:"last_seq"`
	Last    *Record `json:"last,omitempty"`
}

// Run runs the retrain service until ctx is done: it keeps an index of the
// valid corrections of every model (rebuilt from the CORRECTIONS stream at
// start, then fed by a durable consumer), starts a retrain run when a model
// has cfg.MinCorrections new ones, on cfg.Schedule, or on request, and runs
// them one at a time. Every goroutine is joined before it returns; it
// returns nil after a shutdown by ctx.
func Run(ctx context.Context, cfg Config, deps ops.Deps) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if deps.NC == nil {
		return fmt.Errorf("%w: deps.NC is nil", ErrConfig)
	}
	deps = deps.WithDefaults()
	deps.Health.Set(Service, errors.New("starting"))
	log := deps.Log.With().Str("service", Service).Logger()
	met, err := newMetrics(deps.Metrics)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*cfg.Timeout)
	defer cancel()
	conn, err := boot.Open(startCtx, deps.NC, boot.Options{
		Service: Service, Prefix: cfg.Prefix, Replicas: cfg.Replicas, NoProvision: cfg.NoProvision, StoreTimeout: cfg.Timeout,
	})
	if err != nil {
		return err
	}
	subj, js, store := conn.Subj, conn.JS, conn.Store
	kv, err := js.CreateOrUpdateKeyValue(startCtx, jetstream.KeyValueConfig{
		Bucket: subj.StreamName(BucketState), Description: "Vireo retrain state and run records per model",
		History: StateHistory, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("retrain: state bucket: %w", err)
	}
	frames, err := js.CreateOrUpdateObjectStore(startCtx, jetstream.ObjectStoreConfig{
		Bucket: subj.StreamName(BucketFrames), Description: "Vireo corrected frames copied from FRAMES_KEEP",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("retrain: corrected frames store: %w", err)
	}
	be := cfg.BackendImpl
	if be == nil {
		if be, err = backend.Open(backend.Config{Name: cfg.Backend, Threads: cfg.Threads}); err != nil {
			return fmt.Errorf("retrain: backend: %w", err)
		}
		defer be.Close()
	}
	errSubj := conn.ErrSubj
	s := &service{
		cfg: cfg, deps: deps, log: log, subj: subj, js: js, store: store, kv: kv, frames: frames,
		be: be, met: met, errSubj: errSubj,
		index: map[string][]entry{}, seen: map[uint64]bool{}, states: map[string]*State{},
		progress: map[string]*Status{}, queued: map[string]string{},
		wake: make(chan struct{}, 1), runq: make(chan string, 1),
	}
	return s.run(ctx, startCtx)
}

// service is one running Run.
type service struct {
	cfg     Config
	deps    ops.Deps
	log     zerolog.Logger
	subj    schema.Subjects
	js      jetstream.JetStream
	store   *modelstore.Store
	kv      jetstream.KeyValue
	frames  jetstream.ObjectStore
	be      kernels.Backend
	met     *metrics
	errSubj string

	mu       sync.Mutex
	index    map[string][]entry // model -> valid corrections, by stream seq
	seen     map[uint64]bool
	states   map[string]*State
	progress map[string]*Status // running model's progress
	queued   map[string]string  // model -> trigger, waiting for the runner
	running  string

	wake chan struct{} // new corrections or a request: re-check triggers
	runq chan string   // the runner's next model
}

func (s *service) wanted(modelName string) bool {
	return len(s.cfg.Models) == 0 || slices.Contains(s.cfg.Models, modelName)
}

func (s *service) run(ctx, startCtx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.scan(startCtx); err != nil {
		return err
	}
	cons, err := s.js.CreateOrUpdateConsumer(startCtx, s.subj.StreamName(schema.StreamCorrections), jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "Vireo retrain: validates corrections and copies their frames",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    10,
		FilterSubject: s.subj.CorrectionsAll(),
		MaxAckPending: 256,
		Replicas:      s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("retrain: consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("retrain: consume: %w", err)
	}
	ctl, err := s.deps.NC.QueueSubscribe(s.subj.Prefix()+".retrain.*", Service, s.control)
	if err != nil {
		it.Stop()
		return fmt.Errorf("retrain: control subscription: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.consume(ctx, it) })
	wg.Go(func() { s.runner(ctx) })
	defer func() {
		_ = ctl.Unsubscribe()
		it.Stop()
		cancel()
		wg.Wait()
	}()
	s.deps.Health.Set(Service, nil)
	s.log.Info().Strs("models", s.cfg.Models).Int("min_corrections", s.cfg.MinCorrections).Dur("schedule", s.cfg.Schedule).Msg("retrain started")

	var tick <-chan time.Time
	if s.cfg.Schedule > 0 {
		t := time.NewTicker(s.cfg.Schedule)
		defer t.Stop()
		tick = t.C
	}
	s.check(ctx, false)
	for {
		select {
		case <-ctx.Done():
			s.log.Info().Msg("stopped")
			return nil
		case <-s.wake:
			s.check(ctx, false)
		case <-tick:
			s.check(ctx, true)
		}
	}
}

// check queues every model whose new corrections reach the trigger (or,
// on schedule, that has any) and hands the runner the next queued model.
func (s *service) check(ctx context.Context, schedule bool) {
	s.mu.Lock()
	for m := range s.index {
		if _, q := s.queued[m]; q || s.running == m {
			continue
		}
		n := s.pendingLocked(m)
		switch {
		case n >= s.cfg.MinCorrections:
			s.queued[m] = TriggerCount
		case schedule && n > 0:
			s.queued[m] = TriggerSchedule
		}
	}
	var next string
	if s.running == "" {
		for m := range s.queued {
			if next == "" || m < next {
				next = m
			}
		}
	}
	if next != "" {
		s.running = next
	}
	s.mu.Unlock()
	if next != "" {
		select {
		case s.runq <- next:
		case <-ctx.Done():
		}
	}
}

// pendingLocked counts model's corrections newer than its last run.
func (s *service) pendingLocked(modelName string) int {
	var last uint64
	if st := s.states[modelName]; st != nil {
		last = st.LastSeq
	}
	n := 0
	for _, e := range s.index[modelName] {
		if e.seq > last {
			n++
		}
	}
	return n
}

func (s *service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runner runs the models the main loop hands it, one at a time.
func (s *service) runner(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.runq:
			s.mu.Lock()
			trig := s.queued[m]
			delete(s.queued, m)
			s.progress[m] = &Status{Model: m, State: "running", Stage: "loading"}
			s.mu.Unlock()
			rec := s.retrain(ctx, m, trig)
			s.met.runs.WithLabelValues(m, rec.Outcome).Inc()
			s.mu.Lock()
			s.running = ""
			delete(s.progress, m)
			s.mu.Unlock()
			s.poke()
		}
	}
}

// scan rebuilds the index and the states from the streams at start.
func (s *service) scan(ctx context.Context) error {
	st, err := s.js.Stream(ctx, s.subj.StreamName(schema.StreamCorrections))
	if err != nil {
		return fmt.Errorf("retrain: stream %s: %w", s.subj.StreamName(schema.StreamCorrections), err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("retrain: stream info: %w", err)
	}
	if info.State.Msgs > 0 {
		oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.subj.CorrectionsAll()}})
		if err != nil {
			return fmt.Errorf("retrain: scan corrections: %w", err)
		}
		for {
			m, err := oc.Next(jetstream.FetchMaxWait(s.cfg.Timeout))
			if err != nil {
				return fmt.Errorf("retrain: scan corrections: %w", err)
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("retrain: scan corrections: %w", err)
			}
			if c, err := DecodeCorrection(m.Data()); err == nil && s.wanted(c.Model) {
				s.add(c.Model, md.Sequence.Stream, m.Data())
			}
			if md.Sequence.Stream >= info.State.LastSeq || md.NumPending == 0 {
				break
			}
		}
	}
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("retrain: state keys: %w", err)
	}
	for k := range keys.Keys() {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var v State
		if json.Unmarshal(e.Value(), &v) == nil {
			s.states[k] = &v
		}
	}
	_ = keys.Stop()
	s.log.Info().Int("models", len(s.index)).Int("corrections", len(s.seen)).Msg("corrections indexed")
	return nil
}

// add indexes a valid correction (once per stream sequence).
func (s *service) add(modelName string, seq uint64, raw []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[seq] {
		return false
	}
	s.seen[seq] = true
	d := sha256.Sum256(raw)
	s.index[modelName] = append(s.index[modelName], entry{seq: seq, digest: d, holdout: isHoldout(d, s.cfg.HoldoutPercent)})
	return true
}

// consume validates each new correction, copies the frame it names out
// of FRAMES_KEEP, indexes it and acks it; an invalid one is terminated
// with a JSON error on <p>.errors.retrain.
func (s *service) consume(ctx context.Context, it jetstream.MessagesContext) {
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("next correction")
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			_ = m.Term()
			continue
		}
		c, err := DecodeCorrection(m.Data())
		if err != nil {
			s.reject(m, "", "invalid_correction", err)
			continue
		}
		if !s.wanted(c.Model) {
			_ = m.Ack()
			continue
		}
		if c.Source != "" {
			rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			err := s.secureFrame(rctx, c)
			cancel()
			if errors.Is(err, ErrFrameNotKept) {
				s.reject(m, c.Model, "frame_not_kept", err)
				continue
			}
			if err != nil {
				s.log.Warn().Err(err).Str("model", c.Model).Msg("copy corrected frame; retrying")
				_ = m.NakWithDelay(time.Second)
				continue
			}
		}
		if s.add(c.Model, md.Sequence.Stream, m.Data()) {
			s.met.corrections.WithLabelValues(c.Model, "accepted").Inc()
		}
		_ = m.Ack()
		s.poke()
	}
}

func (s *service) reject(m jetstream.Msg, modelName, reason string, err error) {
	_ = m.Term()
	label := modelName
	if label == "" {
		label = "unknown"
	}
	s.met.corrections.WithLabelValues(label, reason).Inc()
	s.log.Warn().Err(err).Str("model", modelName).Str("subject", m.Subject()).Msg("correction rejected")
	e := schema.Error{SchemaVersion: schema.Version, Error: err.Error(), Reason: reason, Model: modelName}
	if len(e.Error) > schema.MaxMessageLen {
		e.Error = e.Error[:schema.MaxMessageLen]
	}
	if b, err := json.Marshal(e); err == nil {
		_ = s.deps.NC.Publish(s.errSubj, b)
	}
}

// control answers <p>.retrain.<model> requests (on a NATS goroutine).
func (s *service) control(msg *nats.Msg) {
	reply := func(st Status) {
		b, _ := json.Marshal(st)
		_ = msg.Respond(b)
	}
	modelName := msg.Subject[len(s.subj.Prefix()+".retrain."):]
	if err := schema.ValidateModel(modelName); err != nil || !s.wanted(modelName) {
		reply(Status{Model: modelName, Error: fmt.Sprintf("model %q is not retrained by this service", modelName)})
		return
	}
	var req Request
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			reply(Status{Model: modelName, Error: "request is not JSON: " + err.Error()})
			return
		}
	}
	switch req.Action {
	case ActionStart:
		s.mu.Lock()
		n := len(s.index[modelName])
		if n > 0 && s.running != modelName {
			if _, q := s.queued[modelName]; !q {
				s.queued[modelName] = TriggerRequest
			}
		}
		s.mu.Unlock()
		if n == 0 {
			reply(Status{Model: modelName, State: "idle", Trigger: s.cfg.MinCorrections, Error: "no corrections to retrain on"})
			return
		}
		s.poke()
	case ActionStatus, "":
	default:
		reply(Status{Model: modelName, Error: fmt.Sprintf("action %q (want %q or %q)", req.Action, ActionStart, ActionStatus)})
		return
	}
	reply(s.status(modelName))
}

// status is what the service knows of modelName now.
func (s *service) status(modelName string) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Model: modelName, State: "idle", Corrections: len(s.index[modelName]), Pending: s.pendingLocked(modelName), Trigger: s.cfg.MinCorrections}
	if _, q := s.queued[modelName]; q {
		st.State = "queued"
	}
	if p := s.progress[modelName]; p != nil {
		st.State, st.Stage, st.Epoch, st.Epochs, st.Batch, st.Batches = p.State, p.Stage, p.Epoch, p.Epochs, p.Batch, p.Batches
	}
	if v := s.states[modelName]; v != nil && v.Last != nil {
		r := *v.Last
		st.Last = &r
	}
	return st
}

func (s *service) setProgress(modelName string, fn func(p *Status)) {
	s.mu.Lock()
	if p := s.progress[modelName]; p != nil {
		fn(p)
	}
	s.mu.Unlock()
}
