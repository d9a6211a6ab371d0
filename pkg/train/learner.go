package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
)

// Optim names an optimiser.
type Optim string

// Optimisers.
const (
	// AdamW is Adam with decoupled weight decay (fastai's default,
	// betas (mom, 0.99), eps 1e-5); its beta1 follows the momentum
	// schedule.
	AdamW Optim = "adamw"
	// SGD is SGD with momentum (the schedule's momentum) and decoupled
	// weight decay (fastai's true_wd: p *= 1-lr·wd before the step).
	SGD Optim = "sgd"
)

// DefaultWeightDecay is fastai's wd.
const DefaultWeightDecay = 0.01

// Config configures a Learner. Zero fields get the defaults named per
// field (setDefaults).
type Config struct {
	// Meta is the data's task, classes, Void class and points.
	Meta data.Meta
	// BatchSize is the mini-batch size (64). Training drops the last short
	// batch of an epoch; validation pads it (padded rows weigh 0).
	BatchSize int
	// Size is the initial input side (required); Resize changes it.
	Size int
	// Channels is the input channel count (3).
	Channels int
	// Optimizer is AdamW (default) or SGD.
	Optimizer Optim
	// WeightDecay is decoupled weight decay (0: DefaultWeightDecay;
	// negative: none).
	WeightDecay float64
	// Beta2 and Eps are AdamW's (0.99, 1e-5: fastai's).
	Beta2, Eps float64
	// LabelSmoothing is eps of label-smoothed cross-entropy (fastai's
	// LabelSmoothingCrossEntropy, usually 0.1) for classify and segment:
	// the target puts 1-eps on the true class and eps spread over all
	// classes, the training and validation loss alike. 0: plain
	// cross-entropy. The backend must implement kernels.LabelSmoothingOps.
	LabelSmoothing float64
	// FreezeBN also freezes the BatchNorm scale/bias of frozen groups.
	// By default they keep training (fastai's train_bn=True); running
	// statistics update in training mode either way, as in fastai.
	FreezeBN bool
	// MixedPrecision trains with bf16 tensor-core GEMMs and FP32 master
	// weights: New sets the backend's math mode to kernels.MathBF16 (a
	// kernels.MathModer: the CUDA backend) until Close, so every GEMM and
	// implicit-GEMM convolution rounds its operands to bfloat16 and sums
	// in FP32, while tensors, weights, optimiser state and every other op
	// stay FP32. bf16 has FP32's exponent range, so no loss scaling is
	// needed. A backend without math modes (the CPU) is refused with
	// ErrMixedPrecision rather than silently training in FP32.
	MixedPrecision bool
	// Weights are per-sample loss weights indexed by training-dataset
	// index (nil: every sample weighs 1). The retrain service weights
	// corrections up this way.
	Weights []float32
	// Distill, when set, adds a distillation term towards a teacher's
	// outputs on the items it has logits for (classifiers only; see
	// Distill). The retrain service keeps the serving model's answers on
	// its replay items this way.
	Distill *Distill
	// Loader is the template for data passes: Augment (training only),
	// Resize, Padding, Mean/Std, Workers, Prefetch. Size, BatchSize,
	// Channels, Shuffle, Seed, Epoch and DropLast are set per pass.
	Loader data.LoaderConfig
	// Seed seeds the training order and augmentation (with the epoch).
	Seed uint64
	// Log receives one line per epoch and stage.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.Channels == 0 {
		c.Channels = 3
	}
	if c.Optimizer == "" {
		c.Optimizer = AdamW
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = DefaultWeightDecay
	}
	if c.WeightDecay < 0 {
		c.WeightDecay = 0
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.99
	}
	if c.Eps == 0 {
		c.Eps = 1e-5
	}
}

// Validate reports the first bad field, wrapping ErrConfig.
func (c *Config) Validate() error {
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("%w: batch size (got=%d, want>=1)", ErrConfig, c.BatchSize)
	case c.Size < 1 || c.Size > 4096:
		return fmt.Errorf("%w: size (got=%d, want 1..4096)", ErrConfig, c.Size)
	case c.Channels != 1 && c.Channels != 3:
		return fmt.Errorf("%w: channels (got=%d, want 1 or 3)", ErrConfig, c.Channels)
	case c.Optimizer != AdamW && c.Optimizer != SGD:
		return fmt.Errorf("%w: optimizer (got=%q, want %q or %q)", ErrConfig, c.Optimizer, AdamW, SGD)
	case !(c.Beta2 > 0 && c.Beta2 < 1) || !(c.Eps > 0):
		return fmt.Errorf("%w: adamw beta2/eps (got=%v/%v)", ErrConfig, c.Beta2, c.Eps)
	case math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("%w: weight decay (got=%v)", ErrConfig, c.WeightDecay)
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1):
		return fmt.Errorf("%w: label smoothing (got=%v, want 0 <= eps < 1)", ErrConfig, c.LabelSmoothing)
	case c.LabelSmoothing != 0 && c.Meta.Task != data.Classify && c.Meta.Task != data.Segment:
		return fmt.Errorf("%w: label smoothing is for classify and segment (got task %s)", ErrConfig, c.Meta.Task)
	}
	switch c.Meta.Task {
	case data.Classify, data.MultiLabel, data.Segment:
		if len(c.Meta.Classes) < 1 {
			return fmt.Errorf("%w: meta: %s needs classes (got none)", ErrConfig, c.Meta.Task)
		}
	case data.Regress:
		if c.Meta.Points < 1 {
			return fmt.Errorf("%w: meta: regress needs points (got=%d)", ErrConfig, c.Meta.Points)
		}
	default:
		return fmt.Errorf("%w: meta: task %q (want classify, multilabel, segment or regress)", ErrConfig, c.Meta.Task)
	}
	for i, w := range c.Weights {
		if !(w >= 0) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("%w: weights[%d] (got=%v, want finite >= 0)", ErrConfig, i, w)
		}
	}
	if c.Distill != nil {
		if err := c.Distill.validate(c.Meta.Task, c.outputs()); err != nil {
			return err
		}
	}
	return nil
}

// outputs is the model's output width: classes or 2*points.
func (c *Config) outputs() int {
	if c.Meta.Task == data.Regress {
		return 2 * c.Meta.Points
	}
	return len(c.Meta.Classes)
}

// void is the ignore index of the loss and metrics (-1 for none).
func (c *Config) void() int {
	if c.Meta.Task == data.Segment {
		return c.Meta.VoidClass
	}
	return -1
}

// optState is one parameter's optimiser state: SGD velocity in a, or
// AdamW's first and second moments in a and b; step is AdamW's 1-based
// step count (how many updates the parameter has had).
type optState struct {
	a, b *kernels.Tensor
	step int
}

// Position is where a multi-stage run stands: Stage and Epoch (within the
// stage) of the next epoch to train; Global counts epochs over every
// stage and seeds each epoch's order and augmentation.
type Position struct {
	Stage  int `json:"stage"`
	Epoch  int `json:"epoch"`
	Global int `json:"global"`
}

// Learner trains one model on one backend. It is not safe for concurrent
// use.
type Learner struct {
	b     kernels.Backend
	model *arch.Model
	cfg   Config
	log   zerolog.Logger

	size int
	prog *graph.Program
	// prof, when set, makes step time every kernel (Bench's profile).
	prof *stepProfile
	// group is the layer group of every initializer; bn marks BatchNorm
	// scales and biases.
	group    map[string]int
	bn       map[string]bool
	frozenTo int
	// applied is the frozenTo the program's Backward is planned for
	// (applyFreeze).
	applied int
	opt     map[string]*optState
	// restoreMath, set when MixedPrecision changed the backend's math
	// mode, puts the previous mode back (Close).
	restoreMath func()

	// Per-size buffers.
	x, target, weight, lossT, dy *kernels.Tensor
	hostW                        []float32
	// Distillation: the teacher's soft targets per training index, the
	// batch's rows of them, and host copies of the outputs and dy.
	distP, distQ    [][]float32
	hostOut, hostDy []float32

	// Rec records every step and epoch (for tables, plots and the
	// manifest).
	Rec Recorder
	pos Position
	// smoothing state of the training loss (fastai's Recorder, beta 0.98),
	// reset per stage.
	smAvg float64
	smN   int

	// OnBatch, when set, is called after every training step (progress
	// bars); OnEpoch after every epoch's validation.
	OnBatch func(BatchInfo)
	OnEpoch func(EpochInfo)
	// OnLRFind is called with each stage's LR finder result (Stage.FindLR).
	OnLRFind func(stage int, res *LRFindResult)
	// chosen are the rates each stage of the current Run uses.
	chosen map[int]Rates
}

// BatchInfo describes one training step.
type BatchInfo struct {
	Stage, Epoch, Epochs, Batch, Batches int
	Loss, Smoothed, LR, Mom              float64
	Elapsed                              time.Duration
}

// EpochInfo is one row of the training table.
type EpochInfo struct {
	Stage       int                `json:"stage"`
	Epoch       int                `json:"epoch"`
	Size        int                `json:"size"`
	TrainLoss   float64            `json:"train_loss"` // smoothed, as fastai's column
	ValidLoss   float64            `json:"valid_loss"`
	Metrics     map[string]float64 `json:"metrics"`
	MetricNames []string           `json:"metric_names"`
	Time        time.Duration      `json:"time_ns"`
	ImagesPerS  float64            `json:"images_per_s"`
	Frozen      bool               `json:"frozen"`
	LRs         []float64          `json:"lrs"`
	// Iter is the number of steps recorded at the epoch's end.
	Iter int `json:"iter"`
}

// New returns a Learner for model on backend b, compiled for cfg.Size.
// The Learner takes ownership of model (training updates its graph's
// initializers on SyncToGraph, checkpoints and export).
func New(b kernels.Backend, model *arch.Model, cfg Config) (*Learner, error) {
	if b == nil || model == nil || model.Graph == nil {
		return nil, fmt.Errorf("%w: nil backend or model", ErrConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mm, hasMath := b.(kernels.MathModer)
	if cfg.MixedPrecision && !hasMath {
		return nil, fmt.Errorf("%w: backend %q trains in float32 only (mixed precision is a CUDA feature; drop the flag)", ErrMixedPrecision, b.Name())
	}
	if _, ok := b.(kernels.LabelSmoothingOps); cfg.LabelSmoothing > 0 && !ok {
		return nil, fmt.Errorf("%w: backend %q has no label-smoothed cross-entropy (drop label smoothing)", ErrConfig, b.Name())
	}
	if len(model.Groups) == 0 {
		return nil, fmt.Errorf("%w: model %q has no layer groups", ErrConfig, model.Arch)
	}
	l := &Learner{b: b, model: model, cfg: cfg, log: cfg.Log, group: map[string]int{}, bn: map[string]bool{}, opt: map[string]*optState{}}
	if d := cfg.Distill; d != nil {
		l.distP = softTargets(d.Logits, d.Temperature)
	}
	for gi, names := range model.Groups {
		for _, n := range names {
			l.group[n] = gi
		}
	}
	for _, n := range model.Graph.Nodes {
		if n.Op == "BatchNormalization" && len(n.Inputs) >= 3 {
			l.bn[n.Inputs[1]], l.bn[n.Inputs[2]] = true, true
		}
	}
	if err := l.compile(cfg.Size); err != nil {
		return nil, err
	}
	if cfg.MixedPrecision {
		prev := mm.Math()
		if err := mm.SetMath(kernels.MathBF16); err != nil {
			l.Close()
			return nil, fmt.Errorf("%w: backend %q: %v", ErrMixedPrecision, b.Name(), err)
		}
		l.restoreMath = func() {
			if err := mm.SetMath(prev); err != nil {
				l.log.Warn().Err(err).Str("math", prev).Msg("train: restore the backend's math mode")
			}
		}
	}
	return l, nil
}

// SetWeights sets the per-sample loss weights of later training steps
// (nil: every sample weighs 1), as Config.Weights: for a caller that
// builds its training set after looking at the model's outputs.
func (l *Learner) SetWeights(w []float32) error {
	for i, v := range w {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: weights[%d] (got=%v, want finite >= 0)", ErrConfig, i, v)
		}
	}
	l.cfg.Weights = w
	return nil
}

// Model is the learner's model (its graph holds the latest weights after
// Sync).
func (l *Learner) Model() *arch.Model { return l.model }

// Size is the current input side.
func (l *Learner) Size() int { return l.size }

// Position is where a Run stands (after a checkpoint load: where it
// resumes).
func (l *Learner) Position() Position { return l.pos }

// Groups is the number of layer groups.
func (l *Learner) Groups() int { return len(l.model.Groups) }

// FrozenTo is the number of leading layer groups that are frozen.
func (l *Learner) FrozenTo() int { return l.frozenTo }

// Freeze trains the last layer group (the head) only: fastai's freeze().
func (l *Learner) Freeze() { l.frozenTo = len(l.model.Groups) - 1 }

// Unfreeze trains every group.
func (l *Learner) Unfreeze() { l.frozenTo = 0 }

// FreezeTo freezes the groups before n (fastai's freeze_to, negative n
// counting from the end).
func (l *Learner) FreezeTo(n int) {
	g := len(l.model.Groups)
	if n < 0 {
		n += g
	}
	l.frozenTo = min(max(n, 0), g)
}

// trains says whether the optimiser updates parameter name.
func (l *Learner) trains(name string) bool {
	if l.group[name] >= l.frozenTo {
		return true
	}
	return l.bn[name] && !l.cfg.FreezeBN
}

// Close frees the program, the optimiser state and the buffers, and puts
// back the backend's math mode that MixedPrecision changed.
func (l *Learner) Close() {
	if l.restoreMath != nil {
		l.restoreMath()
		l.restoreMath = nil
	}
	if l.prog != nil {
		l.prog.Close()
		l.prog = nil
	}
	l.freeBuffers()
	for _, s := range l.opt {
		l.freeState(s)
	}
	l.opt = map[string]*optState{}
}

func (l *Learner) freeState(s *optState) {
	if s.a != nil {
		l.b.Free(s.a)
	}
	if s.b != nil {
		l.b.Free(s.b)
	}
}

func (l *Learner) freeBuffers() {
	for _, t := range []*kernels.Tensor{l.x, l.target, l.weight, l.lossT, l.dy} {
		if t != nil {
			l.b.Free(t)
		}
	}
	l.x, l.target, l.weight, l.lossT, l.dy = nil, nil, nil, nil, nil
}

// targetShape is the loader's Y shape for batch n at side s.
func (l *Learner) targetShape(n, s int) kernels.Shape {
	switch l.cfg.Meta.Task {
	case data.Classify:
		return kernels.Shape{n}
	case data.Segment:
		return kernels.Shape{n, s, s}
	}
	return kernels.Shape{n, l.cfg.outputs()}
}

// compile (re)builds the training program for side s from the graph's
// initializers (so Sync first when the program holds newer values).
func (l *Learner) compile(s int) error {
	if l.model.Task == arch.TaskSegment && l.model.Stride > 0 && s%l.model.Stride != 0 {
		return fmt.Errorf("%w: size %d for %s (want a multiple of %d)", ErrConfig, s, l.model.Arch, l.model.Stride)
	}
	var runs uint64 // Dropout continues its mask sequence
	if l.prog != nil {
		runs = l.prog.Runs()
		l.prog.Close()
		l.prog = nil
	}
	l.freeBuffers()
	n := l.cfg.BatchSize
	prog, err := graph.Compile(l.model.Graph, l.b, graph.Options{
		InputShapes: map[string][]int{l.model.Graph.Inputs[0].Name: {n, l.cfg.Channels, s, s}},
		Training:    true,
	})
	if err != nil {
		return fmt.Errorf("train: compile %s at %dx%d: %w", l.model.Arch, s, s, err)
	}
	prog.SetRuns(runs)
	l.prog, l.size, l.applied = prog, s, 0
	alloc := func(sh kernels.Shape) *kernels.Tensor {
		if err != nil {
			return nil
		}
		var t *kernels.Tensor
		t, err = l.b.Alloc(sh)
		return t
	}
	l.x = alloc(kernels.Shape{n, l.cfg.Channels, s, s})
	l.target = alloc(l.targetShape(n, s))
	l.weight = alloc(kernels.Shape{n})
	l.lossT = alloc(kernels.Shape{1})
	outShape := kernels.Shape{n, l.cfg.outputs()}
	if l.cfg.Meta.Task == data.Segment {
		outShape = kernels.Shape{n, l.cfg.outputs(), s, s}
	}
	l.dy = alloc(outShape)
	l.hostW = make([]float32, n)
	l.hostOut, l.hostDy = nil, nil // sized on first use (distillation)
	if err != nil {
		l.Close()
		return err
	}
	return nil
}

// Sync copies the program's parameters and running statistics into the
// model's graph.
func (l *Learner) Sync() error { return l.prog.SyncToGraph() }

// Resize continues at input side s with the same weights (progressive
// resizing): the graph is recompiled for the new size; parameters,
// running statistics and optimiser state carry over.
func (l *Learner) Resize(s int) error {
	if s == l.size {
		return nil
	}
	if err := l.Sync(); err != nil {
		return err
	}
	return l.compile(s)
}

// lossForward writes the task's loss of out against target into lossT
// (cross-entropy label-smoothed by ls when ls > 0).
func lossForward(b kernels.Backend, task data.Task, void int, ls float64, lossT, out, target, weight *kernels.Tensor) error {
	switch task {
	case data.MultiLabel:
		return b.BCEWithLogits(lossT, out, target, weight)
	case data.Regress:
		return b.MSE(lossT, out, target, weight)
	}
	if ls > 0 {
		return b.(kernels.LabelSmoothingOps).CrossEntropySmooth(lossT, out, target, weight, void, float32(ls))
	}
	return b.CrossEntropy(lossT, out, target, weight, void)
}

func lossBackward(b kernels.Backend, task data.Task, void int, ls float64, dy, out, target, weight *kernels.Tensor) error {
	switch task {
	case data.MultiLabel:
		return b.BCEWithLogitsBackward(dy, out, target, weight, 1)
	case data.Regress:
		return b.MSEBackward(dy, out, target, weight, 1)
	}
	if ls > 0 {
		return b.(kernels.LabelSmoothingOps).CrossEntropySmoothBackward(dy, out, target, weight, void, float32(ls), 1)
	}
	return b.CrossEntropyBackward(dy, out, target, weight, void, 1)
}

// checkBatch reports a batch that does not fit the program.
func (l *Learner) checkBatch(bt *data.Batch, full bool) error {
	n := l.cfg.BatchSize
	switch {
	case bt.C != l.cfg.Channels || bt.Size != l.size:
		return fmt.Errorf("%w: batch of %d channels at %dx%d (want %d at %dx%d)", ErrData, bt.C, bt.Size, bt.Size, l.cfg.Channels, l.size, l.size)
	case full && bt.N != n, bt.N < 1 || bt.N > n:
		return fmt.Errorf("%w: batch of %d items (want %d)", ErrData, bt.N, n)
	case len(bt.X) != bt.N*bt.C*bt.Size*bt.Size:
		return fmt.Errorf("%w: batch X has %d values (want %d)", ErrData, len(bt.X), bt.N*bt.C*bt.Size*bt.Size)
	case len(bt.Y) != l.targetShape(bt.N, l.size).Numel():
		return fmt.Errorf("%w: batch Y has %d values (want %d for %v)", ErrData, len(bt.Y), l.targetShape(bt.N, l.size).Numel(), l.targetShape(bt.N, l.size))
	}
	return nil
}

// step trains one full batch: forward, loss, backward and (for every
// parameter the freeze state allows) an optimiser update at the group
// rates lrs and momentum mom. It returns the batch loss before the update.
func (l *Learner) step(bt *data.Batch, lrs []float64, mom float64) (float64, error) {
	if err := l.checkBatch(bt, true); err != nil {
		return 0, err
	}
	if err := l.applyFreeze(); err != nil {
		return 0, err
	}
	if err := l.b.Upload(l.x, bt.X); err != nil {
		return 0, err
	}
	if err := l.b.Upload(l.target, bt.Y); err != nil {
		return 0, err
	}
	var w *kernels.Tensor
	if l.cfg.Weights != nil {
		for i := range l.hostW {
			l.hostW[i] = 1
			if i < len(bt.Index) && bt.Index[i] >= 0 && bt.Index[i] < len(l.cfg.Weights) {
				l.hostW[i] = l.cfg.Weights[bt.Index[i]]
			}
		}
		if err := l.b.Upload(l.weight, l.hostW); err != nil {
			return 0, err
		}
		w = l.weight
	}
	var outs []*kernels.Tensor
	var err error
	if l.prof != nil {
		outs, l.prof.fwd, err = l.prog.RunProfiled(l.x)
	} else {
		outs, err = l.prog.Run(l.x)
	}
	if err != nil {
		return 0, err
	}
	task, void := l.cfg.Meta.Task, l.cfg.void()
	if err := lossForward(l.b, task, void, l.cfg.LabelSmoothing, l.lossT, outs[0], l.target, w); err != nil {
		return 0, fmt.Errorf("train: loss: %w", err)
	}
	lv := make([]float32, 1)
	if err := l.b.Download(lv, l.lossT); err != nil {
		return 0, err
	}
	loss := float64(lv[0])
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, nil
	}
	if err := lossBackward(l.b, task, void, l.cfg.LabelSmoothing, l.dy, outs[0], l.target, w); err != nil {
		return 0, fmt.Errorf("train: loss backward: %w", err)
	}
	if l.distP != nil {
		if len(l.hostOut) != outs[0].Numel() {
			l.hostOut = make([]float32, outs[0].Numel())
		}
		if err := l.b.Download(l.hostOut, outs[0]); err != nil {
			return 0, err
		}
		var hw []float32
		if w != nil {
			hw = l.hostW
		}
		if loss, err = l.addDistill(l.hostOut, bt.Index, bt.N, hw, loss); err != nil {
			return 0, fmt.Errorf("train: distillation: %w", err)
		}
	}
	if l.prof != nil {
		l.prof.bwd, err = l.prog.BackwardProfiled(l.dy)
	} else {
		err = l.prog.Backward(l.dy)
	}
	if err != nil {
		return 0, err
	}
	return loss, l.update(lrs, mom)
}

// update applies one optimiser step to every trainable parameter.
func (l *Learner) update(lrs []float64, mom float64) error {
	wd := float32(l.cfg.WeightDecay)
	for _, p := range l.prog.Params() {
		if !l.trains(p.Name) {
			continue
		}
		lr := float32(lrs[l.group[p.Name]])
		st := l.opt[p.Name]
		if st == nil {
			st = &optState{}
			var err error
			if st.a, err = l.b.Alloc(p.Value.Shape); err != nil {
				return err
			}
			if l.cfg.Optimizer == AdamW {
				if st.b, err = l.b.Alloc(p.Value.Shape); err != nil {
					l.b.Free(st.a)
					return err
				}
			}
			l.opt[p.Name] = st
		}
		st.step++
		var err error
		switch l.cfg.Optimizer {
		case AdamW:
			err = l.b.AdamWStep(p.Value, p.Grad, st.a, st.b, kernels.AdamWParams{
				LR: lr, Beta1: float32(mom), Beta2: float32(l.cfg.Beta2), Eps: float32(l.cfg.Eps), WeightDecay: wd, Step: st.step,
			})
		case SGD:
			if wd != 0 {
				if err = l.b.Scale(p.Value, 1-lr*wd); err != nil {
					break
				}
			}
			err = l.b.SGDStep(p.Value, p.Grad, st.a, kernels.SGDParams{LR: lr, Momentum: float32(mom)})
		}
		if err != nil {
			return fmt.Errorf("train: %s step on %s: %w", l.cfg.Optimizer, p.Name, err)
		}
	}
	return nil
}

// Data is what a Run trains and validates on.
type Data struct {
	Train, Valid data.Dataset
}

// pass starts a loader over ds at the current size.
func (l *Learner) pass(ctx context.Context, ds data.Dataset, train bool, epoch int) (data.Batches, error) {
	lc := l.cfg.Loader
	lc.Size, lc.BatchSize, lc.Channels = l.size, l.cfg.BatchSize, l.cfg.Channels
	lc.Seed, lc.Epoch = l.cfg.Seed, epoch
	lc.Shuffle, lc.DropLast = train, train
	if !train {
		lc.Augment = nil
	}
	return data.Load(ctx, ds, l.cfg.Meta, lc)
}

// Validate runs the model in inference form (BatchNorm running
// statistics, no Dropout) over ds: the mean loss (per-batch losses
// weighted by their item count, as fastai) and the task's metrics.
func (l *Learner) Validate(ctx context.Context, ds data.Dataset) (float64, *Metrics, error) {
	return l.validate(ctx, ds, nil)
}

// ValidateEach is Validate that also scores every item of ds alone: the
// named metric (a key of Metrics.Values) of each item, in ds's order. A
// gate that compares two versions item by item (a paired test) uses it.
func (l *Learner) ValidateEach(ctx context.Context, ds data.Dataset, metric string) (float64, *Metrics, []float64, error) {
	var each []float64
	var bad error
	one, err := l.metricsFor(ds)
	if err != nil {
		return 0, nil, nil, err
	}
	loss, met, err := l.validate(ctx, ds, func(out, y []float32) {
		m := *one
		m.Reset()
		if err := m.Add(out, y, 1); err != nil && bad == nil {
			bad = err
		}
		v, ok := m.Values()[metric]
		if !ok && bad == nil {
			bad = fmt.Errorf("%w: metric %q (want one of %v)", ErrConfig, metric, m.Names())
		}
		each = append(each, v)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return 0, nil, nil, err
	}
	return loss, met, each, nil
}

// validate is Validate; item, when set, sees each item's output and
// target rows.
func (l *Learner) validate(ctx context.Context, ds data.Dataset, item func(out, y []float32)) (float64, *Metrics, error) {
	if err := l.Sync(); err != nil {
		return 0, nil, err
	}
	n, s := l.cfg.BatchSize, l.size
	inf, err := graph.Compile(l.model.Graph, l.b, graph.Options{
		InputShapes: map[string][]int{l.model.Graph.Inputs[0].Name: {n, l.cfg.Channels, s, s}},
	})
	if err != nil {
		return 0, nil, fmt.Errorf("train: compile for validation: %w", err)
	}
	defer inf.Close()
	met, err := l.metricsFor(ds)
	if err != nil {
		return 0, nil, err
	}
	bs, err := l.pass(ctx, ds, false, 0)
	if err != nil {
		return 0, nil, err
	}
	defer bs.Close()
	x := make([]float32, l.x.Numel())
	y := make([]float32, l.target.Numel())
	var out []float32
	var lossSum float64
	items := 0
	lv := make([]float32, 1)
	for {
		bt, err := bs.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		if err := l.checkBatch(bt, false); err != nil {
			return 0, nil, err
		}
		clear(x[copy(x, bt.X):])
		clear(y[copy(y, bt.Y):])
		for i := range l.hostW {
			l.hostW[i] = 0
			if i < bt.N {
				l.hostW[i] = 1
			}
		}
		if err := l.b.Upload(l.x, x); err != nil {
			return 0, nil, err
		}
		if err := l.b.Upload(l.target, y); err != nil {
			return 0, nil, err
		}
		if err := l.b.Upload(l.weight, l.hostW); err != nil {
			return 0, nil, err
		}
		outs, err := inf.Run(l.x)
		if err != nil {
			return 0, nil, err
		}
		if err := lossForward(l.b, l.cfg.Meta.Task, l.cfg.void(), l.cfg.LabelSmoothing, l.lossT, outs[0], l.target, l.weight); err != nil {
			return 0, nil, fmt.Errorf("train: validation loss: %w", err)
		}
		if err := l.b.Download(lv, l.lossT); err != nil {
			return 0, nil, err
		}
		if out == nil {
			out = make([]float32, outs[0].Numel())
		}
		if err := l.b.Download(out, outs[0]); err != nil {
			return 0, nil, err
		}
		if err := met.Add(out, bt.Y, bt.N); err != nil {
			return 0, nil, err
		}
		if item != nil {
			osz, ysz := len(out)/n, len(y)/n
			for i := range bt.N {
				item(out[i*osz:(i+1)*osz], y[i*ysz:(i+1)*ysz])
			}
		}
		if !math.IsNaN(float64(lv[0])) {
			lossSum += float64(lv[0]) * float64(bt.N)
		} else {
			lossSum = math.NaN()
		}
		items += bt.N
	}
	if items == 0 {
		return 0, nil, fmt.Errorf("%w: validation set is empty", ErrData)
	}
	return lossSum / float64(items), met, nil
}

// metricsFor is newMetrics for scoring ds: point_error as Evaluate
// scores it, in the aspect of ds's original images, not the square the
// model sees.
func (l *Learner) metricsFor(ds data.Dataset) (*Metrics, error) {
	met := l.newMetrics()
	if l.cfg.Meta.Task == data.Regress && ds.Len() > 0 {
		it, err := ds.Get(0)
		if err != nil {
			return nil, err
		}
		met.Aspect = float64(it.Height) / float64(it.Width)
	}
	return met, nil
}

func (l *Learner) newMetrics() *Metrics {
	m := NewMetrics(l.cfg.Meta.Task, l.cfg.outputs(), l.cfg.void(), l.cfg.Meta.Classes)
	return m
}

// Stage is one fit_one_cycle call in a plan: Epochs epochs at input side
// Size (0: the current size) with maximum rates LR, the body frozen or
// not.
type Stage struct {
	Size   int
	Epochs int
	LR     Rates
	Freeze bool
	// FindLR runs the LR finder (default config, on the training data) at
	// the start of the stage, after resizing and freezing.
	FindLR bool
	// Auto, when set, chooses the stage's rates when it starts: from the
	// finder's suggestion (with FindLR; else 0) and the rates the previous
	// stage used (zero Rates for the first). The choice is kept in
	// checkpoints, so a resumed stage keeps its rates.
	Auto func(suggestion float64, prev Rates) Rates
}

// RunOptions control checkpoints and early stops of Run.
type RunOptions struct {
	// Checkpoint, when set, is the file written (atomically) after every
	// epoch; LoadCheckpoint from it resumes the Run where it stopped.
	Checkpoint string
	// MaxEpochs, when > 0, returns after that many epochs in this call
	// (the position is saved; a later Run continues).
	MaxEpochs int
	// Schedule overrides the one-cycle parameters other than Total (zero:
	// NewOneCycle's).
	Schedule OneCycle
}

// Run trains the plan's stages in order from the current Position (the
// start for a new Learner or after a finished Run; where the checkpoint
// left off after LoadCheckpoint):
// each stage resizes if needed, freezes or unfreezes, and runs one cycle
// over all its epochs, validating after each epoch.
func (l *Learner) Run(ctx context.Context, plan []Stage, d Data, opt RunOptions) error {
	if d.Train == nil || d.Valid == nil {
		return fmt.Errorf("%w: run needs training and validation data", ErrConfig)
	}
	for i, st := range plan {
		if st.Epochs < 1 {
			return fmt.Errorf("%w: stage %d epochs (got=%d, want>=1)", ErrConfig, i, st.Epochs)
		}
		if st.Auto == nil {
			if err := st.LR.Validate(); err != nil {
				return fmt.Errorf("stage %d: %w", i, err)
			}
		}
	}
	if l.chosen == nil {
		l.chosen = map[int]Rates{}
	}
	done := 0
	for si := l.pos.Stage; si < len(plan); si++ {
		st := plan[si]
		if st.Size != 0 {
			if err := l.Resize(st.Size); err != nil {
				return err
			}
		}
		if st.Freeze {
			l.Freeze()
		} else {
			l.Unfreeze()
		}
		if st.Auto != nil {
			r, ok := l.chosen[si]
			if !ok || l.pos.Epoch == 0 {
				sugg := 0.0
				if st.FindLR {
					res, err := l.LRFind(ctx, d.Train, LRFindConfig{})
					if err != nil {
						return fmt.Errorf("stage %d: lr_find: %w", si, err)
					}
					if l.OnLRFind != nil {
						l.OnLRFind(si, res)
					}
					sugg = res.Suggestion
				}
				r = st.Auto(sugg, l.chosen[si-1])
			}
			if err := r.Validate(); err != nil {
				return fmt.Errorf("stage %d: chosen %w", si, err)
			}
			st.LR = r
		}
		l.chosen[si] = st.LR
		nb := d.Train.Len() / l.cfg.BatchSize
		if nb < 1 {
			return fmt.Errorf("%w: %d training items for batches of %d", ErrData, d.Train.Len(), l.cfg.BatchSize)
		}
		sched := NewOneCycle(nb * st.Epochs)
		if o := opt.Schedule; o.PctStart != 0 {
			o.Total = sched.Total
			sched = o
		}
		if err := sched.Validate(); err != nil {
			return err
		}
		lrs := st.LR.For(len(l.model.Groups))
		if l.pos.Epoch == 0 {
			l.smAvg, l.smN = 0, 0
		}
		l.log.Info().Int("stage", si).Int("size", l.size).Int("epochs", st.Epochs).Str("lr", st.LR.String()).Bool("frozen", st.Freeze).Msg("stage")
		for e := l.pos.Epoch; e < st.Epochs; e++ {
			if opt.MaxEpochs > 0 && done >= opt.MaxEpochs {
				return nil
			}
			if err := l.epoch(ctx, si, e, st, nb, sched, lrs, d); err != nil {
				return err
			}
			l.pos.Epoch, l.pos.Global = e+1, l.pos.Global+1
			if e+1 == st.Epochs {
				l.pos.Stage, l.pos.Epoch = si+1, 0
			}
			done++
			if opt.Checkpoint != "" {
				if err := l.SaveCheckpoint(opt.Checkpoint); err != nil {
					return err
				}
			}
		}
	}
	// The plan is done: a later Run with another plan starts at its first
	// stage (Global keeps counting, so its epochs get new shuffles).
	l.pos.Stage, l.pos.Epoch = 0, 0
	l.chosen = nil
	return nil
}

// epoch trains one epoch of a stage and validates.
func (l *Learner) epoch(ctx context.Context, si, e int, st Stage, nb int, sched OneCycle, lrs []float64, d Data) error {
	start := time.Now()
	bs, err := l.pass(ctx, d.Train, true, l.pos.Global)
	if err != nil {
		return err
	}
	defer bs.Close()
	cur := make([]float64, len(lrs))
	k := 0
	for ; ; k++ {
		bt, err := bs.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		it := e*nb + k
		mult, mom := sched.At(it)
		for g := range lrs {
			cur[g] = lrs[g] * mult
		}
		loss, err := l.step(bt, cur, mom)
		if err != nil {
			return err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("%w: stage %d epoch %d batch %d: loss %v at lr %.3g (lower the learning rate)", ErrDiverged, si, e, k, loss, cur[len(cur)-1])
		}
		l.smN++
		l.smAvg = 0.98*l.smAvg + 0.02*loss
		sm := l.smAvg / (1 - math.Pow(0.98, float64(l.smN)))
		l.Rec.addStep(cur[len(cur)-1], mom, loss, sm)
		if l.OnBatch != nil {
			l.OnBatch(BatchInfo{Stage: si, Epoch: e, Epochs: st.Epochs, Batch: k + 1, Batches: nb, Loss: loss, Smoothed: sm, LR: cur[len(cur)-1], Mom: mom, Elapsed: time.Since(start)})
		}
	}
	if err := bs.Close(); err != nil {
		return err
	}
	trainTime := time.Since(start)
	vloss, met, err := l.Validate(ctx, d.Valid)
	if err != nil {
		return err
	}
	info := EpochInfo{Stage: si, Epoch: e, Size: l.size, TrainLoss: l.smoothed(), ValidLoss: vloss,
		Metrics: met.Values(), MetricNames: met.Names(), Time: time.Since(start), Frozen: st.Freeze, LRs: lrs}
	if trainTime > 0 {
		info.ImagesPerS = float64(k*l.cfg.BatchSize) / trainTime.Seconds()
	}
	l.Rec.addEpoch(info)
	ev := l.log.Info().Int("stage", si).Int("epoch", e).Float64("train_loss", info.TrainLoss).Float64("valid_loss", vloss).Dur("time", info.Time)
	for k, v := range info.Metrics {
		ev = ev.Float64(strings.ReplaceAll(k, "-", "_"), v)
	}
	ev.Msg("epoch")
	if l.OnEpoch != nil {
		l.OnEpoch(info)
	}
	return nil
}

// smoothed is the current smoothed training loss (fastai's train_loss
// column).
func (l *Learner) smoothed() float64 {
	if l.smN == 0 {
		return math.NaN()
	}
	return l.smAvg / (1 - math.Pow(0.98, float64(l.smN)))
}
