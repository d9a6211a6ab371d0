package main

import (
	"context"
	"flag"
	"io"
	"time"

	"vireo/pkg/ops"
	"vireo/services/frames"
)

func init() {
	register(command{"frames", "run the frames service against an external NATS: reads the registered sources into Arrow frame batches (--metrics-addr)", runFrames})
}

// framesFlags are `vireo frames`'s flags.
type framesFlags struct {
	nats          *natsFlags
	replicas      int
	batchFrames   int
	batchDelay    string
	maxInFlight   int
	maxReconnects int
	metricsAddr   string
	logFormat     string
}

func addFramesFlags(fs *flag.FlagSet) *framesFlags {
	f := &framesFlags{nats: addNATSFlags(fs)}
	fs.IntVar(&f.replicas, "replicas", envInt("VIREO_REPLICAS", 1), "replicas of the streams and buckets it creates [VIREO_REPLICAS]")
	fs.IntVar(&f.batchFrames, "batch-frames", envInt("VIREO_BATCH_FRAMES", 8), "most frames per published batch [VIREO_BATCH_FRAMES]")
	fs.StringVar(&f.batchDelay, "batch-delay", envOr("VIREO_BATCH_DELAY", "20ms"), "how long a batch waits for more frames [VIREO_BATCH_DELAY]")
	fs.IntVar(&f.maxInFlight, "max-in-flight", envInt("VIREO_MAX_IN_FLIGHT", 4), "unacknowledged batches per source before it waits [VIREO_MAX_IN_FLIGHT]")
	fs.IntVar(&f.maxReconnects, "max-reconnects", envInt("VIREO_MAX_RECONNECTS", 30), "failed reconnects in a row before a live source fails; -1: forever [VIREO_MAX_RECONNECTS]")
	fs.StringVar(&f.metricsAddr, "metrics-addr", envOr("VIREO_METRICS_ADDR", ":9090"), "address of /metrics, /healthz and /readyz; empty: none [VIREO_METRICS_ADDR]")
	fs.StringVar(&f.logFormat, "log-format", envOr("VIREO_LOG_FORMAT", "console"), "log format: console or json [VIREO_LOG_FORMAT]")
	return f
}

// config turns the flags into frames.Config, validated here so a bad flag
// is a usage error.
func (f *framesFlags) config() (frames.Config, error) {
	d, err := time.ParseDuration(f.batchDelay)
	if err != nil {
		return frames.Config{}, usagef("frames: --batch-delay %q: %v", f.batchDelay, err)
	}
	if f.logFormat != "console" && f.logFormat != "json" {
		return frames.Config{}, usagef("frames: --log-format %q (want console or json)", f.logFormat)
	}
	if f.batchFrames < 1 || f.maxInFlight < 1 || d <= 0 {
		return frames.Config{}, usagef("frames: --batch-frames %d, --max-in-flight %d, --batch-delay %v (want each > 0)", f.batchFrames, f.maxInFlight, d)
	}
	if f.maxReconnects == 0 {
		return frames.Config{}, usagef("frames: --max-reconnects 0 (want >= 1, or -1 for forever)")
	}
	cfg := frames.Config{
		Prefix: f.nats.prefix, Replicas: f.replicas, BatchFrames: f.batchFrames, BatchDelay: d,
		MaxInFlight: f.maxInFlight, MaxReconnects: f.maxReconnects,
	}
	if err := cfg.Check(); err != nil {
		return frames.Config{}, usagef("%v", err)
	}
	return cfg, nil
}

func runFrames(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("frames", stderr)
	f := addFramesFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	return runService(ctx, "frames", f.nats, f.logFormat, f.metricsAddr, stderr, func(ctx context.Context, deps ops.Deps) error {
		return frames.Run(ctx, cfg, deps)
	})
}
