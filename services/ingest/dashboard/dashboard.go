package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"vireo/pkg/schema"
)

//go:embed static
var assets embed.FS

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("dashboard: invalid config")

// Config of the dashboard.
type Config struct {
	// Prefix is the subject prefix ("" means schema.DefaultPrefix).
	Prefix string `json:"prefix"`
	// ClientBuffer is how many events one client's queue holds before the
	// oldest is dropped.
	ClientBuffer int `json:"client_buffer"`
	// MaxClients bounds the event streams open at once.
	MaxClients int `json:"max_clients"`
	// MaxLatest bounds the (model, source) pairs whose last result is
	// replayed to a new client.
	MaxLatest int `json:"max_latest"`
	// StatsEvery is the period of the stats event.
	StatsEvery time.Duration `json:"stats_every"`
	// KeepAlive is the period of an SSE comment on an idle stream.
	KeepAlive time.Duration `json:"keep_alive"`
	// RequestTimeout bounds a kept-frame read.
	RequestTimeout time.Duration `json:"request_timeout"`
}

func (c *Config) setDefaults() {
	if c.ClientBuffer == 0 {
		c.ClientBuffer = 64
	}
	if c.MaxClients == 0 {
		c.MaxClients = 64
	}
	if c.MaxLatest == 0 {
		c.MaxLatest = 256
	}
	if c.StatsEvery == 0 {
		c.StatsEvery = time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
}

// Validate reports the first unusable field (after defaults).
func (c Config) Validate() error {
	if _, err := schema.NewSubjects(c.Prefix); err != nil {
		return fmt.Errorf("%w: prefix: %w", ErrConfig, err)
	}
	bad := func(field string, got any, want string) error {
		return fmt.Errorf("%w: %s (got=%v, want %s)", ErrConfig, field, got, want)
	}
	switch {
	case c.ClientBuffer < 1 || c.ClientBuffer > 1<<16:
		return bad("client_buffer", c.ClientBuffer, "1..65536")
	case c.MaxClients < 1:
		return bad("max_clients", c.MaxClients, ">= 1")
	case c.MaxLatest < 1:
		return bad("max_latest", c.MaxLatest, ">= 1")
	case c.StatsEvery <= 0:
		return bad("stats_every", c.StatsEvery, "> 0")
	case c.KeepAlive <= 0:
		return bad("keep_alive", c.KeepAlive, "> 0")
	case c.RequestTimeout <= 0:
		return bad("request_timeout", c.RequestTimeout, "> 0")
	}
	return nil
}

// Dashboard serves the web dashboard and its event stream. Use New, then
// Register on a mux and Run.
type Dashboard struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	subj  schema.Subjects
	log   zerolog.Logger
	gath  prometheus.Gatherer // nil: no stats from the registry
	met   *metrics
	index []byte

	mu      sync.Mutex
	clients map[*client]struct{}
	latest  map[string][]byte // "<model>.<source>" -> last result event
	order   []string          // keys of latest, oldest first
	closed  bool
	streams sync.WaitGroup // stream handlers
}

// New returns a dashboard reading from nc. reg receives its metrics; when
// reg is also a prometheus.Gatherer, the stats event reads frame counters
// from it.
func New(cfg Config, nc *nats.Conn, reg prometheus.Registerer, log zerolog.Logger) (*Dashboard, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: nats connection is nil", ErrConfig)
	}
	subj, _ := schema.NewSubjects(cfg.Prefix)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dashboard: jetstream: %w", err)
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	index, err := assets.ReadFile("static/index.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: embedded index: %w", err)
	}
	g, _ := reg.(prometheus.Gatherer)
	return &Dashboard{cfg: cfg, nc: nc, js: js, subj: subj, log: log.With().Str("component", "dashboard").Logger(),
		gath: g, met: met, index: index, clients: map[*client]struct{}{}, latest: map[string][]byte{}}, nil
}

// Register adds the dashboard's routes to mux.
func (d *Dashboard) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "static")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(d.index)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /v1/events", d.serveEvents)
	mux.HandleFunc("GET /v1/models/{model}/sources/{source}/frames/{seq}", d.serveFrame)
}

// Run subscribes to results, end-of-stream events, errors and serving
// version changes, sends stats every StatsEvery, and when ctx is done
// unsubscribes, ends every client's stream and waits for the stream
// handlers. It returns an error only when it cannot subscribe.
func (d *Dashboard) Run(ctx context.Context) error {
	modelsKV := "$KV." + d.subj.ModelsKV(1).Bucket + ".*"
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		d.mu.Lock()
		d.closed = true
		for c := range d.clients {
			c.close()
		}
		d.mu.Unlock()
		d.streams.Wait()
	}()
	for _, sc := range []struct {
		subject string
		fn      nats.MsgHandler
	}{
		{d.subj.ResultsAll(), d.onResult},
		{d.subj.EventsAll(), func(m *nats.Msg) { d.broadcast("end", m.Data) }},
		{d.subj.ErrorsAll(), func(m *nats.Msg) { d.broadcast("error", m.Data) }},
		{modelsKV, d.onModel},
	} {
		s, err := d.nc.Subscribe(sc.subject, sc.fn)
		if err != nil {
			return fmt.Errorf("dashboard: subscribe %s: %w", sc.subject, err)
		}
		_ = s.SetPendingLimits(4096, 64<<20)
		subs = append(subs, s)
	}
	if err := d.nc.Flush(); err != nil {
		return fmt.Errorf("dashboard: subscribe: %w", err)
	}
	t := time.NewTicker(d.cfg.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if b := d.stats(); b != nil {
				d.broadcast("stats", b)
			}
		}
	}
}

// onResult forwards a JSON result (not the Arrow batches on
// results.arrow.<model>) and remembers it as its (model, source)'s latest.
func (d *Dashboard) onResult(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, d.subj.Prefix()+".results.")
	model, source, ok := strings.Cut(rest, ".")
	if !ok || model == "arrow" || strings.Contains(source, ".") {
		return
	}
	data := oneLine(m.Data)
	if data == nil {
		return
	}
	ev := event("result", data)
	key := model + "." + source
	d.mu.Lock()
	if _, seen := d.latest[key]; !seen {
		if len(d.order) >= d.cfg.MaxLatest {
			delete(d.latest, d.order[0])
			d.order = d.order[1:]
		}
		d.order = append(d.order, key)
	}
	d.latest[key] = ev
	d.mu.Unlock()
	d.send(ev)
}

// onModel forwards a serving pointer put on the MODELS bucket (keys with a
// dot are version counters, not models; deletes have no body).
func (d *Dashboard) onModel(m *nats.Msg) {
	key := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if schema.ValidateModel(key) != nil || len(m.Data) == 0 {
		return
	}
	d.broadcast("model", m.Data)
}

// oneLine returns b as a single line of valid JSON (SSE data lines end at
// a newline), or nil when b is not JSON.
func oneLine(b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		if !json.Valid(b) {
			return nil
		}
		return b
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return nil
	}
	return buf.Bytes()
}

func event(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func (d *Dashboard) broadcast(name string, data []byte) {
	if data = oneLine(data); data != nil {
		d.send(event(name, data))
	}
}

func (d *Dashboard) send(ev []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.clients {
		if c.push(ev) {
			d.met.dropped.Inc()
		}
	}
}

// stats reads frame counters per source from the registry.
func (d *Dashboard) stats() []byte {
	st := struct {
		Dropped       map[string]float64 `json:"dropped"`
		Published     map[string]float64 `json:"published"`
		Clients       int                `json:"clients"`
		EventsDropped float64            `json:"events_dropped"`
	}{Dropped: map[string]float64{}, Published: map[string]float64{}}
	if d.gath != nil {
		mfs, err := d.gath.Gather()
		if err != nil {
			d.log.Debug().Err(err).Msg("gather")
		}
		for _, mf := range mfs {
			var into map[string]float64
			switch mf.GetName() {
			case "vireo_frames_dropped_total":
				into = st.Dropped
			case "vireo_frames_published_total":
				into = st.Published
			case "vireo_ingest_dashboard_events_dropped_total":
				for _, m := range mf.GetMetric() {
					st.EventsDropped += m.GetCounter().GetValue()
				}
				continue
			default:
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "source" {
						into[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	d.mu.Lock()
	st.Clients = len(d.clients)
	d.mu.Unlock()
	b, _ := json.Marshal(st)
	return b
}

// client is one event stream's bounded queue.
type client struct {
	mu     sync.Mutex
	q      [][]byte // ring buffer of events
	head   int
	n      int
	wake   chan struct{} // cap 1: an event is queued or the client closed
	closed bool
}

func newClient(size int) *client {
	return &client{q: make([][]byte, size), wake: make(chan struct{}, 1)}
}

// push queues ev, dropping the oldest queued event when full; it reports
// whether one was dropped.
func (c *client) push(ev []byte) (dropped bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	if c.n == len(c.q) {
		c.q[c.head] = nil
		c.head = (c.head + 1) % len(c.q)
		c.n--
		dropped = true
	}
	c.q[(c.head+c.n)%len(c.q)] = ev
	c.n++
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return dropped
}

// take moves every queued event out (oldest first) and reports whether the
// client is closed.
func (c *client) take(into [][]byte) ([][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 {
		into = append(into, c.q[c.head])
		c.q[c.head] = nil
		c.head = (c.head + 1) % len(c.q)
		c.n--
	}
	return into, c.closed
}

func (c *client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// serveEvents streams events to one client until it goes away or Run
// ends.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := newClient(d.cfg.ClientBuffer)
	d.mu.Lock()
	if d.closed || len(d.clients) >= d.cfg.MaxClients {
		n := len(d.clients)
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"error":"dashboard: %d event streams open (max %d)","reason":"busy"}`+"\n", n, d.cfg.MaxClients)
		return
	}
	d.clients[c] = struct{}{}
	for _, k := range d.order { // the latest frame of every stream first
		c.push(d.latest[k])
	}
	d.streams.Add(1)
	d.mu.Unlock()
	d.met.clients.Inc()
	defer func() {
		d.mu.Lock()
		delete(d.clients, c)
		d.mu.Unlock()
		d.met.clients.Dec()
		d.streams.Done()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 1000\n: vireo\n\n")); err != nil {
		return
	}
	_ = rc.Flush()
	ping := time.NewTicker(d.cfg.KeepAlive)
	defer ping.Stop()
	var batch [][]byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
		case <-c.wake:
			var closed bool
			batch, closed = c.take(batch[:0])
			for _, ev := range batch {
				if _, err := w.Write(ev); err != nil {
					return
				}
			}
			clear(batch)
			if closed {
				_ = rc.Flush()
				return
			}
		}
		_ = rc.SetWriteDeadline(time.Now().Add(d.cfg.KeepAlive * 2))
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
