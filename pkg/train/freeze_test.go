package train

import (
	"slices"
	"strings"
	"testing"

	"vireo/pkg/arch"
)

// TestTrainingReproducibleOnTwoThreads: two runs of the same plan (a
// frozen stage, then an unfrozen one) on 2 threads end with the same
// weights bit for bit. The conv weight gradient used to sum per-thread
// partials that depended on thread timing, so runs drifted apart.
func TestTrainingReproducibleOnTwoThreads(t *testing.T) {
	plan := []Stage{{Epochs: 1, LR: Const(1e-2), Freeze: true}, {Epochs: 1, LR: Slice(1e-4, 1e-2)}}
	var got []map[string][]float32
	for range 2 {
		l := newQuadLearner(t, newBackendThreads(t, 2), nil)
		run(t, l, plan, quadData(), RunOptions{})
		got = append(got, weights(t, l))
	}
	for n, w := range got[0] {
		if !slices.Equal(w, got[1][n]) {
			t.Errorf("%s differs between two 2-thread runs", n)
		}
	}
}

// TestFreezePlansBackward: after Freeze the program computes no gradient
// for the frozen body's weights (their backward work is skipped), keeps
// the body's BatchNorm scales and biases training unless FreezeBN, and
// Unfreeze restores every gradient.
func TestFreezePlansBackward(t *testing.T) {
	for _, freezeBN := range []bool{false, true} {
		l := newQuadLearner(t, newBackend(t), func(c *Config) { c.FreezeBN = freezeBN })
		bt := syntheticBatch(quadMeta, 16, 1, 16, 4, 1, 1)
		lrs := Const(1e-3).For(l.Groups())
		l.Freeze()
		if _, err := l.step(bt, lrs, 0.9); err != nil {
			t.Fatal(err)
		}
		head := len(l.model.Groups) - 1
		frozen, trained := 0, 0
		for gi, names := range l.model.Groups {
			for _, n := range names {
				if !arch.Trainable(n) {
					continue
				}
				want := gi < head && (!l.bn[n] || freezeBN)
				if got := l.prog.Frozen(n); got != want {
					t.Errorf("FreezeBN=%v: %s (group %d) frozen=%v, want %v", freezeBN, n, gi, got, want)
				}
				if want {
					frozen++
				} else {
					trained++
				}
			}
		}
		if frozen == 0 || trained == 0 {
			t.Fatalf("frozen %d, trained %d parameters: the model has no body or no head", frozen, trained)
		}
		l.Unfreeze()
		if _, err := l.step(bt, lrs, 0.9); err != nil {
			t.Fatal(err)
		}
		for _, p := range l.prog.Params() {
			if l.prog.Frozen(p.Name) {
				t.Errorf("%s still frozen after Unfreeze", p.Name)
			}
		}
	}
}

// TestResizeContinuesDropout: progressive resizing recompiles the
// program; the new one continues the old one's Dropout mask sequence and
// gets the freeze state planned again.
func TestResizeContinuesDropout(t *testing.T) {
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1, Seed: 1, Dropout: arch.DefaultDropout})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(newBackend(t), m, Config{Meta: quadMeta, BatchSize: 16, Size: 16, Channels: 1, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hasDropout := false
	for _, n := range l.model.Graph.Nodes {
		hasDropout = hasDropout || n.Op == "Dropout"
	}
	if !hasDropout {
		t.Fatal("the test model has no Dropout")
	}
	bt := syntheticBatch(quadMeta, 16, 1, 16, 4, 1, 1)
	lrs := Const(1e-3).For(l.Groups())
	l.Freeze()
	for range 3 {
		if _, err := l.step(bt, lrs, 0.9); err != nil {
			t.Fatal(err)
		}
	}
	runs := l.prog.Runs()
	if err := l.Resize(32); err != nil {
		t.Fatal(err)
	}
	if got := l.prog.Runs(); got != runs || runs < 3 {
		t.Errorf("runs after Resize %d, want %d (>= 3)", got, runs)
	}
	big := syntheticBatch(quadMeta, 16, 1, 32, 4, 1, 1)
	if _, err := l.step(big, lrs, 0.9); err != nil {
		t.Fatal(err)
	}
	var frozen []string
	for _, p := range l.prog.Params() {
		if l.prog.Frozen(p.Name) {
			frozen = append(frozen, p.Name)
		}
	}
	if len(frozen) == 0 {
		t.Errorf("no parameter frozen after Resize of a frozen learner")
	}
	t.Logf("frozen after Resize: %s", strings.Join(frozen, " "))
}
