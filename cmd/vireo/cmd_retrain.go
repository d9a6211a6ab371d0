package main

import (
	"context"
	"flag"
	"io"
	"strconv"
	"strings"
	"time"

	"vireo/pkg/ops"
	"vireo/services/retrain"
)

func init() {
	register(command{"retrain", "run the retrain service against an external NATS (--model, --min-corrections, --schedule, --data, --tolerance, --metrics-addr)", runRetrain})
}

// retrainFlags are `vireo retrain`'s flags.
type retrainFlags struct {
	nats           *natsFlags
	models         string
	minCorrections int
	schedule       string
	data           string
	datasets       string
	replay         int
	validItems     int
	holdout        int
	tolerance      string
	lr             string
	distillWeight  string
	hardNegatives  int
	headEpochs     int
	bodyEpochs     int
	backend        string
	threads        int
	replicas       int
	metricsAddr    string
	logFormat      string
}

func addRetrainFlags(fs *flag.FlagSet) *retrainFlags {
	f := &retrainFlags{nats: addNATSFlags(fs)}
	fs.StringVar(&f.models, "model", envOr("VIREO_MODEL", ""), "comma-separated models to retrain; empty: every model that gets corrections [VIREO_MODEL]")
	fs.IntVar(&f.minCorrections, "min-corrections", envInt("VIREO_MIN_CORRECTIONS", 20), "new corrections of a model that start a run [VIREO_MIN_CORRECTIONS]")
	fs.StringVar(&f.schedule, "schedule", envOr("VIREO_RETRAIN_SCHEDULE", "0"), "also run this often when a model has new corrections; 0: off [VIREO_RETRAIN_SCHEDULE]")
	fs.StringVar(&f.data, "data", dataRoot(), "folder of prepared datasets (vireo data prepare) [VIREO_DATA]")
	fs.StringVar(&f.datasets, "datasets", envOr("VIREO_DATASETS", ""), "model=dataset pairs, comma-separated, overriding the manifests' datasets [VIREO_DATASETS]")
	fs.IntVar(&f.replay, "replay", envInt("VIREO_REPLAY_ITEMS", 1024), "items of the original training data replayed per run [VIREO_REPLAY_ITEMS]")
	fs.IntVar(&f.validItems, "valid-items", envInt("VIREO_VALID_ITEMS", 2000), "validation items both versions are scored on; -1: all [VIREO_VALID_ITEMS]")
	fs.IntVar(&f.holdout, "holdout", envInt("VIREO_HOLDOUT_PERCENT", 25), "percent of corrections held out to test candidates [VIREO_HOLDOUT_PERCENT]")
	fs.StringVar(&f.tolerance, "tolerance", envOr("VIREO_TOLERANCE", "0.01"), "largest drop of the validation metric a promoted candidate may show [VIREO_TOLERANCE]")
	fs.StringVar(&f.lr, "lr", envOr("VIREO_LR", "0.0001"), "fine-tuning learning rate (head; the body gets slice(lr/100, lr/5)) [VIREO_LR]")
	fs.StringVar(&f.distillWeight, "distill-weight", envOr("VIREO_DISTILL_WEIGHT", "2"), "weight of the distillation term that keeps a classifier's answers on the replay items close to the serving version's; negative: off [VIREO_DISTILL_WEIGHT]")
	fs.IntVar(&f.hardNegatives, "hard-negatives", envInt("VIREO_HARD_NEGATIVES", 0), "items of the classes the corrections were taken for, nearest the corrected class, added to a classifier's training set; 0: none [VIREO_HARD_NEGATIVES]")
	fs.IntVar(&f.headEpochs, "head-epochs", envInt("VIREO_HEAD_EPOCHS", 1), "epochs with the body frozen [VIREO_HEAD_EPOCHS]")
	fs.IntVar(&f.bodyEpochs, "body-epochs", envInt("VIREO_BODY_EPOCHS", 1), "epochs unfrozen [VIREO_BODY_EPOCHS]")
	fs.StringVar(&f.backend, "backend", envOr("VIREO_BACKEND", "cpu"), "compute backend: cpu or cuda [VIREO_BACKEND]")
	fs.IntVar(&f.threads, "threads", envInt("VIREO_THREADS", 0), "CPU backend threads, 0 = all cores [VIREO_THREADS]")
	fs.IntVar(&f.replicas, "replicas", envInt("VIREO_REPLICAS", 1), "replicas of the streams, buckets and consumer it creates [VIREO_REPLICAS]")
	fs.StringVar(&f.metricsAddr, "metrics-addr", envOr("VIREO_METRICS_ADDR", ":9090"), "address of /metrics, /healthz and /readyz; empty: none [VIREO_METRICS_ADDR]")
	fs.StringVar(&f.logFormat, "log-format", envOr("VIREO_LOG_FORMAT", "console"), "log format: console or json [VIREO_LOG_FORMAT]")
	return f
}

// config turns the flags into the service's Config, validated here so a
// bad flag is a usage error.
func (f *retrainFlags) config() (retrain.Config, error) {
	sched, err := time.ParseDuration(f.schedule)
	if err != nil {
		return retrain.Config{}, usagef("retrain: --schedule %q: %v", f.schedule, err)
	}
	tol, err := strconv.ParseFloat(f.tolerance, 64)
	if err != nil {
		return retrain.Config{}, usagef("retrain: --tolerance %q: %v", f.tolerance, err)
	}
	lr, err := strconv.ParseFloat(f.lr, 64)
	if err != nil {
		return retrain.Config{}, usagef("retrain: --lr %q: %v", f.lr, err)
	}
	dw, err := strconv.ParseFloat(f.distillWeight, 64)
	if err != nil {
		return retrain.Config{}, usagef("retrain: --distill-weight %q: %v", f.distillWeight, err)
	}
	if f.logFormat != "console" && f.logFormat != "json" {
		return retrain.Config{}, usagef("retrain: --log-format %q (want console or json)", f.logFormat)
	}
	var models []string
	for _, m := range strings.Split(f.models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	var datasets map[string]string
	for _, kv := range strings.Split(f.datasets, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		m, d, ok := strings.Cut(kv, "=")
		if !ok {
			return retrain.Config{}, usagef("retrain: --datasets %q: want model=dataset pairs", f.datasets)
		}
		if datasets == nil {
			datasets = map[string]string{}
		}
		datasets[strings.TrimSpace(m)] = strings.TrimSpace(d)
	}
	if f.headEpochs < 0 || f.bodyEpochs < 0 || f.replay < 0 || f.validItems < -1 {
		return retrain.Config{}, usagef("retrain: negative epochs or item counts")
	}
	cfg := retrain.Config{
		Prefix: f.nats.prefix, Models: models, Replicas: f.replicas, MinCorrections: f.minCorrections, Schedule: sched,
		DataRoot: f.data, Datasets: datasets, ReplayItems: f.replay, ValidItems: f.validItems, HoldoutPercent: f.holdout,
		Tolerance: tol, LR: lr, DistillWeight: dw, HardNegatives: f.hardNegatives, HeadEpochs: f.headEpochs, BodyEpochs: f.bodyEpochs, Backend: f.backend, Threads: f.threads,
	}
	if err := cfg.Check(); err != nil {
		return retrain.Config{}, usagef("%v", err)
	}
	return cfg, nil
}

func runRetrain(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("retrain", stderr)
	f := addRetrainFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	return runService(ctx, "retrain", f.nats, f.logFormat, f.metricsAddr, stderr, func(ctx context.Context, deps ops.Deps) error {
		return retrain.Run(ctx, cfg, deps)
	})
}
