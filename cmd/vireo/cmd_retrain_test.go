package main

import (
	"bytes"
	"os"
	"reflect"
	"testing"
	"time"

	"vireo/services/retrain"
)

func TestRetrainFlags(t *testing.T) {
	parse := func(args ...string) (retrain.Config, error) {
		fs := newFlagSet("retrain", &bytes.Buffer{})
		f := addRetrainFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			return retrain.Config{}, err
		}
		return f.config()
	}
	for _, k := range []string{"VIREO_MODEL", "VIREO_MIN_CORRECTIONS", "VIREO_RETRAIN_SCHEDULE", "VIREO_DATA", "VIREO_DATASETS",
		"VIREO_REPLAY_ITEMS", "VIREO_VALID_ITEMS", "VIREO_HOLDOUT_PERCENT", "VIREO_TOLERANCE", "VIREO_LR", "VIREO_DISTILL_WEIGHT", "VIREO_HARD_NEGATIVES", "VIREO_HEAD_EPOCHS",
		"VIREO_BODY_EPOCHS", "VIREO_BACKEND", "VIREO_THREADS", "VIREO_REPLICAS", "VIREO_PREFIX"} {
		t.Setenv(k, "")
	}
	for k, v := range map[string]string{"VIREO_MIN_CORRECTIONS": "30", "VIREO_RETRAIN_SCHEDULE": "1h", "VIREO_DATA": "/srv/data",
		"VIREO_REPLAY_ITEMS": "512", "VIREO_VALID_ITEMS": "0", "VIREO_HOLDOUT_PERCENT": "20", "VIREO_TOLERANCE": "0.02", "VIREO_LR": "0.002",
		"VIREO_DISTILL_WEIGHT": "-1", "VIREO_HARD_NEGATIVES": "32",
		"VIREO_HEAD_EPOCHS": "1", "VIREO_BODY_EPOCHS": "2", "VIREO_BACKEND": "cpu", "VIREO_THREADS": "0", "VIREO_REPLICAS": "1", "VIREO_PREFIX": "vireo"} {
		t.Setenv(k, v)
	}
	got, err := parse("--model", "fashion", "--datasets", "fashion=fashion", "--min-corrections", "25")
	if err != nil {
		t.Fatal(err)
	}
	want := retrain.Config{Prefix: "vireo", Models: []string{"fashion"}, Replicas: 1, MinCorrections: 25, Schedule: time.Hour,
		DataRoot: "/srv/data", Datasets: map[string]string{"fashion": "fashion"}, ReplayItems: 512, HoldoutPercent: 20,
		Tolerance: 0.02, LR: 0.002, DistillWeight: -1, HardNegatives: 32, HeadEpochs: 1, BodyEpochs: 2, Backend: "cpu"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config\n got %+v\nwant %+v", got, want)
	}
	for _, args := range [][]string{
		{"--schedule", "often"},
		{"--schedule", "1ms"},
		{"--tolerance", "x"},
		{"--tolerance", "2"},
		{"--lr", "-1"},
		{"--distill-weight", "x"},
		{"--hard-negatives", "-3"},
		{"--datasets", "fashion"},
		{"--model", "a.b"},
		{"--holdout", "99"},
		{"--log-format", "xml"},
		{"extra"},
	} {
		if _, err := parse(args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestRetrainFlagDefaultsMatchService: with no flags and no environment,
// `vireo retrain` runs the service's own defaults (the flag defaults
// once drifted: --lr 0.001 and --body-epochs 2 against 1e-4 and 1).
func TestRetrainFlagDefaultsMatchService(t *testing.T) {
	for _, k := range []string{"VIREO_MODEL", "VIREO_MIN_CORRECTIONS", "VIREO_RETRAIN_SCHEDULE", "VIREO_DATASETS",
		"VIREO_REPLAY_ITEMS", "VIREO_VALID_ITEMS", "VIREO_HOLDOUT_PERCENT", "VIREO_TOLERANCE", "VIREO_LR", "VIREO_DISTILL_WEIGHT", "VIREO_HARD_NEGATIVES", "VIREO_HEAD_EPOCHS",
		"VIREO_BODY_EPOCHS", "VIREO_BACKEND", "VIREO_THREADS", "VIREO_REPLICAS"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	fs := newFlagSet("retrain", &bytes.Buffer{})
	f := addRetrainFlags(fs)
	if err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	got, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	d := retrain.Defaults()
	type pair struct {
		name      string
		got, want any
	}
	for _, p := range []pair{
		{"--min-corrections", got.MinCorrections, d.MinCorrections},
		{"--replay", got.ReplayItems, d.ReplayItems},
		{"--valid-items", got.ValidItems, d.ValidItems},
		{"--holdout", got.HoldoutPercent, d.HoldoutPercent},
		{"--tolerance", got.Tolerance, d.Tolerance},
		{"--lr", got.LR, d.LR},
		{"--distill-weight", got.DistillWeight, d.DistillWeight},
		{"--hard-negatives", got.HardNegatives, d.HardNegatives},
		{"--head-epochs", got.HeadEpochs, d.HeadEpochs},
		{"--body-epochs", got.BodyEpochs, d.BodyEpochs},
		{"--backend", got.Backend, d.Backend},
		{"--replicas", got.Replicas, d.Replicas},
	} {
		if p.got != p.want {
			t.Errorf("%s defaults to %v, the retrain service to %v", p.name, p.got, p.want)
		}
	}
}
