package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed/natstest"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
)

const dataDir = "/usr/share/doc/opencv-doc/examples/data"

func readData(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, name))
	if err != nil {
		tb.Skipf("opencv-doc sample %s not installed (apt-get install opencv-doc): %v", name, err)
	}
	return b
}

const (
	testModel = "people"
	modelW    = 32
	modelH    = 24
)

type env struct {
	t     *testing.T
	nc    *nats.Conn
	js    jetstream.JetStream
	subj  schema.Subjects
	base  string // http://host:port
	reg   *prometheus.Registry
	errsC chan schema.Error
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newEnv starts an embedded JetStream server, pushes a tiny model
// (modelW x modelH) as testModel, starts a fake infer responder (see
// fakeInfer) when responder is true, and runs ingest on a free port.
func newEnv(t *testing.T, cfg Config, responder bool) *env {
	t.Helper()
	_, nc, js := natstest.Start(t)
	ctx := testCtx(t)
	subj, _ := schema.NewSubjects("")
	if err := schema.Provision(ctx, js, subj, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	st, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, m := modeltest.TinyClassifier(t, modelW, modelH, 1, [3]string{"blue", "green", "red"})
	v, err := st.Push(ctx, testModel, b, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, testModel, v, "test"); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nc: nc, js: js, subj: subj, reg: prometheus.NewRegistry(), errsC: make(chan schema.Error, 64)}
	errSub, err := nc.Subscribe(subj.ErrorsAll(), func(m *nats.Msg) {
		var v schema.Error
		if json.Unmarshal(m.Data, &v) == nil {
			select {
			case e.errsC <- v:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = errSub.Unsubscribe() })
	if responder {
		e.fakeInfer()
	}
	addrC := make(chan net.Addr, 1)
	cfg.Addr = "127.0.0.1:0"
	cfg.NoProvision = true
	cfg.OnListen = func(a net.Addr) { addrC <- a }
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	health := ops.NewHealth()
	go func() { done <- Run(runCtx, cfg, ops.Deps{NC: nc, Log: zerolog.Nop(), Metrics: e.reg, Health: health}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of cancel")
		}
	})
	select {
	case a := <-addrC:
		e.base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("ingest did not listen within 20 s")
	}
	return e
}

// fakeInfer stands in for the infer service (tested end to end elsewhere):
// it answers every frame batch that carries a Vireo-Reply header with a
// classification Result computed from the frame's pixels (the label is the
// BGR channel with the largest mean), so the test sees that the decoded,
// resized image reached it.
func (e *env) fakeInfer() {
	var mu sync.Mutex
	sub, err := e.nc.Subscribe(e.subj.FramesAll(), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		reply := m.Header.Get(schema.HeaderReply)
		if reply == "" {
			return
		}
		fb, err := schema.DecodeFrames(memory.NewGoAllocator(), m.Data)
		if err != nil {
			_ = e.nc.Publish(reply, []byte(fmt.Sprintf(`{"schema_version":1,"error":%q,"reason":"malformed"}`, err.Error())))
			return
		}
		defer fb.Release()
		f := fb.Frame(0)
		var sum [3]float64
		for i, p := range f.Pixels {
			sum[i%3] += float64(p)
		}
		labels := []string{"blue", "green", "red"}
		best, total := 0, sum[0]+sum[1]+sum[2]
		scores := map[string]float64{}
		for c := range 3 {
			if sum[c] > sum[best] {
				best = c
			}
			scores[labels[c]] = sum[c] / max(total, 1)
		}
		r := schema.Result{
			SchemaVersion: schema.Version, Source: f.Source, Seq: f.Seq, TS: f.Captured, Model: fb.Model,
			ModelVersion: "v0001", Task: schema.TaskClassification, Labels: []string{labels[best]}, Scores: scores,
		}
		b, _ := json.Marshal(r)
		_ = e.nc.Publish(reply, b)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = e.nc.Flush()
}

// do sends an HTTP request and returns the status and body.
func (e *env) do(method, path, contentType string, body []byte) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(testCtx(e.t), method, e.base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// nextError returns the next message on <p>.errors.ingest.
func (e *env) nextError() schema.Error {
	e.t.Helper()
	select {
	case v := <-e.errsC:
		if err := v.Validate(); err != nil {
			e.t.Fatalf("error message invalid: %v (%+v)", err, v)
		}
		return v
	case <-time.After(10 * time.Second):
		e.t.Fatal("no message on the errors subject within 10 s")
	}
	return schema.Error{}
}
