package train

import (
	"context"
	"errors"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// memDataset is an in-memory dataset.
type memDataset []data.Item

func (d memDataset) Len() int                     { return len(d) }
func (d memDataset) Get(i int) (data.Item, error) { return d[i], nil }

// quadrants makes n gray s x s images of 4 classes: class k has a bright
// quadrant k over noise.
func quadrants(n, s int, seed uint64) memDataset {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make(memDataset, n)
	for i := range out {
		k := i % 4
		px := make([]byte, s*s)
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				v := 40 + rng.IntN(60)
				if (y >= s/2) == (k >= 2) && (x >= s/2) == (k%2 == 1) {
					v += 120
				}
				px[y*s+x] = byte(v)
			}
		}
		out[i] = data.Item{Name: "q", Pixels: px, Width: s, Height: s, Channels: 1, Label: k}
	}
	return out
}

var quadMeta = data.Meta{Task: data.Classify, Classes: []string{"tl", "tr", "bl", "br"}, VoidClass: -1}

func newBackend(t testing.TB) kernels.Backend { return newBackendThreads(t, 2) }

func newBackendThreads(t testing.TB, threads int) kernels.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Config{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newQuadLearner(t testing.TB, b kernels.Backend, mut func(*Config)) *Learner {
	t.Helper()
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Meta: quadMeta, BatchSize: 16, Size: 16, Channels: 1, Seed: 5, Log: zerolog.Nop(),
		Loader: data.LoaderConfig{Workers: 2}}
	if mut != nil {
		mut(&cfg)
	}
	l, err := New(b, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func quadData() Data {
	return Data{Train: quadrants(64, 16, 1), Valid: quadrants(32, 16, 2)}
}

// quadDataLarge has 16 batches per epoch, enough steps for BatchNorm's
// running statistics to settle for validation.
func quadDataLarge() Data {
	return Data{Train: quadrants(256, 16, 1), Valid: quadrants(64, 16, 2)}
}

// weights returns a copy of every float initializer after Sync.
func weights(t testing.TB, l *Learner) map[string][]float32 {
	t.Helper()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for n, v := range l.Model().Graph.Initializers {
		out[n] = slices.Clone(v.Float)
	}
	return out
}

func run(t testing.TB, l *Learner, plan []Stage, d Data, opt RunOptions) {
	t.Helper()
	if err := l.Run(context.Background(), plan, d, opt); err != nil {
		t.Fatal(err)
	}
}

// TestShortRunLossFalls trains a few epochs on an easy task: the
// smoothed training loss falls well below its start and the validation
// accuracy is high.
func TestShortRunLossFalls(t *testing.T) {
	l := newQuadLearner(t, newBackend(t), nil)
	run(t, l, []Stage{{Epochs: 4, LR: Const(1e-2)}}, quadDataLarge(), RunOptions{})
	r := l.Rec
	if len(r.Losses) != 64 || len(r.Epochs) != 4 {
		t.Fatalf("recorded %d steps and %d epochs (want 64 and 4)", len(r.Losses), len(r.Epochs))
	}
	first, last := r.Losses[0], r.Epochs[3].TrainLoss
	acc := r.Epochs[3].Metrics[MetricAccuracy]
	t.Logf("loss %.4f -> %.4f (valid %.4f), accuracy %.3f", first, last, r.Epochs[3].ValidLoss, acc)
	if !(last < first/2) {
		t.Errorf("smoothed training loss %.4f after 4 epochs (first batch %.4f): want below half", last, first)
	}
	if !(acc >= 0.9) {
		t.Errorf("validation accuracy %.3f, want >= 0.9", acc)
	}
}

// TestLabelSmoothing: a short run with label smoothing learns, and its
// losses (validation uses the same loss) never fall below the entropy of
// the smoothed target, which plain cross-entropy would.
func TestLabelSmoothing(t *testing.T) {
	const eps = 0.1
	l := newQuadLearner(t, newBackend(t), func(c *Config) { c.LabelSmoothing = eps })
	run(t, l, []Stage{{Epochs: 4, LR: Const(1e-2)}}, quadDataLarge(), RunOptions{})
	r := l.Rec
	c := float64(len(quadMeta.Classes))
	hit, spread := 1-eps+eps/c, eps/c
	floor := -hit*math.Log(hit) - (c-1)*spread*math.Log(spread)
	acc := r.Epochs[3].Metrics[MetricAccuracy]
	t.Logf("loss %.4f -> %.4f (valid %.4f, floor %.4f), accuracy %.3f", r.Losses[0], r.Epochs[3].TrainLoss, r.Epochs[3].ValidLoss, floor, acc)
	if !(r.Epochs[3].TrainLoss < r.Losses[0]/2) || !(acc >= 0.9) {
		t.Errorf("loss %.4f -> %.4f, accuracy %.3f: want the loss halved and accuracy >= 0.9", r.Losses[0], r.Epochs[3].TrainLoss, acc)
	}
	for i, lv := range r.Losses {
		if lv < floor-1e-4 {
			t.Fatalf("step %d: loss %.4f below the smoothed target's entropy %.4f", i, lv, floor)
		}
	}
	for _, e := range r.Epochs {
		if e.ValidLoss < floor-1e-4 {
			t.Fatalf("epoch %d: validation loss %.4f below %.4f", e.Epoch, e.ValidLoss, floor)
		}
	}
}

// TestCheckpointResume: a run interrupted after every epoch or two and
// resumed from its checkpoint by fresh learners (models built with another
// seed) ends with exactly the parameters and running statistics of an
// uninterrupted run, across a frozen stage, a resize and an unfrozen stage
// with discriminative rates, with SGD and with AdamW.
//
// It runs on one thread: with two, the CPU backend's conv weight gradients
// sum per-thread partials in the order the threads happened to claim work,
// so two runs differ in the last bits whether or not they resume.
func TestCheckpointResume(t *testing.T) {
	plan := []Stage{
		{Size: 16, Epochs: 2, LR: Slice(0, 1e-2), Freeze: true},
		{Size: 24, Epochs: 2, LR: Slice(1e-4, 3e-3)},
	}
	for _, o := range []Optim{AdamW, SGD} {
		t.Run(string(o), func(t *testing.T) {
			b := newBackendThreads(t, 1)
			d := quadData()
			ref := newQuadLearner(t, b, func(c *Config) { c.Optimizer = o })
			run(t, ref, plan, d, RunOptions{})
			want := weights(t, ref)

			ck := filepath.Join(t.TempDir(), "ckpt")
			for _, chunk := range []int{1, 2, 1} {
				l := newQuadLearner(t, b, func(c *Config) { c.Optimizer = o })
				if _, err := os.Stat(ck); err == nil {
					if err := l.LoadCheckpoint(ck); err != nil {
						t.Fatal(err)
					}
				}
				run(t, l, plan, d, RunOptions{Checkpoint: ck, MaxEpochs: chunk})
				l.Close()
			}
			l := newQuadLearner(t, b, func(c *Config) { c.Optimizer = o })
			if err := l.LoadCheckpoint(ck); err != nil {
				t.Fatal(err)
			}
			if p := l.Position(); p.Stage != 2 || p.Global != 4 {
				t.Fatalf("final position %+v, want stage 2 after 4 epochs", p)
			}
			if l.Size() != 24 || len(l.Rec.Epochs) != 4 {
				t.Errorf("resumed size %d with %d recorded epochs (want 24 and 4)", l.Size(), len(l.Rec.Epochs))
			}
			got := weights(t, l)
			for n, w := range want {
				if !slices.Equal(got[n], w) {
					t.Fatalf("%s differs after resume (first values %v vs %v)", n, got[n][:min(3, len(w))], w[:min(3, len(w))])
				}
			}
		})
	}
}

// TestCheckpointErrors: a truncated file, another architecture and
// garbage are refused with ErrCheckpoint and leave the learner usable.
func TestCheckpointErrors(t *testing.T) {
	b := newBackend(t)
	l := newQuadLearner(t, b, nil)
	dir := t.TempDir()
	ck := filepath.Join(dir, "ckpt")
	if err := l.SaveCheckpoint(ck); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "trunc")
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("hello"), 0o644)
	for _, p := range []string{trunc, garbage, filepath.Join(dir, "missing")} {
		if err := l.LoadCheckpoint(p); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("LoadCheckpoint(%s) = %v, want ErrCheckpoint", filepath.Base(p), err)
		}
	}
	m, err := arch.Build("resnet34@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(b, m, Config{Meta: quadMeta, BatchSize: 16, Size: 16, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.LoadCheckpoint(ck); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "resnet18") {
		t.Errorf("loading a resnet18 checkpoint into resnet34: %v", err)
	}
	if err := l.LoadCheckpoint(ck); err != nil {
		t.Errorf("the learner's own checkpoint: %v", err)
	}
}

// TestFreezeKeepsBody: with the body frozen only the head (and, as
// fastai's train_bn, the body's BatchNorm scales and biases) change; with
// FreezeBN those stay too. Running statistics update in training mode
// either way.
func TestFreezeKeepsBody(t *testing.T) {
	for _, freezeBN := range []bool{false, true} {
		l := newQuadLearner(t, newBackend(t), func(c *Config) { c.FreezeBN = freezeBN })
		before := weights(t, l)
		run(t, l, []Stage{{Epochs: 1, LR: Slice(0, 1e-2), Freeze: true}}, quadData(), RunOptions{})
		after := weights(t, l)
		m := l.Model()
		head := len(m.Groups) - 1
		for gi, names := range m.Groups {
			for _, n := range names {
				changed := !slices.Equal(before[n], after[n])
				stat := !arch.Trainable(n)
				switch {
				case gi == head && !stat && !changed:
					t.Errorf("head parameter %s did not change", n)
				case stat && !changed && gi < head:
					t.Errorf("running statistic %s did not change", n)
				case gi < head && !stat && l.bn[n] && changed == freezeBN:
					t.Errorf("FreezeBN=%v: body BatchNorm parameter %s changed=%v", freezeBN, n, changed)
				case gi < head && !stat && !l.bn[n] && changed:
					t.Errorf("frozen body parameter %s changed", n)
				}
			}
		}
	}
}

// TestSampleWeights: scaling every weight leaves training unchanged (the
// loss is a weighted mean); uneven weights change it.
func TestSampleWeights(t *testing.T) {
	// One thread: two runs compared at 1e-4 must not differ by how 2
	// threads happened to sum the conv weight gradients (on 2 threads the
	// uniform-weights comparison failed one make test run in several).
	b := newBackendThreads(t, 1)
	d := quadData()
	plan := []Stage{{Epochs: 1, LR: Const(1e-2)}}
	train := func(w []float32) map[string][]float32 {
		l := newQuadLearner(t, b, func(c *Config) { c.Weights = w })
		run(t, l, plan, d, RunOptions{})
		return weights(t, l)
	}
	same := func(a, b map[string][]float32, tol float64) bool {
		for n := range a {
			for i := range a[n] {
				if math.Abs(float64(a[n][i]-b[n][i])) > tol*(1+math.Abs(float64(a[n][i]))) {
					return false
				}
			}
		}
		return true
	}
	base := train(nil)
	threes := make([]float32, d.Train.Len())
	uneven := make([]float32, d.Train.Len())
	for i := range threes {
		threes[i] = 3
		uneven[i] = 1
		if i%4 == 0 {
			uneven[i] = 5
		}
	}
	if !same(base, train(threes), 1e-4) {
		t.Error("weights of 3 for every sample changed training")
	}
	if same(base, train(uneven), 1e-4) {
		t.Error("uneven weights did not change training")
	}
}

// TestResizeCarriesWeights: progressive resizing recompiles for the new
// size with the same parameters, and training continues there: a model
// trained at 16x16 and fine-tuned two epochs at 32x32 classifies 32x32
// images. One thread: the run is bit-exact, so the threshold does not
// depend on how 2 threads summed the weight gradients (one epoch on 2
// threads reached 0.84-0.95 across runs).
func TestResizeCarriesWeights(t *testing.T) {
	l := newQuadLearner(t, newBackendThreads(t, 1), nil)
	run(t, l, []Stage{{Size: 16, Epochs: 2, LR: Const(1e-2)}}, quadDataLarge(), RunOptions{})
	before := weights(t, l)
	if err := l.Resize(32); err != nil {
		t.Fatal(err)
	}
	for n, w := range weights(t, l) {
		if !slices.Equal(w, before[n]) {
			t.Fatalf("%s changed on Resize", n)
		}
	}
	big := Data{Train: quadrants(256, 32, 1), Valid: quadrants(64, 32, 2)}
	vl, met, err := l.Validate(context.Background(), big.Valid)
	if err != nil {
		t.Fatal(err)
	}
	run(t, l, []Stage{{Size: 32, Epochs: 2, LR: Const(1e-2)}}, big, RunOptions{})
	last := l.Rec.Epochs[len(l.Rec.Epochs)-1]
	t.Logf("at 32x32: before fine-tuning valid loss %.4f accuracy %.3f; after two epochs %.4f, %.3f",
		vl, met.Values()[MetricAccuracy], last.ValidLoss, last.Metrics[MetricAccuracy])
	if l.Size() != 32 || last.Size != 32 {
		t.Errorf("size %d (epoch recorded at %d) after the 32 stage", l.Size(), last.Size)
	}
	if acc := last.Metrics[MetricAccuracy]; !(acc >= 0.9) {
		t.Errorf("accuracy at 32x32 after fine-tuning %.3f, want >= 0.9", acc)
	}
}

// TestLRFindRestores: the finder on the model suggests a finite rate and
// leaves weights and running statistics exactly as they were; it writes a
// plot.
func TestLRFindRestores(t *testing.T) {
	l := newQuadLearner(t, newBackend(t), nil)
	before := weights(t, l)
	res, err := l.LRFind(context.Background(), quadData().Train, LRFindConfig{Iters: 60})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("suggestion %.3g, min at %.3g, %d steps, diverged %v", res.Suggestion, res.MinLR, len(res.LRs), res.Diverged)
	if !(res.Suggestion >= 1e-7 && res.Suggestion <= 10) {
		t.Errorf("suggestion %g outside the sweep", res.Suggestion)
	}
	for n, w := range weights(t, l) {
		if !slices.Equal(w, before[n]) {
			t.Fatalf("%s changed by LRFind", n)
		}
	}
	p := filepath.Join(t.TempDir(), "lr_find.png")
	if err := res.Plot(p); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, p)
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Something other than the white background was drawn.
	bnd := img.Bounds()
	drawn := 0
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 3 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 3 {
			if r, g, b, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
				drawn++
			}
		}
	}
	if drawn < 100 {
		t.Errorf("%s: only %d drawn pixels", path, drawn)
	}
}

// TestExport writes the model directory: model.Load reads it back, the
// ONNX graph has the trained size and weights, and the plots decode.
func TestExport(t *testing.T) {
	l := newQuadLearner(t, newBackend(t), nil)
	run(t, l, []Stage{{Epochs: 1, LR: Const(1e-2)}}, quadData(), RunOptions{})
	dir := filepath.Join(t.TempDir(), "m")
	man, err := l.Export(dir, ExportInfo{Name: "quad", Mean: []float32{0.4}, Std: []float32{0.2},
		Metrics: l.Rec.Epochs[0].Metrics, DataDigest: model.Digest([]byte("quad"))})
	if err != nil {
		t.Fatal(err)
	}
	got, b, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task != model.Classify || got.Input.Width != 16 || got.Input.Channels != 1 || len(got.Labels) != 4 ||
		got.Arch != "resnet18@0.125" || got.Metrics[MetricAccuracy] != man.Metrics[MetricAccuracy] || got.Normalization.Std[0] != float64(float32(0.2)) {
		t.Errorf("manifest %+v", got)
	}
	om, err := onnx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s := om.Graph.Inputs[0].Shape; len(s) != 4 || s[1] != 1 || s[2] != 16 || s[3] != 16 {
		t.Errorf("onnx input shape %v", s)
	}
	w := weights(t, l)
	for n, v := range om.Graph.Initializers {
		if !slices.Equal(v.Float, w[n]) {
			t.Errorf("onnx initializer %s differs from the trained one", n)
			break
		}
	}
	checkPNG(t, filepath.Join(dir, LossPlotFile))
	checkPNG(t, filepath.Join(dir, LRPlotFile))
}

func TestMixedPrecisionRefusedOnCPU(t *testing.T) {
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(newBackend(t), m, Config{Meta: quadMeta, Size: 16, Channels: 1, MixedPrecision: true})
	if !errors.Is(err, ErrMixedPrecision) || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("New with MixedPrecision on cpu: %v, want ErrMixedPrecision naming the backend", err)
	}
}

// mathBackend is the CPU backend with a recorded math mode: a stand-in
// for a kernels.MathModer (the CUDA backend) in these GPU-less tests.
type mathBackend struct {
	kernels.Backend
	math string
	sets []string
}

func (b *mathBackend) SetMath(m string) error {
	if m != kernels.MathFP32 && m != kernels.MathFP16 && m != kernels.MathBF16 {
		return kernels.ErrParam
	}
	b.math = m
	b.sets = append(b.sets, m)
	return nil
}

func (b *mathBackend) Math() string { return b.math }

func TestMixedPrecisionSetsBF16(t *testing.T) {
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := &mathBackend{Backend: newBackend(t), math: kernels.MathFP16}
	l, err := New(b, m, Config{Meta: quadMeta, Size: 16, Channels: 1, MixedPrecision: true})
	if err != nil {
		t.Fatalf("New with MixedPrecision on a MathModer: %v", err)
	}
	if b.Math() != kernels.MathBF16 {
		t.Errorf("math mode after New: %q, want %q", b.Math(), kernels.MathBF16)
	}
	l.Close()
	l.Close()
	if b.Math() != kernels.MathFP16 || !slices.Equal(b.sets, []string{kernels.MathBF16, kernels.MathFP16}) {
		t.Errorf("after Close: mode %q, SetMath calls %v; want the previous %q restored once", b.Math(), b.sets, kernels.MathFP16)
	}

	// Without MixedPrecision the mode is left alone.
	b.sets = nil
	l, err = New(b, m, Config{Meta: quadMeta, Size: 16, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(b.sets) != 0 {
		t.Errorf("SetMath called %v without MixedPrecision", b.sets)
	}
}

func TestConfigErrors(t *testing.T) {
	m, err := arch.Build("resnet18@0.125", arch.TaskClassify, arch.Config{Classes: 4, SmallStem: true, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	for name, c := range map[string]Config{
		"no size":     {Meta: quadMeta, Channels: 1},
		"bad task":    {Meta: data.Meta{Task: "detect"}, Size: 16, Channels: 1},
		"no classes":  {Meta: data.Meta{Task: data.Classify}, Size: 16, Channels: 1},
		"bad optim":   {Meta: quadMeta, Size: 16, Channels: 1, Optimizer: "lamb"},
		"neg weight":  {Meta: quadMeta, Size: 16, Channels: 1, Weights: []float32{1, -1}},
		"channels 2":  {Meta: quadMeta, Size: 16, Channels: 2},
		"nan wd":      {Meta: quadMeta, Size: 16, Channels: 1, WeightDecay: math.NaN()},
		"zero points": {Meta: data.Meta{Task: data.Regress}, Size: 16, Channels: 1},
		"smoothing 1": {Meta: quadMeta, Size: 16, Channels: 1, LabelSmoothing: 1},
		"smoothing multilabel": {Meta: data.Meta{Task: data.MultiLabel, Classes: []string{"a", "b"}}, Size: 16, Channels: 1,
			LabelSmoothing: 0.1},
	} {
		if _, err := New(b, m, c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	l := newQuadLearner(t, b, nil)
	if err := l.Run(context.Background(), []Stage{{Epochs: 0, LR: Const(1)}}, quadData(), RunOptions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("0 epochs: %v", err)
	}
	small := Data{Train: quadrants(8, 16, 1), Valid: quadrants(8, 16, 2)}
	if err := l.Run(context.Background(), []Stage{{Epochs: 1, LR: Const(1e-3)}}, small, RunOptions{}); !errors.Is(err, ErrData) {
		t.Errorf("8 items for batches of 16: %v", err)
	}
}

// TestEvaluateMatchesValidate: the exported model evaluated from its
// directory scores what the learner's own validation scored.
func TestEvaluateMatchesValidate(t *testing.T) {
	b := newBackend(t)
	l := newQuadLearner(t, b, nil)
	d := quadDataLarge()
	run(t, l, []Stage{{Epochs: 1, LR: Const(1e-2)}}, d, RunOptions{})
	_, want, err := l.Validate(context.Background(), d.Valid)
	if err != nil {
		t.Fatal(err)
	}
	// Item by item: one 0/1 accuracy per item, in order, whose mean is
	// the whole set's accuracy.
	_, _, each, err := l.ValidateEach(context.Background(), d.Valid, MetricAccuracy)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i, v := range each {
		if v != 0 && v != 1 {
			t.Fatalf("item %d accuracy %v, want 0 or 1", i, v)
		}
		sum += v
	}
	if len(each) != d.Valid.Len() || math.Abs(sum/float64(len(each))-want.Values()[MetricAccuracy]) > 1e-12 {
		t.Errorf("ValidateEach: %d items with mean %v, want %d with the set's accuracy %v", len(each), sum/float64(len(each)), d.Valid.Len(), want.Values()[MetricAccuracy])
	}
	if _, _, _, err := l.ValidateEach(context.Background(), d.Valid, "no-such-metric"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown metric: %v, want ErrConfig", err)
	}
	dir := t.TempDir()
	if _, err := l.Export(dir, ExportInfo{Name: "quad"}); err != nil {
		t.Fatal(err)
	}
	man, ob, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(context.Background(), b, man, ob, d.Valid, quadMeta, EvalOptions{BatchSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := got.Values()[MetricAccuracy], want.Values()[MetricAccuracy]; g != w || got.Samples() != d.Valid.Len() {
		t.Errorf("Evaluate accuracy %v over %d items, Validate %v over %d", g, got.Samples(), w, d.Valid.Len())
	}
	bad := data.Meta{Task: data.Classify, Classes: []string{"a", "b"}}
	if _, err := Evaluate(context.Background(), b, man, ob, d.Valid, bad, EvalOptions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("evaluating a 4-class model on 2-class data: %v", err)
	}
}

// TestBenchHarness runs the training benchmark on a tiny model: the
// numbers are only checked for consistency.
func TestBenchHarness(t *testing.T) {
	res, err := Bench(context.Background(), newBackend(t), BenchOptions{Arch: "resnet18@0.125", SmallStem: true, Size: 16, Batch: 4, Reps: 2, M: 64, K: 64, N: 64})
	if err != nil {
		t.Fatal(err)
	}
	if !(res.StepMS > 0 && res.SgemmGFLOPS > 0 && res.GFLOPS > 0) || math.Abs(res.ImagesPerS-4000/res.StepMS) > 1e-6*res.ImagesPerS ||
		math.Abs(res.Ratio-res.GFLOPS/res.SgemmGFLOPS) > 1e-9 || res.BLASCore == "" {
		t.Errorf("inconsistent result %+v", res)
	}
	if res.Ops != nil {
		t.Errorf("ops without Profile: %d", len(res.Ops))
	}
}

// TestBenchProfile: Profile times every kernel of a step, forward then
// backward; each conv's forward FLOPs are the model's own and their sum is
// arch.FLOPs; a conv's backward counts twice its forward, once when it
// computes no data gradient (the stem, on the input).
func TestBenchProfile(t *testing.T) {
	opt := BenchOptions{Arch: "resnet8s@0.125", SmallStem: true, Size: 16, Batch: 4, Channels: 1, Reps: 3, M: 64, K: 64, N: 64, Profile: 3}
	res, err := Bench(context.Background(), newBackend(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	m, err := arch.Build(opt.Arch, arch.TaskClassify, arch.Config{Classes: 10, SmallStem: true, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	total, err := arch.FLOPs(m.Graph, map[string][]int{m.Graph.Inputs[0].Name: {4, 1, 16, 16}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := map[string]int64{}
	var sum int64
	var ms float64
	backward := false
	for _, o := range res.Ops {
		ms += o.MS
		if o.MS < 0 || o.Cores < 0 || (o.FLOPs > 0) != (o.Op == "Conv" || o.Op == "Gemm") {
			t.Errorf("%+v", o)
		}
		if !o.Backward {
			if backward {
				t.Fatalf("forward %s after a backward", o.Node)
			}
			fwd[o.Node] = o.FLOPs
			sum += o.FLOPs
			continue
		}
		backward = true
		want := 2 * fwd[o.Node]
		if o.Node == "conv1" {
			want = fwd[o.Node]
		}
		if o.Op == "Conv" && o.FLOPs != want {
			t.Errorf("%s backward: %d FLOPs, want %d (forward %d)", o.Node, o.FLOPs, want, fwd[o.Node])
		}
	}
	if sum != total || !backward || fwd["conv1"] == 0 {
		t.Errorf("forward FLOPs sum %d, want arch.FLOPs %d; backward seen %v; conv1 %d", sum, total, backward, fwd["conv1"])
	}
	if !(ms > 0) {
		t.Errorf("profiled kernels add up to %v ms", ms)
	}
}

// TestAutoLR: a stage with FindLR runs the finder when it starts and
// trains at the rate Auto derives from the suggestion; the next stage
// derives its rates from that one.
func TestAutoLR(t *testing.T) {
	l := newQuadLearner(t, newBackend(t), nil)
	var found []float64
	l.OnLRFind = func(stage int, res *LRFindResult) { found = append(found, res.Suggestion) }
	plan := []Stage{
		{Epochs: 1, Freeze: true, FindLR: true, Auto: func(s float64, _ Rates) Rates { return Slice(0, s) }},
		{Epochs: 1, Auto: func(_ float64, prev Rates) Rates { return Slice(prev.Hi/500, prev.Hi/5) }},
	}
	run(t, l, plan, quadData(), RunOptions{})
	if len(found) != 1 {
		t.Fatalf("the finder ran %d times, want once", len(found))
	}
	peak := func(e int) float64 {
		m := 0.0
		for i := l.Rec.Epochs[e].Iter - 4; i < l.Rec.Epochs[e].Iter; i++ {
			m = math.Max(m, l.Rec.LRs[i])
		}
		return m
	}
	// The head's peak rate over 4 steps of one cycle is at iteration
	// int(0.3*4) = 1: exactly the max.
	if p := peak(0); math.Abs(p-found[0]) > 1e-12*found[0] {
		t.Errorf("stage 0 peaked at %g, want the suggestion %g", p, found[0])
	}
	if p := peak(1); math.Abs(p-found[0]/5) > 1e-12*found[0] {
		t.Errorf("stage 1 peaked at %g, want suggestion/5 = %g", p, found[0]/5)
	}
}
