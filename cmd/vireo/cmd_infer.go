package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"vireo/pkg/backend"
	"vireo/pkg/ops"
	"vireo/services/infer"
)

func init() {
	register(command{"infer", "run the inference service against an external NATS (--model, --backend, --max-batch, --max-delay, --metrics-addr)", runInfer})
}

// inferFlags are `vireo infer`'s flags.
type inferFlags struct {
	nats        *natsFlags
	models      string
	backend     *backend.Config // --backend, --threads, --math
	maxBatch    int
	maxInFlight int
	maxDelay    string
	replicas    int
	metricsAddr string
	logFormat   string
	noKeep      bool
	keepWindow  string
}

func addInferFlags(fs *flag.FlagSet) *inferFlags {
	f := &inferFlags{nats: addNATSFlags(fs)}
	fs.StringVar(&f.models, "model", envOr("VIREO_MODEL", ""), "comma-separated models to serve; empty serves every model in the store [VIREO_MODEL]")
	f.backend = backendFlags(fs)
	fs.IntVar(&f.maxBatch, "max-batch", envInt("VIREO_MAX_BATCH", 16), "largest batch run at once [VIREO_MAX_BATCH]")
	fs.IntVar(&f.maxInFlight, "max-in-flight", envInt("VIREO_MAX_IN_FLIGHT", 4), "computed batches that may be publishing their results while the next runs, 1..64 [VIREO_MAX_IN_FLIGHT]")
	fs.StringVar(&f.maxDelay, "max-delay", envOr("VIREO_MAX_DELAY", "5ms"), "how long a frame may wait for a fuller batch [VIREO_MAX_DELAY]")
	fs.IntVar(&f.replicas, "replicas", envInt("VIREO_REPLICAS", 1), "replicas of the streams, buckets and consumer it creates [VIREO_REPLICAS]")
	fs.StringVar(&f.metricsAddr, "metrics-addr", envOr("VIREO_METRICS_ADDR", ":9090"), "address of /metrics, /healthz and /readyz; empty: none [VIREO_METRICS_ADDR]")
	fs.StringVar(&f.logFormat, "log-format", envOr("VIREO_LOG_FORMAT", "console"), "log format: console or json [VIREO_LOG_FORMAT]")
	fs.BoolVar(&f.noKeep, "no-keep", envOr("VIREO_NO_KEEP", "") == "1", "do not keep the input frames of results for corrections [VIREO_NO_KEEP=1]")
	fs.StringVar(&f.keepWindow, "keep-window", envOr("VIREO_KEEP_WINDOW", "24h"), "how long input frames are kept for corrections (FRAMES_KEEP max age) [VIREO_KEEP_WINDOW]")
	return f
}

// config turns the flags into the service's Config, validated here so a
// bad flag is a usage error (infer.Run applies the remaining defaults).
func (f *inferFlags) config() (infer.Config, error) {
	d, err := time.ParseDuration(f.maxDelay)
	if err != nil {
		return infer.Config{}, usagef("infer: --max-delay %q: %v", f.maxDelay, err)
	}
	var models []string
	for _, m := range strings.Split(f.models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	if f.logFormat != "console" && f.logFormat != "json" {
		return infer.Config{}, usagef("infer: --log-format %q (want console or json)", f.logFormat)
	}
	if f.maxBatch < 1 {
		return infer.Config{}, usagef("infer: --max-batch %d (want >= 1)", f.maxBatch)
	}
	if d <= 0 {
		return infer.Config{}, usagef("infer: --max-delay %v (want > 0)", d)
	}
	keep, err := time.ParseDuration(f.keepWindow)
	if err != nil {
		return infer.Config{}, usagef("infer: --keep-window %q: %v", f.keepWindow, err)
	}
	cfg := infer.Config{
		Prefix: f.nats.prefix, Models: models, Backend: f.backend.Name, Threads: f.backend.Threads, Math: f.backend.Math,
		Replicas: f.replicas, MaxBatch: f.maxBatch, MaxInFlight: f.maxInFlight, MaxDelay: d,
		NoKeep: f.noKeep, KeepWindow: keep,
	}
	if err := cfg.Check(); err != nil {
		return infer.Config{}, usagef("%v", err)
	}
	return cfg, nil
}

// serviceLogger is the logger of a service command: JSON lines, or
// human-readable console output.
func serviceLogger(format string, stderr io.Writer) zerolog.Logger {
	var w io.Writer = stderr
	if format != "json" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

func runInfer(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("infer", stderr)
	f := addInferFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	return runService(ctx, "infer", f.nats, f.logFormat, f.metricsAddr, stderr, func(ctx context.Context, deps ops.Deps) error {
		return infer.Run(ctx, cfg, deps)
	})
}

// runWithOps runs a service with /metrics, /healthz and /readyz on addr
// (none when addr is empty). The HTTP server stops when the service
// returns (or fails to listen, which stops the service); both are joined.
func runWithOps(ctx context.Context, addr string, g prometheus.Gatherer, deps ops.Deps, run func(context.Context) error) error {
	if addr == "" {
		return run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mux := http.NewServeMux()
	ops.Handle(mux, g, deps.Health)
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = ops.Serve(ctx, addr, mux, deps.Log, nil)
		cancel() // a server that cannot listen stops the service too
	})
	err := run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(err, serveErr)
}
