package retrain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"vireo/pkg/arch"
	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/schema"
	"vireo/pkg/train"
)

// Outcomes of a run (Record.Outcome, runs_total{outcome}).
const (
	OutcomePromoted = "promoted" // the candidate passed the gate and serves
	OutcomeRejected = "rejected" // the candidate is stored, not served
	OutcomeFailed   = "failed"   // no candidate (see Reason)
)

// Scores are a version's task metric on the validation sample and on the
// held-out corrections.
type Scores struct {
	Valid       float64 `json:"valid"`
	Corrections float64 `json:"corrections"`
}

// Record is one run's decision, kept in the state bucket and (for a
// candidate) in its manifest's notes.
type Record struct {
	Model     string    `json:"model"`
	Trigger   string    `json:"trigger"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason"`
	Parent    string    `json:"parent,omitempty"`    // the serving version fine-tuned from
	Candidate string    `json:"candidate,omitempty"` // the version pushed
	// Corrections trained on, held out, and skipped (frame gone, not
	// fitting the model).
	Corrections int `json:"corrections"`
	Holdout     int `json:"holdout"`
	Skipped     int `json:"skipped"`
	Replay      int `json:"replay"`
	// Distilled is how many training items (the replay sample and the
	// hard negatives) carried the serving version's answers as
	// distillation targets (0: none, Config.DistillWeight).
	Distilled int `json:"distilled,omitempty"`
	// HardNegatives is how many items of the classes the corrections were
	// taken for joined the training set (Config.HardNegatives).
	HardNegatives    int     `json:"hard_negatives,omitempty"`
	CorrectionDigest string  `json:"correction_digest,omitempty"`
	Metric           string  `json:"metric,omitempty"`
	Before           *Scores `json:"before,omitempty"`
	After            *Scores `json:"after,omitempty"`
	Tolerance        float64 `json:"tolerance"`
	// Pairs is the item-by-item comparison on the held-out corrections
	// and Significance the sign test's threshold the gate used.
	Pairs        *Paired `json:"pairs,omitempty"`
	Significance float64 `json:"significance"`
	LastSeq      uint64  `json:"last_seq"`
}

// taskMetric is the metric the gate compares and whether higher is better.
func taskMetric(t model.Task) (string, bool) {
	switch t {
	case model.MultiLabel:
		return train.MetricFBeta, true
	case model.Segment:
		return train.MetricAccNoVoid, true
	case model.Regress:
		return train.MetricMSE, false
	}
	return train.MetricAccuracy, true
}

// Paired compares two versions item by item on the held-out
// corrections: how many items the candidate scores better on, worse on,
// and the same.
type Paired struct {
	Better int `json:"better"`
	Worse  int `json:"worse"`
	Same   int `json:"same"`
}

// Compare pairs per-item scores of the serving version (before) and the
// candidate (after); higherBetter is the metric's direction. An item
// whose score is NaN on either side (nothing to score) counts as same.
func Compare(before, after []float64, higherBetter bool) Paired {
	var p Paired
	for i := range min(len(before), len(after)) {
		d := after[i] - before[i]
		if !higherBetter {
			d = -d
		}
		switch {
		case d > 1e-9:
			p.Better++
		case d < -1e-9:
			p.Worse++
		default:
			p.Same++
		}
	}
	return p
}

// P is the one-sided sign test's p-value of the pairs: the chance of at
// least Better improvements among the Better+Worse items that changed if
// the candidate were no better than the serving version (each change a
// fair coin). Items that did not change carry no evidence either way.
func (p Paired) P() float64 {
	n := p.Better + p.Worse
	if n == 0 {
		return 1
	}
	var sum float64
	for k := p.Better; k <= n; k++ {
		lc, _ := math.Lgamma(float64(n + 1))
		a, _ := math.Lgamma(float64(k + 1))
		b, _ := math.Lgamma(float64(n - k + 1))
		sum += math.Exp(lc - a - b - float64(n)*math.Ln2)
	}
	return min(sum, 1)
}

// Gate decides a candidate: the validation metric may drop (for mse:
// rise) by at most tol, and the held-out corrections must improve
// convincingly: more of them better than worse, item by item, with a
// sign-test p-value of at most alpha (so that one lucky item out of a
// handful does not promote a model). It returns whether to promote and
// the reason in words.
func Gate(metric string, higherBetter bool, before, after Scores, tol float64, pairs Paired, alpha float64) (bool, string) {
	sign := 1.0
	if !higherBetter {
		sign = -1
	}
	drop := sign * (before.Valid - after.Valid)
	var why []string
	validOK := drop <= tol+1e-12
	if !validOK {
		why = append(why, fmt.Sprintf("validation %s worsened by %.4f (%.4f -> %.4f), more than the tolerance %.4f", metric, drop, before.Valid, after.Valid, tol))
	}
	p := pairs.P()
	corrOK := pairs.Better > pairs.Worse && p <= alpha
	held := fmt.Sprintf("held-out corrections %s %.4f -> %.4f, %d better, %d worse, %d same (sign test p=%.3g, at most %.3g needed)",
		metric, before.Corrections, after.Corrections, pairs.Better, pairs.Worse, pairs.Same, p, alpha)
	if !corrOK {
		why = append(why, held+": not a significant improvement")
	}
	if validOK && corrOK {
		return true, fmt.Sprintf("gate passed: %s; validation %s %.4f -> %.4f (tolerance %.4f)",
			held, metric, before.Valid, after.Valid, tol)
	}
	return false, "gate refused: " + strings.Join(why, "; ")
}

// retrain runs one retrain of modelName and records the outcome.
func (s *service) retrain(ctx context.Context, modelName, trigger string) Record {
	rec := Record{Model: modelName, Trigger: trigger, Started: time.Now().UTC(), Tolerance: s.cfg.Tolerance, Significance: s.cfg.Significance}
	s.mu.Lock()
	es := append([]entry(nil), s.index[modelName]...)
	s.mu.Unlock()
	for _, e := range es {
		rec.LastSeq = max(rec.LastSeq, e.seq)
	}
	log := s.log.With().Str("model", modelName).Str("trigger", trigger).Logger()
	log.Info().Int("corrections", len(es)).Msg("retrain started")
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RunTimeout)
	defer cancel()
	if err := s.fineTune(ctx, modelName, es, &rec); err != nil {
		rec.Outcome, rec.Reason = OutcomeFailed, err.Error()
	}
	rec.Finished = time.Now().UTC()
	ev := log.Info()
	if rec.Outcome == OutcomeFailed {
		ev = log.Warn()
	}
	ev.Str("outcome", rec.Outcome).Str("reason", rec.Reason).Str("parent", rec.Parent).Str("candidate", rec.Candidate).
		Int("corrections", rec.Corrections).Int("holdout", rec.Holdout).Int("skipped", rec.Skipped).
		Dur("took", rec.Finished.Sub(rec.Started)).Msg("retrain finished")
	st := State{Model: modelName, LastSeq: rec.LastSeq, Last: &rec}
	b, _ := json.Marshal(st)
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer pcancel()
	if _, err := s.kv.Put(pctx, modelName, b); err != nil {
		log.Error().Err(err).Msg("record retrain state")
	}
	s.mu.Lock()
	s.states[modelName] = &st
	s.mu.Unlock()
	return rec
}

// fineTune does the work of a run; an error means no candidate.
func (s *service) fineTune(ctx context.Context, modelName string, es []entry, rec *Record) error {
	ptr, err := s.store.Serving(ctx, modelName)
	if err != nil {
		return err
	}
	rec.Parent = ptr.Version
	onnxBytes, man, err := s.store.Get(ctx, modelName, ptr.Version)
	if err != nil {
		return err
	}
	metric, higher := taskMetric(man.Task)
	rec.Metric = metric
	if man.Input.Width != man.Input.Height {
		return fmt.Errorf("%w: input %dx%d is not square (fine-tuning trains square inputs)", ErrMismatch, man.Input.Width, man.Input.Height)
	}
	if man.Input.Color != "rgb" {
		return fmt.Errorf("%w: colour order %q (fine-tuning feeds rgb)", ErrMismatch, man.Input.Color)
	}

	// The corrections: training ones weighted and repeated, held-out ones
	// kept apart.
	var trainSet, holdSet items
	var used []entry
	stream, err := s.js.Stream(ctx, s.subj.StreamName(schema.StreamCorrections))
	if err != nil {
		return fmt.Errorf("retrain: corrections stream: %w", err)
	}
	for _, e := range es {
		m, err := stream.GetMsg(ctx, e.seq)
		if err != nil {
			return fmt.Errorf("retrain: correction %d: %w", e.seq, err)
		}
		c, err := DecodeCorrection(m.Data)
		if err == nil {
			var it data.Item
			if it, err = s.item(ctx, c, man); err == nil {
				if e.holdout {
					holdSet = append(holdSet, it)
				} else {
					trainSet = append(trainSet, it)
					used = append(used, e)
				}
				continue
			}
		}
		rec.Skipped++
		s.log.Warn().Err(err).Str("model", modelName).Uint64("seq", e.seq).Msg("correction skipped")
	}
	rec.Corrections, rec.Holdout = len(trainSet), len(holdSet)
	if len(trainSet) == 0 || len(holdSet) == 0 {
		return fmt.Errorf("retrain: not enough usable corrections (got %d to train on and %d held out, want at least 1 of each; %d%% are held out)", len(trainSet), len(holdSet), s.cfg.HoldoutPercent)
	}
	rec.CorrectionDigest = correctionDigest(used)

	// The model's own data: a replay sample and the validation sample.
	split, dsName, err := s.dataset(modelName, man)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0x7e7a1))
	replayIdx := sampleIndices(rng, split.Train.Len(), s.cfg.ReplayItems)
	replay := data.Subset(split.Train, replayIdx)
	valid := sample(rng, split.Valid, s.cfg.ValidItems)
	rec.Replay = replay.Len()

	am, err := trainable(onnxBytes, man)
	if err != nil {
		return err
	}
	meta := data.Meta{Task: data.Task(man.Task), Classes: man.Labels, VoidClass: man.VoidClass, Points: man.Points}
	if man.Task == model.Regress {
		meta.Classes = nil
	}
	mean, std := make([]float32, len(man.Normalization.Mean)), make([]float32, len(man.Normalization.Std))
	for i := range mean {
		mean[i], std[i] = float32(man.Normalization.Mean[i]), float32(man.Normalization.Std[i])
	}
	bs := min(s.cfg.BatchSize, replay.Len()+s.cfg.CorrectionRepeat*len(trainSet))
	l, err := train.New(s.be, am, train.Config{
		Meta: meta, BatchSize: bs, Size: man.Input.Width, Channels: man.Input.Channels,
		Seed:   s.cfg.Seed,
		Loader: data.LoaderConfig{Mean: mean, Std: std, Workers: 1},
		Log:    s.log.With().Str("model", modelName).Logger(),
	})
	if err != nil {
		return fmt.Errorf("retrain: learner for %s %s: %w", modelName, ptr.Version, err)
	}
	defer l.Close()
	score := func() (Scores, []float64, error) {
		_, mv, err := l.Validate(ctx, valid)
		if err != nil {
			return Scores{}, nil, fmt.Errorf("retrain: validate: %w", err)
		}
		_, mc, each, err := l.ValidateEach(ctx, holdSet, metric)
		if err != nil {
			return Scores{}, nil, fmt.Errorf("retrain: held-out corrections: %w", err)
		}
		return Scores{Valid: mv.Values()[metric], Corrections: mc.Values()[metric]}, each, nil
	}
	s.setProgress(modelName, func(p *Status) { p.Stage = "evaluating" })
	before, eachBefore, err := score()
	if err != nil {
		return err
	}
	rec.Before = &before

	// The training set: the replay sample, the hard negatives, and the
	// corrections repeated and weighted up. A classifier's serving
	// version is looked at first: its answers on the corrections name the
	// classes they were taken for (where the hard negatives come from),
	// and its logits on the replay items and hard negatives are the
	// distillation targets.
	var hard data.Dataset = items(nil)
	var keep [][]float32 // distillation targets by training index
	if man.Task == model.Classify {
		if keep, hard, err = s.parentAnswers(ctx, l, split.Train, replay, replayIdx, trainSet); err != nil {
			return err
		}
		rec.HardNegatives = hard.Len()
	}
	var rep items
	for range s.cfg.CorrectionRepeat {
		rep = append(rep, trainSet...)
	}
	trainDS := concat{concat{replay, hard}, rep}
	weights := make([]float32, 0, trainDS.Len())
	for range replay.Len() + hard.Len() {
		weights = append(weights, 1)
	}
	for range rep {
		weights = append(weights, float32(s.cfg.CorrectionWeight))
	}
	if err := l.SetWeights(weights); err != nil {
		return fmt.Errorf("retrain: %w", err)
	}
	if s.cfg.DistillWeight > 0 && len(keep) > 0 {
		if err := l.SetDistill(&train.Distill{Logits: keep, Weight: s.cfg.DistillWeight, Temperature: s.cfg.DistillTemperature}); err != nil {
			return fmt.Errorf("retrain: distillation: %w", err)
		}
		rec.Distilled = len(keep)
	}

	var plan []train.Stage
	if s.cfg.HeadEpochs > 0 {
		plan = append(plan, train.Stage{Epochs: s.cfg.HeadEpochs, LR: train.Const(s.cfg.LR), Freeze: true})
	}
	if s.cfg.BodyEpochs > 0 {
		plan = append(plan, train.Stage{Epochs: s.cfg.BodyEpochs, LR: train.Slice(s.cfg.LR/100, s.cfg.LR/5)})
	}
	l.OnBatch = func(b train.BatchInfo) {
		s.setProgress(modelName, func(p *Status) {
			p.Stage = "training_body"
			if plan[b.Stage].Freeze {
				p.Stage = "training_head"
			}
			p.Epoch, p.Epochs, p.Batch, p.Batches = b.Epoch+1, b.Epochs, b.Batch, b.Batches
		})
	}
	if err := l.Run(ctx, plan, train.Data{Train: trainDS, Valid: valid}, train.RunOptions{}); err != nil {
		return fmt.Errorf("retrain: fine-tune: %w", err)
	}
	s.setProgress(modelName, func(p *Status) { p.Stage = "evaluating" })
	after, eachAfter, err := score()
	if err != nil {
		return err
	}
	rec.After = &after
	pairs := Compare(eachBefore, eachAfter, higher)
	rec.Pairs = &pairs
	pass, reason := Gate(metric, higher, before, after, s.cfg.Tolerance, pairs, s.cfg.Significance)
	rec.Reason = reason

	// The candidate: ONNX + manifest with its lineage and the decision.
	s.setProgress(modelName, func(p *Status) { p.Stage = "publishing" })
	g, err := l.InferenceGraph()
	if err != nil {
		return err
	}
	cb, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		return fmt.Errorf("retrain: encode candidate: %w", err)
	}
	cm := man
	cm.Version, cm.ModelDigest = "", ""
	cm.ParentVersion = ptr.Version
	cm.CorrectionDigest = rec.CorrectionDigest
	cm.Dataset = dsName
	cm.CreatedAt = time.Now().UTC()
	cm.Metrics = map[string]float64{
		metric: after.Valid, metric + "_before": before.Valid,
		"corrections_" + metric: after.Corrections, "corrections_" + metric + "_before": before.Corrections,
		"tolerance": s.cfg.Tolerance, "corrections": float64(rec.Corrections), "corrections_holdout": float64(rec.Holdout),
		"corrections_better": float64(pairs.Better), "corrections_worse": float64(pairs.Worse), "gate_p": pairs.P(),
	}
	outcome := OutcomeRejected
	if pass {
		outcome = OutcomePromoted
	}
	cm.Notes = fmt.Sprintf("retrain (%s) from %s on %d corrections (%d held out) + %d replay items: %s: %s", rec.Trigger, ptr.Version, rec.Corrections, rec.Holdout, rec.Replay, outcome, reason)
	v, err := s.store.Push(ctx, modelName, cb, cm, trainingPlots(&l.Rec, s.log)...)
	if err != nil {
		return fmt.Errorf("retrain: push candidate: %w", err)
	}
	rec.Candidate = v
	rec.Outcome = OutcomeRejected
	if pass {
		preason := fmt.Sprintf("retrain: %s", reason)
		if len(preason) > 1024 {
			preason = preason[:1024]
		}
		if _, err := s.store.Promote(ctx, modelName, v, preason); err != nil {
			return fmt.Errorf("retrain: promote %s: %w", v, err)
		}
		rec.Outcome = OutcomePromoted
	}
	return nil
}

// dataset opens the model's training data: Config.Datasets, else the
// manifest's Dataset, found under Config.DataRoot.
func (s *service) dataset(modelName string, man model.Manifest) (data.Split, string, error) {
	name := s.cfg.Datasets[modelName]
	if name == "" {
		name = man.Dataset
	}
	if name == "" {
		return data.Split{}, "", fmt.Errorf("retrain: model %s %s names no training dataset (set its manifest's dataset or retrain's datasets) to replay and validate on", modelName, man.Version)
	}
	dir, err := data.Locate(s.cfg.DataRoot, name)
	if err != nil {
		return data.Split{}, "", fmt.Errorf("retrain: dataset of %s: %w", modelName, err)
	}
	split, err := data.Open(dir)
	if err != nil {
		return data.Split{}, "", fmt.Errorf("retrain: dataset of %s: %w", modelName, err)
	}
	if string(split.Meta.Task) != string(man.Task) {
		return data.Split{}, "", fmt.Errorf("%w: dataset %s task (got=%s, want=%s)", ErrMismatch, name, split.Meta.Task, man.Task)
	}
	if man.Task != model.Regress && strings.Join(split.Meta.Classes, "\x00") != strings.Join(man.Labels, "\x00") {
		return data.Split{}, "", fmt.Errorf("%w: dataset %s classes %v differ from the model's labels %v", ErrMismatch, name, split.Meta.Classes, man.Labels)
	}
	return split, name, nil
}

// parentAnswers runs the serving version (l before it trains) over the
// corrections to train on, a pool of the training data, and the replay
// sample: it returns the hard negatives chosen from the pool
// (Config.HardNegatives) and the distillation targets of the training
// set replay, hard, corrections: the serving version's logits on the
// replay items and the hard negatives (none when DistillWeight is off).
func (s *service) parentAnswers(ctx context.Context, l *train.Learner, trainData, replay data.Dataset, replayIdx []int, corrections items) ([][]float32, data.Dataset, error) {
	var hard data.Dataset = items(nil)
	var hardLogits [][]float32
	if s.cfg.HardNegatives > 0 {
		cl, err := l.Outputs(ctx, corrections)
		if err != nil {
			return nil, nil, fmt.Errorf("retrain: serving version's outputs on the corrections: %w", err)
		}
		labels := make([]int, len(corrections))
		for i, it := range corrections {
			labels[i] = it.Label
		}
		conf := confusions(cl, labels)
		prng := rand.New(rand.NewPCG(s.cfg.Seed, 0x4a2d))
		poolIdx := hardNegativePool(prng, trainData, conf, replayIdx, s.cfg.HardNegativePool)
		if len(poolIdx) > 0 {
			pool := data.Subset(trainData, poolIdx)
			pl, err := l.Outputs(ctx, pool)
			if err != nil {
				return nil, nil, fmt.Errorf("retrain: serving version's outputs on the hard-negative pool: %w", err)
			}
			poolLabels := make([]int, len(poolIdx))
			for i := range poolIdx {
				it, err := pool.Get(i)
				if err != nil {
					return nil, nil, fmt.Errorf("retrain: hard-negative pool: %w", err)
				}
				poolLabels[i] = it.Label
			}
			pick := hardNegatives(conf, pl, poolLabels, s.cfg.HardNegatives)
			idx := make([]int, len(pick))
			for k, p := range pick {
				idx[k] = poolIdx[p]
				hardLogits = append(hardLogits, pl[p])
			}
			hard = data.Subset(trainData, idx)
		}
	}
	if !(s.cfg.DistillWeight > 0) || replay.Len()+hard.Len() == 0 {
		return nil, hard, nil
	}
	keep, err := l.Outputs(ctx, replay)
	if err != nil {
		return nil, nil, fmt.Errorf("retrain: serving version's outputs on the replay items: %w", err)
	}
	return append(keep, hardLogits...), hard, nil
}

// sampleIndices is n indices of 0..size-1 drawn without replacement, in
// a seeded order (all of them, in order, when n is 0 or size is
// smaller); sample's draw.
func sampleIndices(rng *rand.Rand, size, n int) []int {
	if n <= 0 || n >= size {
		idx := make([]int, size)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rng.Perm(size)[:n]
}

// sample is n items of ds drawn without replacement (all of it when n is
// 0 or ds is smaller), in a seeded order.
func sample(rng *rand.Rand, ds data.Dataset, n int) data.Dataset {
	if n <= 0 || n >= ds.Len() {
		return ds
	}
	idx := rng.Perm(ds.Len())[:n]
	return data.Subset(ds, idx)
}

// trainable turns a stored ONNX model into an arch.Model the Learner can
// fine-tune: the graph as stored, its initializers in fastai's layer
// groups by their (torchvision) names: stem and layer1..2, layer3..4, and
// everything else (the head or decoder). A graph without those names
// (an imported model) is one group: it fine-tunes as a whole.
func trainable(onnxBytes []byte, man model.Manifest) (*arch.Model, error) {
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		return nil, fmt.Errorf("retrain: decode ONNX: %w", err)
	}
	g := om.Graph
	groups := make([][]string, 3)
	for name, t := range g.Initializers {
		if t.DType != graph.Float32 {
			continue
		}
		switch {
		case hasAnyPrefix(name, "conv1.", "bn1.", "layer1.", "layer2."):
			groups[0] = append(groups[0], name)
		case hasAnyPrefix(name, "layer3.", "layer4."):
			groups[1] = append(groups[1], name)
		default:
			groups[2] = append(groups[2], name)
		}
	}
	if len(groups[0]) == 0 && len(groups[1]) == 0 {
		groups = groups[2:]
	}
	if len(groups[len(groups)-1]) == 0 {
		return nil, errors.New("retrain: the model has no float parameters to fine-tune")
	}
	for _, gr := range groups {
		slices.Sort(gr)
	}
	stride := 0
	if man.Task == model.Segment {
		stride = 1 // the Learner's size check: any multiple of 1
	}
	return &arch.Model{Graph: g, Groups: groups, Arch: man.Arch, Task: string(man.Task), Stride: stride}, nil
}

func hasAnyPrefix(s string, ps ...string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
