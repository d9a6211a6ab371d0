package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Deps are what a service's Run needs from its host (cmd/vireo or a test).
type Deps struct {
	// NC is the NATS connection; the host owns it (Run must not close it).
	NC *nats.Conn
	// Log is the service's logger.
	Log zerolog.Logger
	// Metrics registers the service's collectors; nil means a private
	// registry nobody scrapes (tests).
	Metrics prometheus.Registerer
	// Health receives the service's readiness checks; nil means a private
	// one.
	Health *Health
}

// WithDefaults fills nil fields so a service can use them unconditionally.
func (d Deps) WithDefaults() Deps {
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	if d.Health == nil {
		d.Health = NewHealth()
	}
	return d
}

// ErrNotReady is wrapped by Health.Ready when a check fails.
var ErrNotReady = errors.New("ops: not ready")

// Health is a set of named readiness checks.
type Health struct {
	mu     sync.Mutex
	checks map[string]error
}

// NewHealth returns an empty (ready) Health.
func NewHealth() *Health { return &Health{checks: map[string]error{}} }

// Set records check name's state: nil is ready. A check that was never set
// does not count; call Set(name, errStarting) early for one that must pass
// before the service is ready.
func (h *Health) Set(name string, err error) {
	h.mu.Lock()
	h.checks[name] = err
	h.mu.Unlock()
}

// Ready returns nil when every check is nil, else an error wrapping
// ErrNotReady that names every failing check.
func (h *Health) Ready() error {
	bad := h.failing()
	if len(bad) == 0 {
		return nil
	}
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	msg := ""
	for i, n := range names {
		if i > 0 {
			msg += "; "
		}
		msg += n + ": " + bad[n]
	}
	return fmt.Errorf("%w: %s", ErrNotReady, msg)
}

func (h *Health) failing() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	bad := map[string]string{}
	for n, err := range h.checks {
		if err != nil {
			bad[n] = err.Error()
		}
	}
	return bad
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handle adds /metrics (from g), /healthz and /readyz (from h) to mux.
func Handle(mux *http.ServeMux, g prometheus.Gatherer, h *Health) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bad := h.failing()
		if len(bad) == 0 {
			_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "not ready", "failing": bad})
	})
}

// Serve runs an HTTP server for handler on addr until ctx is done, then
// shuts it down gracefully (in-flight requests get up to 10 s). ready, when
// not nil, receives the bound address once listening (use addr ":0" in
// tests). It returns nil after a shutdown caused by ctx.
func Serve(ctx context.Context, addr string, handler http.Handler, log zerolog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	if ready != nil {
		ready(ln.Addr())
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("http listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ops: serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("http shutdown")
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops: serve %s: %w", addr, err)
	}
	return nil
}

// NameRecorder is a prometheus.Registerer that records the fully
// qualified names of the metrics registered with it and keeps nothing
// else: a service lists what it exports by building its metrics against
// one (see each service's MetricNames).
type NameRecorder struct{ names []string }

var _ prometheus.Registerer = (*NameRecorder)(nil)

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register records c's metric names.
func (r *NameRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return nil
}

// MustRegister records the names of cs.
func (r *NameRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

// Unregister does nothing and reports false.
func (r *NameRecorder) Unregister(prometheus.Collector) bool { return false }

// Names returns the recorded names, sorted.
func (r *NameRecorder) Names() []string {
	out := slices.Clone(r.names)
	slices.Sort(out)
	return slices.Compact(out)
}
