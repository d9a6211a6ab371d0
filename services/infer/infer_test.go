package infer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed/natstest"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
)

const size = 8 // model input is size x size x 3

// env is an embedded JetStream server with the streams provisioned and a
// model "tiny" with versions v0001 (serving) and v0002 in the store.
type env struct {
	t     *testing.T
	url   string
	nc    *nats.Conn
	js    jetstream.JetStream
	subj  schema.Subjects
	store *modelstore.Store
	be    kernels.Backend
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	subj, _ := schema.NewSubjects("")
	if err := schema.Provision(ctx, js, subj, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	store, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []float32{1, -1} {
		b, m := modeltest.TinyClassifier(t, size, size, scale, [3]string{"red", "green", "blue"})
		if _, err := store.Push(ctx, "tiny", b, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Promote(ctx, "tiny", "v0001", "test"); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: s.ClientURL(), nc: nc, js: js, subj: subj, store: store, be: newBackend(t), ctx: ctx}
}

func newBackend(t *testing.T) kernels.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// service is one running infer.Run.
type running struct {
	health *ops.Health
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(cfg Config) *running {
	e.t.Helper()
	nc, err := nats.Connect(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.Models == nil {
		cfg.Models = []string{"tiny"}
	}
	cfg.BackendImpl = e.be
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 4
	}
	cfg.MaxDelay = 2 * time.Millisecond
	cfg.NakDelay = 50 * time.Millisecond
	s := &running{health: ops.NewHealth(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- Run(ctx, cfg, ops.Deps{NC: nc, Log: zerolog.New(zerolog.NewTestWriter(e.t)), Metrics: s.reg, Health: s.health})
	}()
	e.t.Cleanup(func() {
		s.stop(e.t)
		nc.Close()
	})
	// Ready, or Run has not said anything yet: wait for the first version too.
	checkFor(e.t, 20*time.Second, func() error {
		if counterOf(s.reg, "vireo_infer_model_swaps_total") < 1 {
			return errors.New("no version loaded yet")
		}
		return s.health.Ready()
	})
	return s
}

func (s *running) stop(t *testing.T) {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		close(s.done)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// checkFor polls fn until it returns nil or the timeout passes.
func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// frame is frame seq of source, its colour derived from seq.
func frame(source string, seq uint64) schema.Frame {
	pix := make([]byte, size*size*3)
	for i := range pix {
		pix[i] = byte(int(seq)*37 + i%3*80)
	}
	return schema.Frame{Source: source, Seq: seq, Captured: time.Now(), OrigWidth: 640, OrigHeight: 480,
		Width: size, Height: size, Channels: 3, Pixels: pix}
}

// publishFrames publishes frames from..to-1 of each source in messages of
// perMsg frames (one source per message, as the frames service does).
func (e *env) publishFrames(sources []string, from, to uint64, perMsg int) {
	e.t.Helper()
	subj, _ := e.subj.Frames("tiny")
	mem := memory.NewGoAllocator()
	for seq := from; seq < to; seq += uint64(perMsg) {
		for _, src := range sources {
			var fs []schema.Frame
			for s := seq; s < min(seq+uint64(perMsg), to); s++ {
				fs = append(fs, frame(src, s))
			}
			b, err := schema.EncodeFrames(mem, "tiny", fs)
			if err != nil {
				e.t.Fatal(err)
			}
			id, _ := schema.MsgID(src, seq)
			if _, err := e.js.Publish(e.ctx, subj, b, jetstream.WithMsgID(id)); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// results reads every JSON result of model tiny stored in RESULTS, in
// stream order.
func (e *env) results() []schema.Result {
	e.t.Helper()
	cons, err := e.js.OrderedConsumer(e.ctx, e.subj.StreamName(schema.StreamResults), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"vireo.results.tiny.*"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []schema.Result
	for range info.NumPending {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		var r schema.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			e.t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			e.t.Fatalf("stored result: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// waitResults waits until n results are stored.
func (e *env) waitResults(n int) []schema.Result {
	e.t.Helper()
	var rs []schema.Result
	checkFor(e.t, 30*time.Second, func() error {
		rs = e.results()
		if len(rs) < n {
			return fmt.Errorf("%d of %d results", len(rs), n)
		}
		return nil
	})
	return rs
}

// checkExactlyOnce checks one result per (source, seq) for seq < n, in
// order per source.
func checkExactlyOnce(t *testing.T, rs []schema.Result, sources []string, n uint64) {
	t.Helper()
	next := map[string]uint64{}
	for _, r := range rs {
		if r.Seq != next[r.Source] {
			t.Fatalf("source %s: result for seq %d, want seq %d next (missing, duplicated or out of order)", r.Source, r.Seq, next[r.Source])
		}
		next[r.Source]++
	}
	for _, s := range sources {
		if next[s] != n {
			t.Fatalf("source %s: %d results, want %d", s, next[s], n)
		}
	}
	if len(rs) != len(sources)*int(n) {
		t.Fatalf("results (got=%d, want=%d)", len(rs), len(sources)*int(n))
	}
}

func TestFramesToResults(t *testing.T) {
	e := newEnv(t)
	svc := e.start(Config{})
	sources := []string{"cam1", "cam2", "cam3"}
	e.publishFrames(sources, 0, 40, 3)
	rs := e.waitResults(120)
	checkExactlyOnce(t, rs, sources, 40)
	for _, r := range rs {
		if r.ModelVersion != "v0001" || r.Model != "tiny" || r.Task != schema.TaskClassification {
			t.Fatalf("result %+v", r)
		}
	}
	// Every message acked: nothing pending on the consumer.
	checkFor(t, 10*time.Second, func() error {
		c, err := e.js.Consumer(e.ctx, "FRAMES", "infer-tiny")
		if err != nil {
			return err
		}
		info, err := c.Info(e.ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		return nil
	})
	if got := counterOf(svc.reg, "vireo_infer_frames_total"); got != 120 {
		t.Errorf("frames_total (got=%v, want=120)", got)
	}
	// The Arrow result batches hold the same frames.
	cons, err := e.js.OrderedConsumer(e.ctx, "RESULTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vireo.results.arrow.tiny"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := cons.Info(e.ctx)
	arrowRows := 0
	for range info.NumPending {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		batch, err := schema.DecodeResults(memory.NewGoAllocator(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		arrowRows += len(batch)
	}
	if arrowRows != 120 {
		t.Errorf("arrow result rows (got=%d, want=120)", arrowRows)
	}
}

// counterOf sums a counter family of a registry over its labels.
func counterOf(reg *prometheus.Registry, name string) float64 {
	sum := 0.0
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestPoisonIsTerminatedWithAnError(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	errs := make(chan *nats.Msg, 8)
	sub, err := e.nc.ChanSubscribe("vireo.errors.infer", errs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subj, _ := e.subj.Frames("tiny")
	reply := nats.NewInbox()
	replies := make(chan *nats.Msg, 8)
	rsub, _ := e.nc.ChanSubscribe(reply, replies)
	defer rsub.Unsubscribe()

	m := nats.NewMsg(subj)
	m.Data = []byte("this is not an arrow stream")
	m.Header.Set(schema.HeaderReply, reply)
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	wrong := frame("cam", 5)
	wrong.Width, wrong.Height = 4, 4
	wrong.Pixels = wrong.Pixels[:4*4*3]
	b, err := schema.EncodeFrames(memory.NewGoAllocator(), "tiny", []schema.Frame{wrong})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(e.ctx, subj, b); err != nil {
		t.Fatal(err)
	}
	// A good frame after the poison still gets its result.
	e.publishFrames([]string{"cam"}, 0, 1, 1)

	want := []string{ReasonMalformed, ReasonInputSize}
	for i, reason := range want {
		select {
		case em := <-errs:
			var got schema.Error
			if err := json.Unmarshal(em.Data, &got); err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			if got.Reason != reason || got.Model != "tiny" {
				t.Fatalf("error %d: %+v (want reason %s)", i, got, reason)
			}
			if reason == ReasonInputSize && (got.Source != "cam" || got.Seq != 5) {
				t.Fatalf("input_size error names (got=%s/%d, want=cam/5)", got.Source, got.Seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no error message for %s", reason)
		}
	}
	select {
	case rm := <-replies:
		var got schema.Error
		if err := json.Unmarshal(rm.Data, &got); err != nil || got.Reason != ReasonMalformed {
			t.Fatalf("reply to a malformed request: %s (%v)", rm.Data, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no JSON error on the reply subject")
	}
	rs := e.waitResults(1)
	if len(rs) != 1 || rs[0].Source != "cam" || rs[0].Seq != 0 {
		t.Fatalf("results after poison: %+v", rs)
	}
	// Terminated, not redelivered: nothing left pending or awaiting ack.
	checkFor(t, 10*time.Second, func() error {
		c, _ := e.js.Consumer(e.ctx, "FRAMES", "infer-tiny")
		info, err := c.Info(e.ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 {
			return fmt.Errorf("consumer %+v", info)
		}
		return nil
	})
}

func TestReplyHeaderGetsTheResult(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	subj, _ := e.subj.Frames("tiny")
	b, err := schema.EncodeFrames(memory.NewGoAllocator(), "tiny", []schema.Frame{frame("http-1", 0)})
	if err != nil {
		t.Fatal(err)
	}
	reply := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(reply)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(schema.HeaderReply, reply)
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	rm, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r schema.Result
	if err := json.Unmarshal(rm.Data, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil || r.Source != "http-1" || r.ModelVersion != "v0001" {
		t.Fatalf("reply %+v (%v)", r, err)
	}
}

func TestVersionSwitchMidStream(t *testing.T) {
	e := newEnv(t)
	svc := e.start(Config{})
	sources := []string{"a", "b"}
	e.publishFrames(sources, 0, 30, 2)
	if _, err := e.store.Promote(e.ctx, "tiny", "v0002", "test switch"); err != nil {
		t.Fatal(err)
	}
	e.publishFrames(sources, 30, 60, 2)
	// Wait until the new version serves, then send the rest.
	checkFor(t, 20*time.Second, func() error {
		if n := counterOf(svc.reg, "vireo_infer_model_swaps_total"); n < 2 {
			return fmt.Errorf("swaps %v", n)
		}
		return nil
	})
	e.publishFrames(sources, 60, 80, 2)
	rs := e.waitResults(160)
	checkExactlyOnce(t, rs, sources, 80)
	switched := map[string]bool{}
	for _, r := range rs {
		switch {
		case r.ModelVersion == "v0002":
			switched[r.Source] = true
		case switched[r.Source]:
			t.Fatalf("source %s seq %d has %s after a v0002 result", r.Source, r.Seq, r.ModelVersion)
		case r.ModelVersion != "v0001":
			t.Fatalf("version %q", r.ModelVersion)
		}
		if r.Seq >= 60 && r.ModelVersion != "v0002" {
			t.Fatalf("source %s seq %d published after the switch has %s", r.Source, r.Seq, r.ModelVersion)
		}
	}
	// The versions really differ: v0001 (weights I) picks the brightest
	// RGB channel, v0002 (weights -I) the darkest.
	labels := []string{"red", "green", "blue"}
	for _, r := range rs {
		f := frame(r.Source, r.Seq)
		rgb := []byte{f.Pixels[2], f.Pixels[1], f.Pixels[0]}
		best := 0
		for c := range rgb {
			if (r.ModelVersion == "v0001" && rgb[c] > rgb[best]) || (r.ModelVersion == "v0002" && rgb[c] < rgb[best]) {
				best = c
			}
		}
		if r.Labels[0] != labels[best] {
			t.Fatalf("%s/%d on %s: label %s (want %s for rgb %v)", r.Source, r.Seq, r.ModelVersion, r.Labels[0], labels[best], rgb)
		}
	}
}

func TestTwoReplicasShareTheConsumer(t *testing.T) {
	e := newEnv(t)
	s1 := e.start(Config{PullMaxMessages: 2})
	s2 := e.start(Config{PullMaxMessages: 2})
	sources := []string{"x", "y", "z", "w"}
	e.publishFrames(sources, 0, 50, 2)
	rs := e.waitResults(200)
	// Across replicas only exactly-once holds, not order per source.
	slices.SortFunc(rs, func(a, b schema.Result) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	checkExactlyOnce(t, rs, sources, 50)
	n1 := counterOf(s1.reg, "vireo_infer_frames_total")
	n2 := counterOf(s2.reg, "vireo_infer_frames_total")
	if n1 == 0 || n2 == 0 || n1+n2 < 200 {
		t.Fatalf("frames per replica %v + %v (want both > 0, sum >= 200)", n1, n2)
	}
}

func TestEveryModelMode(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Models: []string{}}) // none named: every model in the store
	e.publishFrames([]string{"cam"}, 0, 10, 4)
	checkExactlyOnce(t, e.waitResults(10), []string{"cam"}, 10)
}
