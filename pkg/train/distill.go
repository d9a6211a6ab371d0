package train

import (
	"context"
	"fmt"
	"math"

	"vireo/pkg/data"
)

// Distill adds knowledge distillation ("learning without forgetting",
// Li & Hoiem 2016; Hinton et al. 2015) to a classifier's training loss:
// every training item that has teacher logits also pays
//
//	Weight · T² · KL(softmax(teacher/T) ‖ softmax(out/T))
//
// on top of its cross-entropy, in the same weighted mean (the sum over
// the batch is divided by the batch's summed sample weights, as the
// cross-entropy is). Fine-tuning then keeps the model's answers on those
// items close to the teacher's (a model fine-tuned from the teacher
// starts at KL 0), including how sure it was: items the teacher gets
// right by a clear margin stay so, which a hard label alone does not
// enforce once the item is classified right.
type Distill struct {
	// Logits are the teacher's outputs per training-dataset index (as
	// Config.Weights is indexed); an index beyond the slice or a nil row
	// has no distillation term.
	Logits [][]float32
	// Weight (λ, > 0) scales the term against the cross-entropy.
	Weight float64
	// Temperature (T, > 0) softens both distributions (1: none); the
	// term is multiplied by T² so its gradient keeps its scale.
	Temperature float64
}

// validate checks d against the model's output width c.
func (d *Distill) validate(task data.Task, c int) error {
	if task != data.Classify {
		return fmt.Errorf("%w: distill: %s (distillation needs a classifier)", ErrConfig, task)
	}
	if !(d.Weight > 0) || math.IsInf(d.Weight, 0) {
		return fmt.Errorf("%w: distill weight (got=%v, want finite > 0)", ErrConfig, d.Weight)
	}
	if !(d.Temperature > 0) || math.IsInf(d.Temperature, 0) {
		return fmt.Errorf("%w: distill temperature (got=%v, want finite > 0)", ErrConfig, d.Temperature)
	}
	for i, r := range d.Logits {
		if r != nil && len(r) != c {
			return fmt.Errorf("%w: distill logits[%d] has %d values (want %d, one per class)", ErrConfig, i, len(r), c)
		}
		for _, v := range r {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: distill logits[%d] has %v", ErrConfig, i, v)
			}
		}
	}
	return nil
}

// softTargets is softmax(logits/T) per row (nil rows stay nil).
func softTargets(logits [][]float32, temp float64) [][]float32 {
	out := make([][]float32, len(logits))
	for i, r := range logits {
		if r == nil {
			continue
		}
		p := make([]float32, len(r))
		softmaxT(p, r, temp)
		out[i] = p
	}
	return out
}

// softmaxT writes softmax(x/T) into p (in float64 internally).
func softmaxT(p, x []float32, temp float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v)/temp)
	}
	var sum float64
	for j, v := range x {
		e := math.Exp(float64(v)/temp - mx)
		p[j] = float32(e)
		sum += e
	}
	for j := range p {
		p[j] = float32(float64(p[j]) / sum)
	}
}

// distillTerm computes the distillation term of a batch of n rows of c
// logits out against soft targets q (q[i] nil: no term for row i) at
// temperature temp, scaled by weight/denom, and adds its gradient with
// respect to out to dy (same layout as out). Per row with targets,
// with p = softmax(out_i/T):
//
//	loss_i = T² Σ_j q_j (log q_j - log p_j)
//	∂loss_i/∂out_ij = T (p_j - q_j)
//
// It returns the scaled sum, weight/denom · Σ_i loss_i.
func distillTerm(out []float32, q [][]float32, n, c int, temp, weight, denom float64, dy []float32) float64 {
	if denom <= 0 {
		return 0
	}
	scale := weight / denom
	p := make([]float32, c)
	var total float64
	for i := range n {
		if i >= len(q) || q[i] == nil {
			continue
		}
		row := out[i*c : (i+1)*c]
		softmaxT(p, row, temp)
		// log p_j = z_j/T - logsumexp(z/T), computed stably.
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v)/temp)
		}
		var se float64
		for _, v := range row {
			se += math.Exp(float64(v)/temp - mx)
		}
		lse := mx + math.Log(se)
		var kl float64
		for j, qj := range q[i] {
			if qj > 0 {
				kl += float64(qj) * (math.Log(float64(qj)) - (float64(row[j])/temp - lse))
			}
			dy[i*c+j] += float32(scale * temp * (float64(p[j]) - float64(qj)))
		}
		total += temp * temp * kl
	}
	return scale * total
}

// addDistill adds the distillation term of the batch (dataset indices
// idx, sample weights w of the cross-entropy or nil) to the loss and its
// gradient to l.dy, on the host.
func (l *Learner) addDistill(outT []float32, idx []int, n int, w []float32, loss float64) (float64, error) {
	c := l.cfg.outputs()
	q := l.distQ[:0]
	has := false
	for i := range n {
		var r []float32
		if i < len(idx) && idx[i] >= 0 && idx[i] < len(l.distP) {
			r = l.distP[idx[i]]
		}
		q = append(q, r)
		has = has || r != nil
	}
	l.distQ = q
	if !has {
		return loss, nil
	}
	denom := float64(n)
	if w != nil {
		denom = 0
		for _, v := range w[:n] {
			denom += float64(v)
		}
	}
	if len(l.hostDy) != l.dy.Numel() {
		l.hostDy = make([]float32, l.dy.Numel())
	}
	if err := l.b.Download(l.hostDy, l.dy); err != nil {
		return 0, err
	}
	d := l.cfg.Distill
	loss += distillTerm(outT, q, n, c, d.Temperature, d.Weight, denom, l.hostDy)
	return loss, l.b.Upload(l.dy, l.hostDy)
}

// SetDistill sets (nil: removes) the distillation term of later
// training steps, as Config.Distill: a teacher's logits can come from the
// learner's own model before it trains (Outputs).
func (l *Learner) SetDistill(d *Distill) error {
	if d != nil {
		if err := d.validate(l.cfg.Meta.Task, l.cfg.outputs()); err != nil {
			return err
		}
	}
	l.cfg.Distill, l.distP = d, nil
	if d != nil {
		l.distP = softTargets(d.Logits, d.Temperature)
	}
	return nil
}

// Outputs runs the model in inference form (as Validate) over ds and
// returns its raw outputs (logits for a classifier) per item, in ds's
// order: a teacher's logits for Distill.
func (l *Learner) Outputs(ctx context.Context, ds data.Dataset) ([][]float32, error) {
	var rows [][]float32
	_, _, err := l.validate(ctx, ds, func(out, _ []float32) {
		rows = append(rows, append([]float32(nil), out...))
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}
