package infer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/batch"
	"vireo/pkg/modelstore"
	"vireo/pkg/predict"
	"vireo/pkg/schema"
)

// Error reasons on <p>.errors.infer and in errors_total.
const (
	ReasonMalformed  = "malformed_arrow"
	ReasonWrongModel = "wrong_model"
	ReasonInputSize  = "input_size"
	ReasonPredict    = "predict"
	ReasonPublish    = "publish"
	ReasonLoad       = "load"
	ReasonMaxDeliver = "max_deliver"
)

// ref is one frame waiting in the batcher: frame i of a held message.
type ref struct {
	st *msgState
	i  int
}

// msgState is a frame batch message this worker holds until every frame's
// result is published (then Ack) or it gives the message up (Nak, Term).
type msgState struct {
	msg     jetstream.Msg
	fb      *schema.FrameBatch
	pending int // frames not yet through a batch (queued or running)
	reply   string
	touched time.Time // last Ack-timer reset (arrival or InProgress)
	done    bool      // Nak or Term sent: remaining frames are skipped
	failed  error     // why, for the log
}

// worker serves one model: one owning loop over its consumer's messages,
// the batcher and the predictor, plus one loader goroutine that prepares
// new versions beside the serving one.
type worker struct {
	s        *service
	cfg      Config
	model    string
	log      zerolog.Logger
	mem      memory.Allocator
	b        *batch.Batcher[ref]
	pred     *predict.Predictor
	held     map[*msgState]struct{}
	in       chan jetstream.Msg
	stopping chan struct{}

	// The publish stage (publish.go): computed batches go out on toSend,
	// come back settled on sent; inflight counts the batches in between.
	toSend   chan *pubJob
	sent     chan *pubJob
	inflight int

	modelCheck, consumerCheck string
}

func newWorker(s *service, model string) *worker {
	return &worker{
		s: s, cfg: s.cfg, model: model,
		log:           s.log.With().Str("model", model).Logger(),
		mem:           memory.NewGoAllocator(),
		held:          map[*msgState]struct{}{},
		in:            make(chan jetstream.Msg, s.cfg.PullMaxMessages),
		stopping:      make(chan struct{}),
		toSend:        make(chan *pubJob, s.cfg.MaxInFlight),
		sent:          make(chan *pubJob, s.cfg.MaxInFlight),
		modelCheck:    "infer-model:" + model,
		consumerCheck: "infer-consumer:" + model,
	}
}

// initHealth marks the worker not ready; called before it starts, so a
// readiness probe never passes before the worker has said anything.
func (w *worker) initHealth() {
	w.s.deps.Health.Set(w.modelCheck, errNoModel)
	w.s.deps.Health.Set(w.consumerCheck, errors.New("consumer not bound yet"))
}

func (w *worker) run(ctx context.Context) error {
	h := w.s.deps.Health
	b, err := batch.New[ref](batch.Policy{
		MaxBatch:       w.cfg.MaxBatch,
		MaxDelay:       w.cfg.MaxDelay,
		PreferredSizes: w.cfg.PreferredSizes,
		MaxQueue:       w.cfg.MaxQueued + schema.MaxFramesPerBatch, // one message always fits
		SourceShare:    w.cfg.SourceShare,
	})
	if err != nil {
		return err
	}
	w.b = b

	watcher, err := w.s.store.Watch(ctx, w.model)
	if err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan *predict.Predictor)
	var lwg sync.WaitGroup
	lwg.Go(func() { w.loader(loadCtx, watcher, loaded) })
	pub := w.startPublish()
	defer func() {
		w.awaitInFlight() // nothing in flight after a shutdown; a safety net for early returns
		pub.stop()
		stopLoad()
		watcher.Stop()
		lwg.Wait()
		if w.pred != nil {
			w.pred.Close()
		}
	}()

	// Take no frame before a version is loaded.
	select {
	case <-ctx.Done():
		return nil
	case p := <-loaded:
		w.swap(p)
	}

	stream := w.s.subj.StreamName(schema.StreamFrames)
	ccfg, err := w.s.subj.InferConsumer(w.model, w.cfg.Replicas)
	if err != nil {
		return err
	}
	cons, err := w.s.js.CreateOrUpdateConsumer(ctx, stream, ccfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", ccfg.Durable, stream, err)
	}
	// In a cluster a new replicated consumer has no leader for a moment; a
	// pull sent then gets "no responders" and the client does not pull
	// again until its heartbeat check fails (~30 s). Wait for the leader.
	if !waitConsumerLeader(ctx, cons, schema.InferAckWait) {
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn().Str("consumer", ccfg.Durable).Msg("consumer has no leader yet; consuming anyway")
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case w.in <- m:
		case <-w.stopping:
			_ = m.Nak() // shutting down: give it back at once
		}
	},
		jetstream.PullMaxMessagesWithBytesLimit(w.cfg.PullMaxMessages, w.cfg.PullMaxBytes),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.log.Warn().Err(err).Msg("consume")
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", ccfg.Durable, err)
	}
	h.Set(w.consumerCheck, nil)
	w.log.Info().Str("consumer", ccfg.Durable).Str("model_version", w.pred.Version()).Msg("serving")

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	progress := time.NewTicker(w.cfg.ProgressEvery)
	defer progress.Stop()
	for {
		var inC <-chan jetstream.Msg
		if w.b.Len() < w.cfg.MaxQueued {
			inC = w.in
		}
		var timerC <-chan time.Time
		if d, ok := w.b.UntilNext(time.Now()); ok {
			timer.Reset(d)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			h.Set(w.consumerCheck, errors.New("shutting down"))
			w.shutdown(cc)
			return nil
		case m := <-inC:
			w.accept(m)
		case j := <-w.sent:
			w.settleJob(j)
		case p := <-loaded:
			w.swap(p) // between batches: the loop runs batches itself
		case <-timerC:
		case now := <-progress.C:
			w.progress(now)
		}
		timer.Stop()
		w.takeReady()
		w.flush(ctx, false)
	}
}

// takeReady settles the batches whose results are out and takes the
// messages already waiting (without blocking, up to MaxQueued frames), so
// a batch formed now is as full as the backlog allows: at saturation the
// messages that arrived while the last batch ran fill the next one.
func (w *worker) takeReady() {
	for {
		select {
		case j := <-w.sent:
			w.settleJob(j)
			continue
		default:
		}
		if w.b.Len() >= w.cfg.MaxQueued {
			return
		}
		select {
		case m := <-w.in:
			w.accept(m)
		default:
			return
		}
	}
}

// loader loads each new serving version beside the serving one and hands
// it to the loop; a version that fails to load is logged and skipped (the
// old one keeps serving).
func (w *worker) loader(ctx context.Context, watcher *modelstore.Watcher, out chan<- *predict.Predictor) {
	current := ""
	for {
		var p modelstore.Pointer
		select {
		case <-ctx.Done():
			return
		case ptr, ok := <-watcher.Updates():
			if !ok {
				return
			}
			p = ptr
		}
	latest: // several changes queued: load only the newest
		for {
			select {
			case ptr, ok := <-watcher.Updates():
				if !ok {
					return
				}
				p = ptr
			default:
				break latest
			}
		}
		if p.Version == current {
			continue
		}
		t0 := time.Now()
		pred, err := w.load(ctx, p.Version)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.s.met.errors.WithLabelValues(w.model, ReasonLoad).Inc()
			w.log.Error().Err(err).Str("model_version", p.Version).Msg("load failed; the serving version stays")
			w.publishError(schema.Error{Error: err.Error(), Reason: ReasonLoad, Model: w.model}, "")
			continue
		}
		w.log.Info().Str("model_version", p.Version).Float64("load_ms", ms(time.Since(t0))).Msg("version loaded and warmed")
		select {
		case out <- pred:
			current = p.Version
			w.s.met.swapTime.WithLabelValues(w.model).Observe(time.Since(t0).Seconds())
		case <-ctx.Done():
			pred.Close()
			return
		}
	}
}

func (w *worker) load(ctx context.Context, version string) (*predict.Predictor, error) {
	b, m, err := w.s.store.Get(ctx, w.model, version)
	if err != nil {
		return nil, err
	}
	// A CPU runs a part-full batch as buckets it fills (its time per frame
	// hardly depends on the batch); other backends pad to the bucket.
	return predict.Load(w.s.be, b, m, predict.Options{MaxBatch: w.cfg.MaxBatch, Pad: w.s.be.Name() != "cpu"})
}

// swap makes p serve; the loop calls it only between batches.
func (w *worker) swap(p *predict.Predictor) {
	old := w.pred
	w.pred = p
	w.s.met.swaps.WithLabelValues(w.model).Inc()
	if old != nil {
		w.s.met.version.DeleteLabelValues(w.model, old.Version())
	}
	w.s.met.version.WithLabelValues(w.model, p.Version()).Set(1)
	w.s.deps.Health.Set(w.modelCheck, nil)
	ev := w.log.Info().Str("model_version", p.Version())
	if old != nil {
		ev = ev.Str("previous_version", old.Version())
		old.Close()
	}
	ev.Msg("model version switched")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// accept decodes a frame batch message and queues its frames, or
// terminates it as poison.
func (w *worker) accept(m jetstream.Msg) {
	now := time.Now()
	reply := m.Headers().Get(schema.HeaderReply)
	fb, err := schema.DecodeFrames(w.mem, m.Data())
	if err != nil {
		w.poison(m, reply, ReasonMalformed, err, "", 0)
		return
	}
	if fb.Model != w.model {
		fb.Release()
		w.poison(m, reply, ReasonWrongModel, fmt.Errorf("infer: frame batch for model (got=%q, want=%q)", fb.Model, w.model), "", 0)
		return
	}
	n := fb.Len()
	for i := range n {
		f := fb.Frame(i)
		if err := w.pred.CheckFrame(&f); err != nil {
			fb.Release()
			w.poison(m, reply, ReasonInputSize, err, f.Source, f.Seq)
			return
		}
	}
	st := &msgState{msg: m, fb: fb, pending: n, reply: reply, touched: now}
	w.held[st] = struct{}{}
	for i := range n {
		if _, err := w.b.Add(batch.Item[ref]{Source: fb.Frame(i).Source, Arrived: now, Value: ref{st, i}}); err != nil {
			// Not expected (MaxQueue leaves room for a whole message):
			// give the message back and let the queued frames be skipped.
			st.pending -= n - i
			w.retry(st, fmt.Errorf("infer: queue frame: %w", err))
			w.settle(st)
			return
		}
	}
}

// flush runs every due batch (all queued frames when force).
func (w *worker) flush(ctx context.Context, force bool) {
	for {
		before := w.b.Stats()
		var items []batch.Item[ref]
		if force {
			items = w.b.ForceFlush(time.Now())
		} else {
			items = w.b.Flush(time.Now())
		}
		if items == nil {
			return
		}
		w.runBatch(ctx, items, trigger(before, w.b.Stats()))
		if !force {
			w.takeReady()
		}
	}
}

// runBatch predicts one batch, publishes its results, and settles the
// messages whose frames are all done.
func (w *worker) runBatch(ctx context.Context, items []batch.Item[ref], trig string) {
	start := time.Now()
	frames := make([]schema.Frame, 0, len(items))
	refs := make([]ref, 0, len(items))
	for _, it := range items {
		st := it.Value.st
		if st.done { // given back already; its frames come again
			st.pending--
			w.settle(st)
			continue
		}
		f := st.fb.Frame(it.Value.i)
		if err := w.pred.CheckFrame(&f); err != nil { // a new version with another input size
			w.poison(st.msg, st.reply, ReasonInputSize, err, f.Source, f.Seq)
			st.done = true
			st.pending--
			w.settle(st)
			continue
		}
		frames = append(frames, f)
		refs = append(refs, it.Value)
		w.s.met.wait.WithLabelValues(w.model).Observe(start.Sub(it.Arrived).Seconds())
	}
	if len(frames) == 0 {
		return
	}
	w.progress(time.Now())
	t0 := time.Now()
	// A batch that has started runs to its end even when ctx ends meanwhile
	// (shutdown drains queued frames anyway; cutting this one short would
	// only give its messages back to run again).
	results, err := w.pred.Run(context.WithoutCancel(ctx), frames)
	w.s.met.run.WithLabelValues(w.model, w.pred.Version()).Observe(time.Since(t0).Seconds())
	if err != nil {
		w.s.met.errors.WithLabelValues(w.model, ReasonPredict).Inc()
		w.log.Error().Err(err).Int("batch_size", len(frames)).Msg("predict failed; messages given back")
		for _, r := range refs {
			w.retry(r.st, err)
			r.st.pending--
			w.settle(r.st)
		}
		return
	}
	w.s.met.batches.WithLabelValues(w.model, trig).Inc()
	w.s.met.size.WithLabelValues(w.model).Observe(float64(len(frames)))
	// The results go out while the next batch runs: the publish stage
	// encodes and sends them and the kept frames, awaits their acks and
	// hands the job back on w.sent, where the loop settles its messages.
	for w.inflight >= w.cfg.MaxInFlight {
		w.settleJob(<-w.sent)
	}
	w.inflight++
	w.toSend <- &pubJob{refs: refs, frames: frames, results: results}
}

// settleJob acks or gives back the messages of a batch whose publishing is
// over (every frame's result acked by the stream, or failed).
func (w *worker) settleJob(j *pubJob) {
	w.inflight--
	now := time.Now()
	for i, r := range j.refs {
		if err := j.failed[r.st]; err != nil {
			w.retry(r.st, err)
		} else {
			w.s.met.frames.WithLabelValues(w.model).Inc()
			w.s.met.latency.WithLabelValues(w.model, j.results[i].Source).Observe(now.Sub(j.results[i].TS).Seconds())
		}
		r.st.pending--
		w.settle(r.st)
	}
}

// awaitInFlight settles every batch still in the publish stage.
func (w *worker) awaitInFlight() {
	for w.inflight > 0 {
		w.settleJob(<-w.sent)
	}
}

// settle acks st when all its frames are through and nothing failed, and
// releases it when no frame of it is left anywhere.
func (w *worker) settle(st *msgState) {
	if st.pending > 0 {
		return
	}
	if !st.done {
		st.done = true
		if err := st.msg.Ack(); err != nil {
			w.log.Warn().Err(err).Msg("ack")
		}
		w.s.met.messages.WithLabelValues(w.model, "ack").Inc()
	}
	st.fb.Release()
	delete(w.held, st)
}

// retry gives st back for redelivery after NakDelay, or terminates it with
// an error once it was delivered schema.InferMaxDeliver times.
func (w *worker) retry(st *msgState, cause error) {
	if st.done {
		return
	}
	st.done, st.failed = true, cause
	if md, err := st.msg.Metadata(); err == nil && md.NumDelivered >= schema.InferMaxDeliver {
		w.poison(st.msg, st.reply, ReasonMaxDeliver, fmt.Errorf("infer: gave up after %d deliveries: %w", md.NumDelivered, cause), "", 0)
		return
	}
	if err := st.msg.NakWithDelay(w.cfg.NakDelay); err != nil {
		w.log.Warn().Err(err).Msg("nak")
	}
	w.s.met.messages.WithLabelValues(w.model, "nak").Inc()
}

// poison terminates a message that can never succeed and says why on
// <p>.errors.infer (and to its reply subject).
func (w *worker) poison(m jetstream.Msg, reply, reason string, cause error, source string, seq uint64) {
	if err := m.TermWithReason(reason); err != nil {
		w.log.Warn().Err(err).Msg("term")
	}
	w.s.met.messages.WithLabelValues(w.model, "term").Inc()
	w.s.met.errors.WithLabelValues(w.model, reason).Inc()
	w.log.Warn().Err(cause).Str("reason", reason).Str("subject", m.Subject()).Msg("message terminated")
	w.publishError(schema.Error{Error: cause.Error(), Reason: reason, Model: w.model, Source: source, Seq: seq}, reply)
}

func (w *worker) publishError(e schema.Error, reply string) {
	e.SchemaVersion = schema.Version
	if len(e.Error) > schema.MaxMessageLen {
		e.Error = e.Error[:schema.MaxMessageLen]
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	if err := w.s.deps.NC.Publish(w.s.errSubj, data); err != nil {
		w.log.Warn().Err(err).Msg("publish error message")
	}
	if reply != "" {
		_ = w.s.deps.NC.Publish(reply, data)
	}
}

// progress resets the ack timer of held messages not touched for
// ProgressEvery, so frames waiting in the queue or a long batch are not
// redelivered to another replica.
func (w *worker) progress(now time.Time) {
	for st := range w.held {
		if !st.done && now.Sub(st.touched) >= w.cfg.ProgressEvery {
			if err := st.msg.InProgress(); err != nil {
				w.log.Warn().Err(err).Msg("in progress")
			}
			st.touched = now
		}
	}
}

// shutdown stops taking messages (those buffered in the client are given
// back), runs what is queued within DrainTimeout, and gives back the rest.
func (w *worker) shutdown(cc jetstream.ConsumeContext) {
	close(w.stopping)
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(w.cfg.DrainTimeout):
		cc.Stop()
		w.log.Warn().Msg("consumer did not drain in time")
	}
	// Messages handed over but not taken yet go back at once.
	for taken := false; !taken; {
		select {
		case m := <-w.in:
			_ = m.Nak()
		default:
			taken = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	defer cancel()
	queued := w.b.Len()
	w.flush(ctx, true)
	w.awaitInFlight()
	for st := range w.held {
		w.retry(st, errors.New("infer: shutting down"))
		st.pending = 0
		w.settle(st)
	}
	w.log.Info().Int("drained_frames", queued).Msg("stopped")
}

// waitConsumerLeader reports whether cons has a leader (at once outside a
// cluster), polling for at most within or until ctx is done.
func waitConsumerLeader(ctx context.Context, cons jetstream.Consumer, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil && (info.Cluster == nil || info.Cluster.Leader != "") {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
