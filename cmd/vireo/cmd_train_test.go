package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"vireo/pkg/data"
)

// TestTrainEvalUsage: missing or malformed flags are usage errors that
// name the flag, before any data is read.
func TestTrainEvalUsage(t *testing.T) {
	for _, c := range []struct {
		run  func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error
		args []string
		want string
	}{
		{trainCmd, []string{"--out", "x"}, "--data"},
		{trainCmd, []string{"--data", "x"}, "--out"},
		{evalCmd, []string{"--data", "x"}, "--model"},
		{evalCmd, []string{"--model", "m", "--data", "x", "--split", "test"}, "--split"},
		{benchTrainCmd, []string{"--opt", "lamb"}, "--opt"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "heavy"}, "--aug"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "none", "--flip-vert"}, "--flip-vert"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-lighting", "1.5"}, "--max-lighting"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--aug", "none", "--max-lighting", "0"}, "--max-lighting"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-zoom", "0.5"}, "--max-zoom"},
		{trainCmd, []string{"--data", "x", "--out", "y", "--max-rotate", "200"}, "--max-rotate"},
	} {
		var out, errb bytes.Buffer
		err := c.run(context.Background(), c.args, &out, &errb)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
}

// TestDefaultAugment: classification, multi-label tiles (their items are
// upright) and segmentation flip horizontally by default, regression does
// not; --flip-vert gives the 8 dihedral symmetries.
func TestDefaultAugment(t *testing.T) {
	for _, task := range []data.Task{data.Classify, data.MultiLabel, data.Segment} {
		a := defaultAugment(task, false)
		if !a.FlipH || a.Dihedral {
			t.Errorf("%s: FlipH %v, Dihedral %v; want a horizontal flip only", task, a.FlipH, a.Dihedral)
		}
		if a = defaultAugment(task, true); !a.Dihedral {
			t.Errorf("%s with flipVert: Dihedral false", task)
		}
	}
	if a := defaultAugment(data.Regress, false); a.FlipH || a.Dihedral {
		t.Errorf("regress: FlipH %v, Dihedral %v; want no flips", a.FlipH, a.Dihedral)
	}
}

func trainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return runTrain(ctx, a, o, e)
}
func evalCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error { return runEval(ctx, a, o, e) }
func benchTrainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return benchTrain(ctx, a, o, e)
}

// TestTrainAugmentFlags: --max-lighting, --max-zoom and --max-rotate
// replace the task's values; -1 (not given) keeps them; --aug none is nil.
func TestTrainAugmentFlags(t *testing.T) {
	o := trainOpts{aug: "default", maxLighting: 0, maxZoom: 1.1, maxRotate: -1}
	a := trainAugment(o, data.MultiLabel)
	def := defaultAugment(data.MultiLabel, false)
	if a.MaxLighting != 0 || a.MaxZoom != 1.1 || a.MaxRotate != def.MaxRotate || !a.FlipH {
		t.Errorf("multilabel with --max-lighting 0 --max-zoom 1.1: %+v (default %+v)", *a, *def)
	}
	o.maxLighting, o.maxZoom, o.maxRotate = -1, -1, 7
	if a = trainAugment(o, data.Segment); a.MaxRotate != 7 || a.MaxLighting != defaultAugment(data.Segment, false).MaxLighting {
		t.Errorf("segment with --max-rotate 7: %+v", *a)
	}
	if a = trainAugment(trainOpts{aug: "none", maxLighting: -1, maxZoom: -1, maxRotate: -1}, data.Classify); a != nil {
		t.Errorf("--aug none: %+v, want nil", *a)
	}
}
