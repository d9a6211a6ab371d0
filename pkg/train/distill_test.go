package train

import (
	"context"
	"errors"
	"math"
	"testing"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/onnx"
)

// TestDistillTermHand checks the distillation term against the
// definition, Weight/denom · T² · Σ_j q_j log(q_j/p_j) with p the
// tempered softmax, written out here for a 3-class row at T=2, and its
// gradient against central differences; a row without targets adds
// nothing, and the gradient is added to what dy held.
func TestDistillTermHand(t *testing.T) {
	const temp, weight, denom = 2.0, 0.5, 4.0
	out := []float32{1, -0.5, 2, 3, 3, 3}
	teacher := []float32{2, 0, 1}
	q := softTargets([][]float32{teacher, nil}, temp)
	// By hand: q = softmax(teacher/2), p = softmax(out_0/2).
	e := func(v float64) float64 { return math.Exp(v / temp) }
	qs := e(2) + e(0) + e(1)
	qh := []float64{e(2) / qs, e(0) / qs, e(1) / qs}
	ps := e(1) + e(-0.5) + e(2)
	ph := []float64{e(1) / ps, e(-0.5) / ps, e(2) / ps}
	var kl float64
	for j := range 3 {
		if math.Abs(float64(q[0][j])-qh[j]) > 1e-6 {
			t.Errorf("soft target %d: %v, want %v", j, q[0][j], qh[j])
		}
		kl += qh[j] * math.Log(qh[j]/ph[j])
	}
	want := weight / denom * temp * temp * kl
	dy := []float32{0.25, 0, -1, 7, 7, 7}
	got := distillTerm(out, q, 2, 3, temp, weight, denom, dy)
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("term %v, want %v by hand", got, want)
	}
	if want < 1e-3 {
		t.Fatalf("the hand case is degenerate (term %v)", want)
	}
	base := []float32{0.25, 0, -1}
	for j := range 3 {
		// The analytic gradient, and central differences of the term.
		g := weight / denom * temp * (ph[j] - qh[j])
		if d := float64(dy[j]-base[j]) - g; math.Abs(d) > 1e-6 {
			t.Errorf("dy[%d] %v, want %v + %v", j, dy[j], base[j], g)
		}
		const h = 1e-3
		f := func(delta float64) float64 {
			o := append([]float32(nil), out...)
			o[j] += float32(delta)
			return distillTerm(o, q, 2, 3, temp, weight, denom, make([]float32, 6))
		}
		if fd := (f(h) - f(-h)) / (2 * h); math.Abs(fd-g) > 1e-4 {
			t.Errorf("gradient %d: %v analytic, %v by differences", j, g, fd)
		}
	}
	for j := 3; j < 6; j++ {
		if dy[j] != 7 {
			t.Errorf("dy[%d] = %v: a row without targets changed", j, dy[j])
		}
	}
	// A student equal to its teacher pays nothing and gets no gradient.
	same := []float32{0, 0, 0}
	if v := distillTerm(teacher, q[:1], 1, 3, temp, weight, denom, same); math.Abs(v) > 1e-7 || math.Abs(float64(same[0])) > 1e-7 {
		t.Errorf("student = teacher: term %v, dy %v, want 0", v, same)
	}
}

// TestDistillValidate: bad distillation settings are config errors.
func TestDistillValidate(t *testing.T) {
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	row := []float32{1, 2, 3, 4}
	for name, c := range map[string]Config{
		"zero weight": {Meta: quadMeta, Size: 16, Channels: 1, Distill: &Distill{Logits: [][]float32{row}, Weight: 0, Temperature: 1}},
		"zero temp":   {Meta: quadMeta, Size: 16, Channels: 1, Distill: &Distill{Logits: [][]float32{row}, Weight: 1}},
		"short row":   {Meta: quadMeta, Size: 16, Channels: 1, Distill: &Distill{Logits: [][]float32{row[:3]}, Weight: 1, Temperature: 1}},
		"nan logit":   {Meta: quadMeta, Size: 16, Channels: 1, Distill: &Distill{Logits: [][]float32{{1, 2, float32(math.NaN()), 4}}, Weight: 1, Temperature: 1}},
		"regress":     {Meta: data.Meta{Task: data.Regress, Points: 2}, Size: 16, Channels: 1, Distill: &Distill{Logits: [][]float32{row}, Weight: 1, Temperature: 1}},
	} {
		if _, err := New(b, m, c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	l := newQuadLearner(t, b, nil)
	if err := l.SetDistill(&Distill{Logits: [][]float32{row[:2]}, Weight: 1, Temperature: 1}); !errors.Is(err, ErrConfig) {
		t.Errorf("SetDistill with a short row: %v, want ErrConfig", err)
	}
	if err := l.SetWeights([]float32{1, float32(math.Inf(1))}); !errors.Is(err, ErrConfig) {
		t.Errorf("SetWeights with +Inf: %v, want ErrConfig", err)
	}
	if err := l.SetDistill(&Distill{Logits: [][]float32{row}, Weight: 1, Temperature: 1}); err != nil {
		t.Errorf("SetDistill: %v", err)
	}
}

// TestDistillKeepsTeacher: a model trained on the quadrants is
// fine-tuned on data whose class 1 items are relabelled 0 (a wrong
// "correction" of a whole class). With its own outputs on the items of
// the other classes as the teacher, the fine-tuned model stays closer to
// them (mean KL) than the same fine-tune without distillation. One
// thread: both runs are deterministic.
func TestDistillKeepsTeacher(t *testing.T) {
	b := newBackendThreads(t, 1)
	d := quadDataLarge()
	l := newQuadLearner(t, b, nil)
	run(t, l, []Stage{{Epochs: 2, LR: Const(1e-2)}}, d, RunOptions{})
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := d.Train.(memDataset)
	moved := make(memDataset, len(src))
	copy(moved, src)
	for i := range moved {
		if moved[i].Label == 1 {
			moved[i].Label = 0
		}
	}
	teacher, err := l.Outputs(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	if len(teacher) != len(moved) || len(teacher[0]) != 4 {
		t.Fatalf("outputs: %d rows of %d, want %d of 4", len(teacher), len(teacher[0]), len(moved))
	}
	keep := make([][]float32, len(moved))
	for i, it := range src {
		if it.Label != 1 && it.Label != 0 {
			keep[i] = teacher[i]
		}
	}
	enc, err := onnx.Encode(onnx.NewModel(l.Model().Graph))
	if err != nil {
		t.Fatal(err)
	}
	fine := func(dist *Distill) float64 {
		om, err := onnx.Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		m := &arch.Model{Graph: om.Graph, Groups: l.Model().Groups, Arch: l.Model().Arch, Task: l.Model().Task}
		cfg := Config{Meta: quadMeta, BatchSize: 16, Size: 16, Channels: 1, Seed: 7, Distill: dist}
		f, err := New(b, m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		run(t, f, []Stage{{Epochs: 2, LR: Const(1e-2)}}, Data{Train: moved, Valid: d.Valid}, RunOptions{})
		after, err := f.Outputs(ctx, moved)
		if err != nil {
			t.Fatal(err)
		}
		var kl float64
		n := 0
		p, q := make([]float32, 4), make([]float32, 4)
		for i, r := range keep {
			if r == nil {
				continue
			}
			softmaxT(q, r, 1)
			softmaxT(p, after[i], 1)
			for j := range q {
				kl += float64(q[j]) * math.Log(float64(q[j])/float64(p[j]))
			}
			n++
		}
		return kl / float64(n)
	}
	plain := fine(nil)
	kept := fine(&Distill{Logits: keep, Weight: 2, Temperature: 2})
	t.Logf("mean KL to the teacher on the other classes: %.4f without distillation, %.4f with", plain, kept)
	if !(kept < plain/2) {
		t.Errorf("mean KL %.4f with distillation, %.4f without: want under half", kept, plain)
	}
}
