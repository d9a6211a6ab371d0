package train

import (
	"context"
	"math"
	"testing"

	"vireo/pkg/data"
	"vireo/pkg/model"
)

func TestMirrorW(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6}
	got := make([]float32, 6)
	mirrorW(got, x, 3)
	want := []float32{3, 2, 1, 6, 5, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mirrorW = %v, want %v", got, want)
		}
	}
}

// TestMergeTTA checks each task's average against hand-computed values.
func TestMergeTTA(t *testing.T) {
	near := func(name string, got []float32, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-5 {
				t.Errorf("%s: got %v, want %v", name, got, want)
				return
			}
		}
	}
	// classify: softmax([0, ln 3]) = [.25, .75], softmax([ln 3, 0]) =
	// [.75, .25]: the mean is [.5, .5]; with [0, 0] ([.5, .5]) the mean
	// is [.375, .625].
	out := []float32{0, float32(math.Log(3)), 0, float32(math.Log(3))}
	mir := []float32{float32(math.Log(3)), 0, 0, 0}
	if err := mergeTTA(data.Classify, out, mir, 2, []int{2}); err != nil {
		t.Fatal(err)
	}
	near("classify", out, []float64{math.Log(.5), math.Log(.5), math.Log(.375), math.Log(.625)})

	// multilabel: sigmoid(ln 3) = .75 and sigmoid(-ln 3) = .25 average to
	// .5 (logit 0); .75 and .75 stay .75 (logit ln 3).
	out = []float32{float32(math.Log(3)), float32(math.Log(3))}
	mir = []float32{float32(-math.Log(3)), float32(math.Log(3))}
	if err := mergeTTA(data.MultiLabel, out, mir, 1, []int{2}); err != nil {
		t.Fatal(err)
	}
	near("multilabel", out, []float64{0, math.Log(3)})

	// regress: the mirrored x is negated, y kept.
	out = []float32{0.5, 0.2, -0.1, 0.4}
	mir = []float32{-0.3, 0.4, 0.3, 0.0}
	if err := mergeTTA(data.Regress, out, mir, 1, []int{4}); err != nil {
		t.Fatal(err)
	}
	near("regress", out, []float64{0.4, 0.3, -0.2, 0.2})

	// segment: 2 classes, 1x3 pixels. The mirrored run's columns come
	// back reversed before the per-pixel average.
	l3 := float32(math.Log(3))
	out = []float32{
		0, 0, l3, // class 0 plane
		0, l3, 0, // class 1 plane
	}
	mir = []float32{
		0, 0, 0, // its pixel 2 is the original's pixel 0
		l3, 0, 0,
	}
	// Pixel 0: plain [.5,.5], mirrored pixel 2 [.5,.5] -> [.5,.5].
	// Pixel 1: plain [.25,.75], mirrored pixel 1 [.5,.5] -> [.375,.625].
	// Pixel 2: plain [.75,.25], mirrored pixel 0 [.25,.75] -> [.5,.5].
	if err := mergeTTA(data.Segment, out, mir, 1, []int{2, 1, 3}); err != nil {
		t.Fatal(err)
	}
	near("segment", out, []float64{math.Log(.5), math.Log(.375), math.Log(.5), math.Log(.5), math.Log(.625), math.Log(.5)})

	if err := mergeTTA(data.Classify, make([]float32, 3), make([]float32, 4), 2, []int{2}); err == nil {
		t.Error("short output: no error")
	}
}

// mirrored returns ds with every image mirrored left to right (labels
// kept).
func mirrored(ds memDataset) memDataset {
	out := make(memDataset, len(ds))
	for i, it := range ds {
		px := make([]byte, len(it.Pixels))
		for r := 0; r < it.Height*it.Channels; r++ {
			for x := 0; x < it.Width; x++ {
				px[r*it.Width+x] = it.Pixels[r*it.Width+it.Width-1-x]
			}
		}
		it.Pixels = px
		out[i] = it
	}
	return out
}

// TestEvaluateTTA: with TTA an item and its mirror image get the same
// averaged prediction, so a model scores the same on a dataset and on its
// mirror image, to the tally; without TTA the quadrant model, which tells
// left from right, does not.
func TestEvaluateTTA(t *testing.T) {
	b := newBackend(t)
	l := newQuadLearner(t, b, nil)
	d := quadDataLarge()
	run(t, l, []Stage{{Epochs: 4, LR: Const(1e-2)}}, d, RunOptions{})
	dir := t.TempDir()
	if _, err := l.Export(dir, ExportInfo{Name: "quad"}); err != nil {
		t.Fatal(err)
	}
	man, ob, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	valid := d.Valid.(memDataset)
	eval := func(ds memDataset, tta bool) *Metrics {
		t.Helper()
		m, err := Evaluate(context.Background(), b, man, ob, ds, quadMeta, EvalOptions{BatchSize: 24, TTA: tta})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	plain, plainMir := eval(valid, false), eval(mirrored(valid), false)
	if a, m := plain.Values()[MetricAccuracy], plainMir.Values()[MetricAccuracy]; a < 0.9 || m > 0.6 {
		t.Fatalf("without TTA: accuracy %v on the data and %v mirrored, want >= 0.9 and <= 0.6 (the test needs a model that tells left from right)", a, m)
	}
	tta, ttaMir := eval(valid, true), eval(mirrored(valid), true)
	if tta.Samples() != valid.Len() || ttaMir.Samples() != valid.Len() {
		t.Fatalf("TTA counted %d and %d items, want %d", tta.Samples(), ttaMir.Samples(), valid.Len())
	}
	pc, pcMir := tta.PerClass(), ttaMir.PerClass()
	for _, c := range quadMeta.Classes {
		if pc[c] != pcMir[c] {
			t.Errorf("class %s: TTA tallies %+v on the data, %+v mirrored: want equal", c, pc[c], pcMir[c])
		}
	}
}
