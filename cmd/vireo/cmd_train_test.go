package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
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
	} {
		var out, errb bytes.Buffer
		err := c.run(context.Background(), c.args, &out, &errb)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
}

func trainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return runTrain(ctx, a, o, e)
}
func evalCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error { return runEval(ctx, a, o, e) }
func benchTrainCmd(ctx context.Context, a []string, o, e *bytes.Buffer) error {
	return benchTrain(ctx, a, o, e)
}
