package frames

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"vireo/pkg/model"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/pkg/natsembed/natstest"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
)

const dataDir = "/usr/share/doc/opencv-doc/examples/data"

func dataFile(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(dataDir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("opencv-doc sample %s not installed (apt-get install opencv-doc): %v", name, err)
	}
	return p
}

// env is an embedded JetStream server with the streams provisioned and a
// tiny model of input size w x h serving as "people".
type env struct {
	t    *testing.T
	srv  *natsembed.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	subj schema.Subjects
	w, h int
	// keepPixels: storedFrames returns the pixels too.
	keepPixels bool
}

const testModel = "people"

func newEnv(t *testing.T, w, h int) *env {
	t.Helper()
	b, m := modeltest.TinyClassifier(t, w, h, 1, [3]string{"a", "b", "c"})
	return newEnvModel(t, w, h, b, m)
}

// newEnvModel is newEnv with the given model (ONNX bytes and manifest) as
// "people".
func newEnvModel(t *testing.T, w, h int, b []byte, m model.Manifest) *env {
	t.Helper()
	srv, nc, js := natstest.Start(t)
	ctx := testCtx(t)
	subj, _ := schema.NewSubjects("")
	if err := schema.Provision(ctx, js, subj, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, subj.SourcesKV(1).Bucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Push(ctx, testModel, b, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, testModel, v, "test"); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, nc: nc, js: js, kv: kv, subj: subj, w: w, h: h}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// running is a frames service started by start.
type running struct {
	reg    *prometheus.Registry
	health *ops.Health
	cancel context.CancelFunc
	done   chan error
}

// start runs the service on nc (the env's connection when nil).
func (e *env) start(cfg Config, nc *nats.Conn) *running {
	e.t.Helper()
	if nc == nil {
		nc = e.nc
	}
	cfg.NoProvision = true
	r := &running{reg: prometheus.NewRegistry(), health: ops.NewHealth(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- Run(ctx, cfg, ops.Deps{NC: nc, Log: zerolog.Nop(), Metrics: r.reg, Health: r.health})
	}()
	e.t.Cleanup(func() { r.stop(e.t) })
	checkFor(e.t, 20*time.Second, func() error { return r.health.Ready() })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of cancel")
	}
}

func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// register puts a registration under id.
func (e *env) register(id, url string, everyN int) {
	e.t.Helper()
	b, _ := json.Marshal(schema.SourceRegistration{SchemaVersion: schema.Version, ID: id, URL: url, Model: testModel, EveryN: everyN})
	if _, err := e.kv.Put(testCtx(e.t), id, b); err != nil {
		e.t.Fatal(err)
	}
}

// events subscribes to a source's events and the frames errors.
func (e *env) events(source string) (eos chan schema.EndOfStream, errs chan schema.Error) {
	e.t.Helper()
	eos = make(chan schema.EndOfStream, 16)
	errs = make(chan schema.Error, 256)
	evSubj, _ := e.subj.Events(source)
	sub, err := e.nc.Subscribe(evSubj, func(m *nats.Msg) {
		var v schema.EndOfStream
		if err := json.Unmarshal(m.Data, &v); err == nil {
			eos <- v
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	errSubj, _ := e.subj.Errors(Service)
	sub2, err := e.nc.Subscribe(errSubj, func(m *nats.Msg) {
		var v schema.Error
		if err := json.Unmarshal(m.Data, &v); err == nil && v.Source == source {
			select {
			case errs <- v:
			default:
			}
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub2.Unsubscribe() })
	_ = e.nc.Flush()
	return eos, errs
}

func waitEOS(t *testing.T, ch chan schema.EndOfStream, timeout time.Duration) schema.EndOfStream {
	t.Helper()
	select {
	case v := <-ch:
		if err := v.Validate(); err != nil {
			t.Fatalf("end of stream event invalid: %v (%+v)", err, v)
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("no end-of-stream event within %v", timeout)
	}
	return schema.EndOfStream{}
}

func waitError(t *testing.T, ch chan schema.Error, timeout time.Duration) schema.Error {
	t.Helper()
	select {
	case v := <-ch:
		if err := v.Validate(); err != nil {
			t.Fatalf("error message invalid: %v (%+v)", err, v)
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("no error message within %v", timeout)
	}
	return schema.Error{}
}

// storedFrame is one frame read back from FRAMES with its message's ids.
type storedFrame struct {
	msgID string
	frame schema.Frame
}

// storedFrames reads every frame batch of source stored in FRAMES, in
// stream order, decoding each under a checked allocator.
func (e *env) storedFrames(source string) []storedFrame {
	e.t.Helper()
	ctx := testCtx(e.t)
	subject, _ := e.subj.Frames(testModel)
	st, err := e.js.Stream(ctx, e.subj.StreamName(schema.StreamFrames))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		e.t.Fatal(err)
	}
	n := int(info.State.Subjects[subject])
	if n == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []storedFrame
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(e.t, 0)
	for got := 0; got < n; {
		batch, err := cons.Fetch(min(n-got, 64), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		for m := range batch.Messages() {
			got++
			if v := m.Headers().Get(schema.HeaderSchemaVersion); v != "1" {
				e.t.Fatalf("schema version header %q (want 1)", v)
			}
			fb, err := schema.DecodeFrames(mem, m.Data())
			if err != nil {
				e.t.Fatal(err)
			}
			for i := 0; i < fb.Len(); i++ {
				f := fb.Frame(i)
				if f.Source == source {
					if e.keepPixels {
						f.Pixels = bytes.Clone(f.Pixels) // fb's memory goes at Release
					} else {
						f.Pixels = nil
					}
					out = append(out, storedFrame{msgID: m.Headers().Get(jetstream.MsgIDHeader), frame: f})
				}
			}
			fb.Release()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			e.t.Fatal(err)
		}
	}
	return out
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// throttle is a TCP proxy to target that forwards client-to-server bytes
// at about rate bytes/s: a slow link to NATS, which makes JetStream
// publishes wait (real backpressure).
type throttle struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newThrottle(t *testing.T, target string, rate int) *throttle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttle{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				defer up.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer p.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *throttle) url() string { return "nats://" + p.ln.Addr().String() }
