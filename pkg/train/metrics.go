package train

import (
	"fmt"
	"math"

	"vireo/pkg/data"
)

// Metric names, as `vireo eval --json` prints them and the manifest
// stores them (iou as iou_<class> in the manifest).
const (
	MetricAccuracy       = "accuracy"
	MetricAccuracyThresh = "accuracy_thresh"
	MetricFBeta          = "fbeta"
	MetricAccNoVoid      = "acc_no_void"
	MetricIoU            = "iou"
	MetricMSE            = "mse"
	MetricPointError     = "point_error"
)

// Lesson constants for multi-label metrics.
const (
	DefaultThreshold = 0.2 // accuracy_thresh and fbeta threshold
	DefaultBeta      = 2   // F2, as the Planet competition
	fbetaEps         = 1e-9
)

func sigmoid(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }

// Metrics accumulates a task's metrics over the batches of a validation
// pass (on the host), so that each is computed over the whole set:
//
//   - classify: accuracy = mean(argmax(logits) == target);
//   - multilabel: accuracy_thresh = mean over every (sample, class) of
//     (sigmoid(logit) > thresh) == target, and fbeta = mean over samples of
//     fastai v1's fbeta(sigmoid=True, eps=1e-9): with P = predicted set,
//     T = true set, TP = |P∩T|, prec = TP/(|P|+eps), rec = TP/(|T|+eps),
//     F = (1+β²)·prec·rec/(β²·prec + rec + eps);
//   - segment: acc_no_void = the lesson's acc_camvid applied to the whole
//     set at once (correct non-Void pixels / non-Void pixels; fastai
//     averages per-batch values instead, which depends on the batch
//     size), and iou per class = |pred=c ∧ target=c| / |pred=c ∨ target=c|
//     over non-Void pixels (classes absent from both are left out);
//   - regress: mse = mean over every coordinate of (pred-target)² in the
//     [-1,1] scale the model is trained in (MSELossFlat), and point_error =
//     mean over points of the Euclidean distance between predicted and
//     true point in pixels of the original image divided by its width:
//     with scaled coordinates, sqrt(dx² + (dy·H/W)²)/2, Aspect = H/W.
type Metrics struct {
	Task data.Task
	// Classes is the number of classes (or 2*points outputs for regress).
	Classes int
	// Void is the ignored class (segment), -1 for none.
	Void int
	// Thresh and Beta are the multi-label threshold and F-beta's beta
	// (0: DefaultThreshold, DefaultBeta).
	Thresh, Beta float64
	// Aspect is the original images' height/width (regress; 0: 1).
	Aspect float64
	// ClassNames name the iou entries (default: the class index).
	ClassNames []string

	n                int     // samples
	correct, counted float64 // accuracy / accuracy_thresh / acc_no_void
	fsum             float64
	sqErr, coords    float64
	distSum, points  float64
	inter, union     []float64
	tp, fp, fn       []float64 // classify (argmax) and multilabel (threshold), per class
}

// NewMetrics returns an empty accumulator.
func NewMetrics(task data.Task, classes, void int, names []string) *Metrics {
	return &Metrics{Task: task, Classes: classes, Void: void, ClassNames: names}
}

// Add accumulates one batch: out is the model's output for n samples
// ((n,C) logits, (n,C,H,W) logits or (n,2P) points) and y the targets in
// the loader's form ((n) class ids, (n,C) 0/1, (n,H,W) class ids, (n,2P)).
// Only the first n samples count (a padded last batch passes its real n).
func (m *Metrics) Add(out []float32, y []float32, n int) error {
	if n <= 0 {
		return nil
	}
	c := m.Classes
	switch m.Task {
	case data.Classify:
		if len(out) < n*c || len(y) < n {
			return fmt.Errorf("%w: metrics: classify batch (got %d outputs and %d targets, want >= %d and %d)", ErrData, len(out), len(y), n*c, n)
		}
		m.initTallies(c)
		for i := 0; i < n; i++ {
			p, t := argmax(out[i*c:(i+1)*c]), int(y[i])
			if p == t {
				m.correct++
				m.tp[p]++
			} else {
				m.fp[p]++
				if t >= 0 && t < c {
					m.fn[t]++
				}
			}
			m.counted++
		}
	case data.MultiLabel:
		if len(out) < n*c || len(y) < n*c {
			return fmt.Errorf("%w: metrics: multilabel batch (got %d outputs and %d targets, want >= %d each)", ErrData, len(out), len(y), n*c)
		}
		th, b2 := m.thresh(), m.beta()*m.beta()
		m.initTallies(c)
		for i := 0; i < n; i++ {
			var tp, np, nt float64
			for j := i * c; j < (i+1)*c; j++ {
				p := sigmoid(out[j]) > th
				t := y[j] > 0.5
				if p == t {
					m.correct++
				}
				m.counted++
				if p {
					np++
				}
				if t {
					nt++
				}
				switch k := j - i*c; {
				case p && t:
					tp++
					m.tp[k]++
				case p:
					m.fp[k]++
				case t:
					m.fn[k]++
				}
			}
			prec := tp / (np + fbetaEps)
			rec := tp / (nt + fbetaEps)
			m.fsum += (prec * rec) / (prec*b2 + rec + fbetaEps) * (1 + b2)
		}
	case data.Segment:
		if len(y)%n != 0 || len(y) == 0 {
			return fmt.Errorf("%w: metrics: segment targets (got %d for %d samples)", ErrData, len(y), n)
		}
		hw := len(y) / n
		if len(out) < n*c*hw {
			return fmt.Errorf("%w: metrics: segment outputs (got %d, want >= %d = n*C*H*W)", ErrData, len(out), n*c*hw)
		}
		if m.inter == nil {
			m.inter, m.union = make([]float64, c), make([]float64, c)
		}
		for i := 0; i < n; i++ {
			base := i * c * hw
			for p := 0; p < hw; p++ {
				t := int(y[i*hw+p])
				if t == m.Void {
					continue
				}
				best, bv := 0, out[base+p]
				for k := 1; k < c; k++ {
					if v := out[base+k*hw+p]; v > bv {
						best, bv = k, v
					}
				}
				m.counted++
				if best == t {
					m.correct++
					m.inter[t]++
					m.union[t]++
				} else {
					m.union[best]++
					if t >= 0 && t < c {
						m.union[t]++
					}
				}
			}
		}
	case data.Regress:
		if len(out) < n*c || len(y) < n*c || c%2 != 0 {
			return fmt.Errorf("%w: metrics: regress batch (got %d outputs and %d targets for %d samples of %d values, want an even count)", ErrData, len(out), len(y), n, c)
		}
		asp := m.Aspect
		if asp == 0 {
			asp = 1
		}
		for j := 0; j < n*c; j += 2 {
			dx := float64(out[j] - y[j])
			dy := float64(out[j+1] - y[j+1])
			m.sqErr += dx*dx + dy*dy
			m.coords += 2
			m.distSum += math.Sqrt(dx*dx+dy*dy*asp*asp) / 2
			m.points++
		}
	default:
		return fmt.Errorf("%w: metrics: task %q", ErrConfig, m.Task)
	}
	m.n += n
	return nil
}

// initTallies makes the per-class tallies of c classes on first use.
func (m *Metrics) initTallies(c int) {
	if m.tp == nil {
		m.tp, m.fp, m.fn = make([]float64, c), make([]float64, c), make([]float64, c)
	}
}

func (m *Metrics) thresh() float64 {
	if m.Thresh == 0 {
		return DefaultThreshold
	}
	return m.Thresh
}

func (m *Metrics) beta() float64 {
	if m.Beta == 0 {
		return DefaultBeta
	}
	return m.Beta
}

// Samples is the number of samples added.
func (m *Metrics) Samples() int { return m.n }

// Values returns the scalar metrics by name (iou per class as
// "iou_<name>"), the form the manifest stores. Empty before any Add.
func (m *Metrics) Values() map[string]float64 {
	out := map[string]float64{}
	if m.n == 0 {
		return out
	}
	switch m.Task {
	case data.Classify:
		out[MetricAccuracy] = m.correct / m.counted
	case data.MultiLabel:
		out[MetricAccuracyThresh] = m.correct / m.counted
		out[MetricFBeta] = m.fsum / float64(m.n)
	case data.Segment:
		if m.counted > 0 {
			out[MetricAccNoVoid] = m.correct / m.counted
		}
		for c, v := range m.IoU() {
			out[MetricIoU+"_"+c] = v
		}
	case data.Regress:
		out[MetricMSE] = m.sqErr / m.coords
		out[MetricPointError] = m.distSum / m.points
	}
	return out
}

// IoU returns the per-class IoU (segment) keyed by class name, leaving out
// the Void class and classes that appear in neither prediction nor target.
func (m *Metrics) IoU() map[string]float64 {
	out := map[string]float64{}
	for c := range m.inter {
		if c == m.Void || m.union[c] == 0 {
			continue
		}
		out[m.className(c)] = m.inter[c] / m.union[c]
	}
	return out
}

// ClassCounts is one class's tally over the samples added: true positives,
// false positives (predicted, not true) and false negatives (true, not
// predicted); the prediction is the argmax (classify) or every class over
// the threshold (multilabel).
type ClassCounts struct {
	TP int `json:"tp"`
	FP int `json:"fp"`
	FN int `json:"fn"`
}

// PerClass returns the classify or multilabel tallies keyed by class name
// (nil for other tasks): where accuracy's or fbeta's misses come from.
func (m *Metrics) PerClass() map[string]ClassCounts {
	if m.tp == nil {
		return nil
	}
	out := make(map[string]ClassCounts, len(m.tp))
	for c := range m.tp {
		out[m.className(c)] = ClassCounts{int(m.tp[c]), int(m.fp[c]), int(m.fn[c])}
	}
	return out
}

func (m *Metrics) className(c int) string {
	if c < len(m.ClassNames) && m.ClassNames[c] != "" {
		return m.ClassNames[c]
	}
	return fmt.Sprint(c)
}

// Names lists the task's metric columns in display order (iou as one
// column per class present).
func (m *Metrics) Names() []string {
	switch m.Task {
	case data.Classify:
		return []string{MetricAccuracy}
	case data.MultiLabel:
		return []string{MetricAccuracyThresh, MetricFBeta}
	case data.Segment:
		names := []string{MetricAccNoVoid}
		for c := 0; c < m.Classes; c++ {
			if c != m.Void {
				names = append(names, MetricIoU+"_"+m.className(c))
			}
		}
		return names
	case data.Regress:
		return []string{MetricMSE, MetricPointError}
	}
	return nil
}

// JSON returns the metrics as `vireo eval --json` prints them: scalar
// metrics by name, and for segmentation "iou" as an object per class.
func (m *Metrics) JSON() map[string]any {
	out := map[string]any{}
	for k, v := range m.Values() {
		if m.Task == data.Segment && len(k) > len(MetricIoU)+1 && k[:len(MetricIoU)+1] == MetricIoU+"_" {
			continue
		}
		out[k] = v
	}
	if m.Task == data.Segment {
		out[MetricIoU] = m.IoU()
	}
	return out
}

// Reset empties the accumulator.
func (m *Metrics) Reset() {
	*m = Metrics{Task: m.Task, Classes: m.Classes, Void: m.Void, Thresh: m.Thresh, Beta: m.Beta, Aspect: m.Aspect, ClassNames: m.ClassNames}
}

// argmax is the index of the first maximum.
func argmax(v []float32) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
