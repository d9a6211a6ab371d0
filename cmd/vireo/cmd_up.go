package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/backend"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/pkg/ops"
	"vireo/pkg/schema"
	"vireo/services/frames"
	"vireo/services/infer"
	"vireo/services/ingest"
	"vireo/services/retrain"
)

func init() {
	register(command{"up", "everything in one process: embedded NATS JetStream, ingest, frames, infer, retrain, with the bundled models", runUp})
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	dataDir := fs.String("data-dir", envOr("VIREO_DATA_DIR", "vireo-data"), "where JetStream keeps streams, models and corrections [VIREO_DATA_DIR]")
	natsPort := fs.Int("nats-port", envInt("VIREO_NATS_PORT", 4222), "port of the embedded NATS server, -1 for any free port [VIREO_NATS_PORT]")
	natsHost := fs.String("nats-host", envOr("VIREO_NATS_HOST", "127.0.0.1"), "interface of the embedded NATS server [VIREO_NATS_HOST]")
	addr := fs.String("addr", envOr("VIREO_ADDR", "127.0.0.1:8080"), "HTTP address of the API, dashboard, /metrics, /healthz and /readyz [VIREO_ADDR]")
	modelsDir := fs.String("models", envOr("VIREO_MODELS", "models"), "folder of bundled models pushed into the store when missing; empty: none [VIREO_MODELS]")
	prefix := fs.String("prefix", envOr("VIREO_PREFIX", schema.DefaultPrefix), "subject prefix [VIREO_PREFIX]")
	bc := backendFlags(fs)
	maxBatch := fs.Int("max-batch", envInt("VIREO_MAX_BATCH", 16), "largest inference batch [VIREO_MAX_BATCH]")
	maxDelay := fs.Duration("max-delay", 5*time.Millisecond, "how long a frame may wait for a fuller batch")
	dataRootFlag := fs.String("data-root", dataRoot(), "prepared datasets for retraining (vireo data prepare) [VIREO_DATA]")
	minCorr := fs.Int("retrain-after", envInt("VIREO_RETRAIN_AFTER", 20), "new corrections of a model that trigger a retrain [VIREO_RETRAIN_AFTER]")
	retrainConfig := fs.String("retrain-config", envOr("VIREO_RETRAIN_CONFIG", ""), "JSON file of retrain settings (services/retrain Config fields: lr, replay_items, correction_weight, ...) over the defaults; --data-root and --retrain-after set data_root and min_corrections [VIREO_RETRAIN_CONFIG]")
	logFormat := fs.String("log-format", envOr("VIREO_LOG_FORMAT", "console"), "log format: console or json [VIREO_LOG_FORMAT]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logFormat != "console" && *logFormat != "json" {
		return usagef("up: --log-format %q (want console or json)", *logFormat)
	}
	if *maxBatch < 1 || *maxDelay <= 0 {
		return usagef("up: --max-batch %d and --max-delay %v must be positive", *maxBatch, *maxDelay)
	}
	subj, err := schema.NewSubjects(*prefix)
	if err != nil {
		return usagef("up: --prefix: %v", err)
	}
	var rcfg retrain.Config
	if *retrainConfig != "" {
		if rcfg, err = readRetrainConfig(*retrainConfig); err != nil {
			return err
		}
	}
	rcfg.Prefix, rcfg.NoProvision, rcfg.DataRoot, rcfg.MinCorrections = *prefix, true, *dataRootFlag, *minCorr
	if err := rcfg.Check(); err != nil {
		return usagef("up: retrain settings: %v", err)
	}
	log := serviceLogger(*logFormat, stderr)

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("up: data dir: %w", err)
	}
	srv, err := natsembed.Start(natsembed.Config{StoreDir: filepath.Join(*dataDir, "jetstream"), Host: *natsHost, Port: *natsPort}, log)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("vireo up"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("up: connect to the embedded server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = schema.Provision(pctx, js, subj, 1, 0)
	cancel()
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if *modelsDir != "" {
		if err := pushBundled(ctx, js, subj, *modelsDir, stderr); err != nil {
			return err
		}
	}
	be, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer be.Close()

	reg := ops.NewRegistry()
	health := ops.NewHealth()
	// Each service names itself in its log lines ("service").
	deps := ops.Deps{NC: nc, Log: log, Metrics: reg, Health: health}
	icfg := infer.Config{Prefix: *prefix, MaxBatch: *maxBatch, MaxDelay: *maxDelay, BackendImpl: be, NoProvision: true}
	fcfg := frames.Config{Prefix: *prefix, NoProvision: true}
	gcfg := ingest.Config{Prefix: *prefix, Addr: *addr, NoProvision: true}
	rcfg.BackendImpl = be

	fmt.Fprintf(stdout, "vireo up\n  NATS     %s\n  HTTP     http://%s/ (API, dashboard)\n  metrics  http://%s/metrics\n  data     %s\n", srv.ClientURL(), *addr, *addr, *dataDir)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, svc := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"infer", func(ctx context.Context) error { return infer.Run(ctx, icfg, deps) }},
		{"frames", func(ctx context.Context) error { return frames.Run(ctx, fcfg, deps) }},
		{"ingest", func(ctx context.Context) error { return ingest.Run(ctx, gcfg, deps) }},
		{"retrain", func(ctx context.Context) error { return retrain.Run(ctx, rcfg, deps) }},
	} {
		wg.Go(func() {
			err := svc.run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = fmt.Errorf("%s: %w", svc.name, err)
				log.Error().Err(err).Str("service", svc.name).Msg("service stopped; stopping the others")
			}
			stop() // one service ending ends them all
		})
	}
	wg.Wait()
	log.Info().Msg("services stopped; draining NATS")
	_ = nc.Drain()
	return errors.Join(errs...)
}

// readRetrainConfig reads a JSON retrain.Config (unknown fields refused).
func readRetrainConfig(path string) (retrain.Config, error) {
	var c retrain.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, usagef("up: --retrain-config: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, usagef("up: --retrain-config %s: %v", path, err)
	}
	return c, nil
}

// pushBundled pushes each model folder under dir (model.onnx +
// manifest.json) whose model is not in the store yet, and promotes it.
func pushBundled(ctx context.Context, js jetstream.JetStream, subj schema.Subjects, dir string, w io.Writer) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(w, "up: no bundled models at %s (run `make models`, or push models with `vireo models push`)\n", dir)
		return nil
	}
	store, err := modelstore.Open(ctx, js, modelstore.Options{Prefix: subj.Prefix()})
	if err != nil {
		return fmt.Errorf("up: model store: %w", err)
	}
	return modelsPush(ctx, store, dir, "", true, true, w, false)
}
