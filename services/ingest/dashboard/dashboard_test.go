package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"vireo/pkg/natsembed/natstest"
	"vireo/pkg/schema"
)

type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj schema.Subjects
	d    *Dashboard
	srv  *httptest.Server
	stop func() // ends Run and waits for it
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	_, nc, js := natstest.Start(t)
	subj, _ := schema.NewSubjects("")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Provision(ctx, js, subj, 1, 0); err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, nc, prometheus.NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	rctx, rcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() { errc <- d.Run(rctx) })
	e := &env{nc: nc, js: js, subj: subj, d: d, srv: srv}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			rcancel()
			wg.Wait()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(func() { e.stop(); srv.Close() })
	return e
}

// sse reads events from /v1/events.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

func (e *env) events(t *testing.T) *sse {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data (io.EOF when the stream
// ended).
func (s *sse) next() (name, data string, err error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if name != "" {
				return name, data, nil
			}
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

// waitClients waits until n streams are registered (the subscription side
// of a stream is set up before its first byte is written, so this is only
// needed before publishing).
func (e *env) waitClients(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e.d.mu.Lock()
		got := len(e.d.clients)
		e.d.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("clients: want %d", n)
}

func result(source string, seq uint64) []byte {
	b, _ := json.Marshal(schema.Result{SchemaVersion: 1, Source: source, Seq: seq, TS: time.Now().UTC(), Model: "people",
		ModelVersion: "v0001", Task: schema.TaskRegression, Points: []schema.Point{{X: 1, Y: 2}}})
	return b
}

func TestEventsFanOutAndReplayLatest(t *testing.T) {
	e := newEnv(t, Config{StatsEvery: time.Hour})
	a := e.events(t)
	e.waitClients(t, 1)
	subj, _ := e.subj.Results("people", "cam1")
	arrow, _ := e.subj.ResultsArrow("people")
	for seq := uint64(1); seq <= 3; seq++ {
		if err := e.nc.Publish(arrow, []byte("not json, not for the dashboard")); err != nil {
			t.Fatal(err)
		}
		if err := e.nc.Publish(subj, result("cam1", seq)); err != nil {
			t.Fatal(err)
		}
	}
	end, _ := e.subj.Events("cam1")
	_ = e.nc.Publish(end, []byte(`{"schema_version":1,"event":"end_of_stream","source":"cam1","model":"people","frames":3,"reason":"eof"}`))
	// A serving-version change on the MODELS bucket, and its counter key.
	kv, err := e.js.KeyValue(context.Background(), e.subj.ModelsKV(1).Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "people.next", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "people", []byte(`{"model":"people","version":"v0002","reason":"test"}`)); err != nil {
		t.Fatal(err)
	}
	// Results, stream events and model changes arrive on separate
	// subscriptions, so only the order within each is guaranteed: the
	// results in publish order, then one end event and one model change
	// anywhere among them.
	var results, others []string
	for i := range 5 {
		name, data, err := a.next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		switch name {
		case "result":
			var r schema.Result
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				t.Fatalf("result data %q: %v", data, err)
			}
			results = append(results, fmt.Sprintf("result %d", r.Seq))
		case "model":
			var p struct{ Version string }
			_ = json.Unmarshal([]byte(data), &p)
			others = append(others, "model "+p.Version)
		default:
			others = append(others, name)
		}
	}
	slices.Sort(others)
	if got, want := strings.Join(results, ","), "result 1,result 2,result 3"; got != want {
		t.Fatalf("results in order %q, want %q", got, want)
	}
	if got, want := strings.Join(others, ","), "end,model v0002"; got != want {
		t.Fatalf("other events %q, want %q", got, want)
	}
	// A client opened later gets the latest result of cam1 first.
	b := e.events(t)
	name, data, err := b.next()
	if err != nil || name != "result" || !strings.Contains(data, `"seq":3`) {
		t.Fatalf("replayed event %q %q %v: want the result with seq 3", name, data, err)
	}
	// Shutdown ends both streams and Run returns.
	e.stop()
	for _, s := range []*sse{a, b} {
		for {
			if _, _, err := s.next(); err != nil {
				break // EOF: the server ended the stream
			}
		}
	}
}

func TestClientQueueDropsOldest(t *testing.T) {
	c := newClient(3)
	var dropped int
	for i := range 5 {
		if c.push([]byte{byte('a' + i)}) {
			dropped++
		}
	}
	got, closed := c.take(nil)
	if dropped != 2 || closed || string(bytes.Join(got, nil)) != "cde" {
		t.Fatalf("got %q dropped %d closed %v, want cde, 2 dropped, open", bytes.Join(got, nil), dropped, closed)
	}
	c.close()
	if c.push([]byte("x")) {
		t.Fatal("push after close dropped an event")
	}
	if got, closed := c.take(nil); len(got) != 0 || !closed {
		t.Fatalf("after close: %q closed %v", got, closed)
	}
}

// TestSlowClientDoesNotBlock: a client that never reads loses the oldest
// events (counted) while a reading client gets every one.
func TestSlowClientDoesNotBlock(t *testing.T) {
	e := newEnv(t, Config{ClientBuffer: 4, StatsEvery: time.Hour})
	slow := e.events(t) // never read
	_ = slow
	fast := e.events(t)
	e.waitClients(t, 2)
	subj, _ := e.subj.Results("people", "cam1")
	const n = 2000
	var got int
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := fmt.Sprintf(`"seq":%d,`, n)
		for {
			_, data, err := fast.next()
			if err != nil {
				return
			}
			got++
			if strings.Contains(data, last) { // drop-oldest never drops the newest
				return
			}
		}
	}()
	// ~20 KB an event, 40 MB in all: far more than the loopback socket
	// buffers can absorb for the client that never reads, so its queue
	// must overflow (with small events the kernel buffered them all and
	// the test failed about one run in four).
	points := make([]schema.Point, 1000)
	for i := range points {
		points[i] = schema.Point{X: float64(i) + 0.5, Y: float64(i) + 0.25}
	}
	for seq := uint64(1); seq <= n; seq++ {
		b, _ := json.Marshal(schema.Result{SchemaVersion: 1, Source: "cam1", Seq: seq, TS: time.Now().UTC(), Model: "people",
			ModelVersion: "v0001", Task: schema.TaskRegression, Points: points})
		if err := e.nc.Publish(subj, b); err != nil {
			t.Fatal(err)
		}
		if seq%4 == 0 {
			_ = e.nc.Flush()
			time.Sleep(100 * time.Microsecond) // let the reading client keep up with a 4-event queue
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the reading client did not get the last event; it got %d", got)
	}
	var dm dto.Metric
	if err := e.d.met.dropped.Write(&dm); err != nil {
		t.Fatal(err)
	}
	dropped := dm.GetCounter().GetValue()
	if dropped == 0 {
		t.Fatalf("no events dropped for a client that never reads %d events (queue 4)", n)
	}
	if got == 0 {
		t.Fatalf("the reading client got nothing")
	}
	t.Logf("reading client got %d of %d events; %v dropped in all", got, n, dropped)
}

func TestTooManyClients(t *testing.T) {
	e := newEnv(t, Config{MaxClients: 1, StatsEvery: time.Hour})
	e.events(t)
	e.waitClients(t, 1)
	resp, err := http.Get(e.srv.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "busy") {
		t.Fatalf("second stream: %s %s, want 503 busy", resp.Status, b)
	}
}

func TestKeptFrameAsPNG(t *testing.T) {
	e := newEnv(t, Config{})
	const w, h = 4, 3
	px := make([]byte, w*h*3)
	for i := range w * h {
		px[i*3], px[i*3+1], px[i*3+2] = 10, 20, byte(30+i) // B, G, R
	}
	f := schema.Frame{Source: "cam1", Seq: 7, Captured: time.Now(), OrigWidth: 640, OrigHeight: 480, Width: w, Height: h, Channels: 3, Pixels: px}
	b, err := schema.EncodeFrames(memory.NewGoAllocator(), "people", []schema.Frame{f})
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := e.subj.Kept("people", "cam1", 7)
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(HeaderKeptVersion, "v0003")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srv.URL + "/v1/models/people/sources/cam1/frames/7")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("frame: %s %s", resp.Status, body)
	}
	if resp.Header.Get("Vireo-Orig-Width") != "640" || resp.Header.Get("Vireo-Orig-Height") != "480" || resp.Header.Get(HeaderKeptVersion) != "v0003" {
		t.Fatalf("headers %v: want orig 640x480 and version v0003", resp.Header)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("png %v, want %dx%d", img.Bounds(), w, h)
	}
	r, g, bl, _ := img.At(1, 2).RGBA() // pixel index 9
	if r>>8 != 39 || g>>8 != 20 || bl>>8 != 10 {
		t.Fatalf("pixel (1,2) = %d,%d,%d, want RGB 39,20,10 (from BGR)", r>>8, g>>8, bl>>8)
	}
	for _, c := range []struct {
		path   string
		status int
		reason string
	}{
		{"/v1/models/people/sources/cam1/frames/8", 404, "frame_not_kept"},
		{"/v1/models/people/sources/cam1/frames/x", 400, "invalid_seq"},
		{"/v1/models/people/sources/c.m/frames/1", 400, "invalid_name"},
	} {
		resp, err := http.Get(e.srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.reason) {
			t.Errorf("%s: %s %s, want %d %s", c.path, resp.Status, b, c.status, c.reason)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t, Config{})
	for path, want := range map[string]string{"/": "<title>Vireo</title>", "/static/app.js": "EventSource", "/static/app.css": ".overlay"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %s, want 200 with %q", path, resp.Status, want)
		}
	}
	if resp, err := http.Get(e.srv.URL + "/nothing-here"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("/nothing-here: %s, want 404", resp.Status)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.ClientBuffer = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "client_buffer") {
		t.Fatalf("got %v, want a client_buffer error", err)
	}
}
