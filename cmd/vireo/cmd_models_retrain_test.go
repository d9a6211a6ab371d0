package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/pkg/natsembed/natstest"
	"vireo/services/retrain"
)

// fakeRetrain answers the retrain control subject of "fashion" as the
// retrain service does: a start queues a run that then goes through
// head and body epochs, one status request a step, and ends idle with
// the given outcome. It records the actions it was asked for.
type fakeRetrain struct {
	mu      sync.Mutex
	actions []string
	steps   []retrain.Status
}

func startFakeRetrain(t *testing.T, nc *nats.Conn, outcome string) *fakeRetrain {
	t.Helper()
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	old := &retrain.Record{Model: "fashion", Trigger: "count", Started: t0, Finished: t0.Add(time.Second), Outcome: retrain.OutcomeRejected, Reason: "gate refused: old"}
	idle := retrain.Status{Model: "fashion", State: "idle", Corrections: 30, Pending: 3, Trigger: 20, Last: old}
	running := func(stage string, e, b int) retrain.Status {
		return retrain.Status{Model: "fashion", State: "running", Stage: stage, Epoch: e, Epochs: 1, Batch: b, Batches: 4, Corrections: 30, Trigger: 20, Last: old}
	}
	done := idle
	done.Pending = 0
	done.Last = &retrain.Record{Model: "fashion", Trigger: retrain.TriggerRequest, Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour + 12*time.Second),
		Outcome: outcome, Reason: "gate passed: test", Parent: "v0001"}
	if outcome != retrain.OutcomeFailed {
		done.Last.Candidate = "v0002"
	}
	f := &fakeRetrain{steps: []retrain.Status{
		{Model: "fashion", State: "queued", Corrections: 30, Pending: 3, Trigger: 20, Last: old},
		running("loading", 0, 0), running("training_head", 1, 2), running("training_head", 1, 4),
		running("training_body", 1, 4), running("evaluating", 1, 4), done,
	}}
	subject, err := retrain.ControlSubject("vireo", "fashion")
	if err != nil {
		t.Fatal(err)
	}
	started := false
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var req retrain.Request
		_ = json.Unmarshal(m.Data, &req)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.actions = append(f.actions, req.Action)
		st := idle
		switch {
		case req.Action == retrain.ActionStart && !started:
			started = true
			st, f.steps = f.steps[0], f.steps[1:]
		case started && len(f.steps) > 1:
			st, f.steps = f.steps[0], f.steps[1:]
		case started:
			st = f.steps[0]
		case req.Action != retrain.ActionStatus:
			st = retrain.Status{Model: "fashion", Error: "action " + req.Action}
		}
		b, _ := json.Marshal(st)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	// The CLI asks over its own connection: the server must have the
	// subscription before that (a clean-clone make test once got "no
	// retrain service answers" here).
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestModelsRetrainFollowsTheRun(t *testing.T) {
	s, nc, _ := natstest.Start(t)
	models := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append(append([]string{"models"}, args...), "--nats", s.ClientURL()), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	// No retrain service: a clear error, not a hang.
	if _, _, err := models("retrain", "fashion"); err == nil || !strings.Contains(err.Error(), "no retrain service answers") {
		t.Fatalf("without a service: %v", err)
	}
	f := startFakeRetrain(t, nc, retrain.OutcomePromoted)
	out, _, err := models("retrain", "--status", "fashion")
	if err != nil || !strings.Contains(out, "fashion: retrain idle; 30 corrections kept, 3 new (a run starts at 20)") ||
		!strings.Contains(out, "last run (count, 1s): rejected: gate refused: old") {
		t.Fatalf("--status: %v\n%s", err, out)
	}
	out, bar, err := models("retrain", "fashion")
	if err != nil {
		t.Fatalf("retrain: %v\n%s\n%s", err, out, bar)
	}
	if !strings.Contains(out, "last run (request, 12s): promoted v0002 from v0001: gate passed: test") {
		t.Errorf("outcome not printed:\n%s", out)
	}
	for _, want := range []string{"queued", "training_head epoch 1/1", "[", "4/4", "training_body epoch 1/1", "evaluating"} {
		if !strings.Contains(bar, want) {
			t.Errorf("progress on stderr lacks %q:\n%q", want, bar)
		}
	}
	f.mu.Lock()
	got := strings.Join(f.actions, ",")
	f.mu.Unlock()
	if !strings.HasPrefix(got, "status,status,start,status") {
		t.Errorf("actions asked: %s (want the --status call, then status, start, status...)", got)
	}
}

func TestModelsRetrainFailedRunIsAnError(t *testing.T) {
	s, nc, _ := natstest.Start(t)
	startFakeRetrain(t, nc, retrain.OutcomeFailed)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"models", "retrain", "--json", "fashion", "--nats", s.ClientURL()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "the run failed") {
		t.Fatalf("failed run: %v", err)
	}
	var st retrain.Status
	if json.Unmarshal(out.Bytes(), &st) != nil || st.Last == nil || st.Last.Outcome != retrain.OutcomeFailed || errOut.Len() != 0 {
		t.Fatalf("--json: stdout %q stderr %q", out.String(), errOut.String())
	}
}
