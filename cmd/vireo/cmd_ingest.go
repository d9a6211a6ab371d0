package main

import (
	"context"
	"flag"
	"io"
	"time"

	"vireo/pkg/ops"
	"vireo/services/ingest"
)

func init() {
	register(command{"ingest", "run the ingest service (HTTP API, NATS image subject) against an external NATS (--addr)", runIngest})
}

// ingestFlags are `vireo ingest`'s flags.
type ingestFlags struct {
	nats           *natsFlags
	addr           string
	replicas       int
	maxBodyBytes   int
	maxPixels      int
	maxInFlight    int
	predictTimeout string
	logFormat      string
}

func addIngestFlags(fs *flag.FlagSet) *ingestFlags {
	f := &ingestFlags{nats: addNATSFlags(fs)}
	fs.StringVar(&f.addr, "addr", envOr("VIREO_ADDR", ":8080"), "HTTP API address, also /metrics, /healthz, /readyz [VIREO_ADDR]")
	fs.IntVar(&f.replicas, "replicas", envInt("VIREO_REPLICAS", 1), "replicas of the streams and buckets it creates [VIREO_REPLICAS]")
	fs.IntVar(&f.maxBodyBytes, "max-body-bytes", envInt("VIREO_MAX_BODY_BYTES", 32<<20), "largest image body [VIREO_MAX_BODY_BYTES]")
	fs.IntVar(&f.maxPixels, "max-pixels", envInt("VIREO_MAX_PIXELS", 40_000_000), "most pixels an image may declare [VIREO_MAX_PIXELS]")
	fs.IntVar(&f.maxInFlight, "max-in-flight", envInt("VIREO_MAX_IN_FLIGHT", 64), "concurrent predictions before 429 busy [VIREO_MAX_IN_FLIGHT]")
	fs.StringVar(&f.predictTimeout, "predict-timeout", envOr("VIREO_PREDICT_TIMEOUT", "30s"), "wait for a prediction's result [VIREO_PREDICT_TIMEOUT]")
	fs.StringVar(&f.logFormat, "log-format", envOr("VIREO_LOG_FORMAT", "console"), "log format: console or json [VIREO_LOG_FORMAT]")
	return f
}

// config turns the flags into ingest.Config, validated here so a bad flag
// is a usage error.
func (f *ingestFlags) config() (ingest.Config, error) {
	d, err := time.ParseDuration(f.predictTimeout)
	if err != nil {
		return ingest.Config{}, usagef("ingest: --predict-timeout %q: %v", f.predictTimeout, err)
	}
	if f.logFormat != "console" && f.logFormat != "json" {
		return ingest.Config{}, usagef("ingest: --log-format %q (want console or json)", f.logFormat)
	}
	if f.addr == "" || f.maxBodyBytes < 1 || f.maxPixels < 1 || f.maxInFlight < 1 || d <= 0 {
		return ingest.Config{}, usagef("ingest: --addr %q, --max-body-bytes %d, --max-pixels %d, --max-in-flight %d, --predict-timeout %v (want each set and > 0)",
			f.addr, f.maxBodyBytes, f.maxPixels, f.maxInFlight, d)
	}
	cfg := ingest.Config{
		Prefix: f.nats.prefix, Replicas: f.replicas, Addr: f.addr, MaxBodyBytes: f.maxBodyBytes,
		MaxPixels: int64(f.maxPixels), MaxInFlight: f.maxInFlight, PredictTimeout: d,
	}
	if err := cfg.Check(); err != nil {
		return ingest.Config{}, usagef("%v", err)
	}
	return cfg, nil
}

func runIngest(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("ingest", stderr)
	f := addIngestFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	// No separate metrics address: the ops endpoints are on the API's mux.
	return runService(ctx, "ingest", f.nats, f.logFormat, "", stderr, func(ctx context.Context, deps ops.Deps) error {
		return ingest.Run(ctx, cfg, deps)
	})
}
