package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/services/retrain"
)

// retrainPoll is how often `vireo models retrain` asks for progress.
const retrainPoll = 500 * time.Millisecond

// retrainRequest asks the retrain service (on its control subject) for
// action on modelName and returns its Status.
func retrainRequest(ctx context.Context, nc *nats.Conn, prefix, modelName, action string) (retrain.Status, error) {
	subject, err := retrain.ControlSubject(prefix, modelName)
	if err != nil {
		return retrain.Status{}, usagef("models retrain: %v", err)
	}
	body, _ := json.Marshal(retrain.Request{Action: action})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return retrain.Status{}, fmt.Errorf("models retrain: no retrain service answers on %s (is vireo retrain or vireo up running?)", subject)
	}
	if err != nil {
		return retrain.Status{}, fmt.Errorf("models retrain: %s: %w", subject, err)
	}
	var st retrain.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		return retrain.Status{}, fmt.Errorf("models retrain: reply on %s: %w", subject, err)
	}
	if st.Error != "" {
		return st, fmt.Errorf("models retrain %s: %s", modelName, st.Error)
	}
	return st, nil
}

// modelsRetrain starts a retrain run of modelName (or, with statusOnly,
// prints the service's status) and, unless noWait, follows it with a
// progress bar on stderr until it ends; then it prints the run's outcome.
// A run that failed (no candidate) is an error; a candidate the gate
// refused is not: the gate decided.
func modelsRetrain(ctx context.Context, nc *nats.Conn, prefix, modelName string, statusOnly, noWait, asJSON bool, stdout, stderr io.Writer) error {
	before, err := retrainRequest(ctx, nc, prefix, modelName, retrain.ActionStatus)
	if err != nil {
		return err
	}
	if statusOnly {
		return printRetrain(stdout, before, asJSON)
	}
	st, err := retrainRequest(ctx, nc, prefix, modelName, retrain.ActionStart)
	if err != nil {
		return err
	}
	if noWait {
		return printRetrain(stdout, st, asJSON)
	}
	bar := &progressBar{w: stderr, name: modelName, quiet: asJSON}
	finished := func(s retrain.Status) bool {
		return s.State == "idle" && s.Last != nil && (before.Last == nil || !s.Last.Started.Equal(before.Last.Started))
	}
	t := time.NewTicker(retrainPoll)
	defer t.Stop()
	for !finished(st) {
		switch {
		case st.State == "running" && st.Epochs > 0:
			bar.update(fmt.Sprintf("%s epoch %d/%d", st.Stage, st.Epoch, st.Epochs), st.Batch, st.Batches)
		case st.State == "running":
			bar.update(st.Stage, 0, 0)
		default:
			bar.update(st.State, 0, 0)
		}
		select {
		case <-ctx.Done():
			bar.finish()
			return fmt.Errorf("models retrain %s: stopped following the run (%w); it goes on in the retrain service: see vireo models retrain --status %s", modelName, ctx.Err(), modelName)
		case <-t.C:
		}
		if st, err = retrainRequest(ctx, nc, prefix, modelName, retrain.ActionStatus); err != nil {
			bar.finish()
			return err
		}
	}
	bar.finish()
	if err := printRetrain(stdout, st, asJSON); err != nil {
		return err
	}
	if st.Last.Outcome == retrain.OutcomeFailed {
		return fmt.Errorf("models retrain %s: the run failed: %s", modelName, st.Last.Reason)
	}
	return nil
}

func printRetrain(w io.Writer, st retrain.Status, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(st)
	}
	fmt.Fprintf(w, "%s: retrain %s", st.Model, st.State)
	if st.Stage != "" {
		fmt.Fprintf(w, " (%s", st.Stage)
		if st.Epochs > 0 {
			fmt.Fprintf(w, ", epoch %d/%d, batch %d/%d", st.Epoch, st.Epochs, st.Batch, st.Batches)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "; %d corrections kept, %d new (a run starts at %d)\n", st.Corrections, st.Pending, st.Trigger)
	if l := st.Last; l != nil {
		fmt.Fprintf(w, "last run (%s, %s): %s", l.Trigger, l.Finished.Sub(l.Started).Round(100*time.Millisecond), l.Outcome)
		if l.Candidate != "" {
			fmt.Fprintf(w, " %s from %s", l.Candidate, l.Parent)
		}
		fmt.Fprintf(w, ": %s\n", l.Reason)
	}
	return nil
}
