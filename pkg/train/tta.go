package train

import (
	"fmt"
	"math"

	"vireo/pkg/data"
)

// Test-time augmentation (fastai's learn.TTA, reduced to the one transform
// every task's default augmentation trains with): each batch is run as it
// is and mirrored left to right, the mirrored run's outputs are mapped back
// to the original's frame, and the two predictions are averaged as
// probabilities (softmax for classify and per pixel for segment, sigmoid
// per label for multilabel) or as points (regress, with the mirrored x
// negated: points are scaled to [-1,1]). The average goes back to the
// metrics as logits (the log of the mean probability; its logit for
// multilabel), so accuracy, thresholds and argmax read it unchanged.

// mirrorW reverses the last axis of x, rows of w values, into dst (dst and
// x must not overlap).
func mirrorW(dst, x []float32, w int) {
	for r := 0; r+w <= len(x); r += w {
		s, d := x[r:r+w], dst[r:r+w]
		for j := range d {
			d[j] = s[w-1-j]
		}
	}
}

// mergeTTA averages out (the plain run) with mir (the mirrored run) in
// place in out, for n items of a task whose output per item has shape
// dims (classes for classify and multilabel, 2*points for regress, and
// classes, height, width for segment). mir is left modified.
func mergeTTA(task data.Task, out, mir []float32, n int, dims []int) error {
	per := 1
	for _, d := range dims {
		per *= d
	}
	if len(out) < n*per || len(mir) < n*per {
		return fmt.Errorf("%w: tta: %d and %d outputs for %d items of %v", ErrData, len(out), len(mir), n, dims)
	}
	out, mir = out[:n*per], mir[:n*per]
	switch task {
	case data.Classify:
		c := dims[0]
		for i := 0; i < n*c; i += c {
			meanSoftmaxLog(out[i:i+c], mir[i:i+c])
		}
	case data.MultiLabel:
		for j := range out {
			p := (sigmoid(out[j]) + sigmoid(mir[j])) / 2
			p = min(max(p, 1e-7), 1-1e-7)
			out[j] = float32(math.Log(p / (1 - p)))
		}
	case data.Regress:
		for j := range out {
			v := mir[j]
			if j%2 == 0 { // x
				v = -v
			}
			out[j] = (out[j] + v) / 2
		}
	case data.Segment:
		if len(dims) != 3 {
			return fmt.Errorf("%w: tta: segment output %v (want classes, height, width)", ErrData, dims)
		}
		c, hw := dims[0], dims[1]*dims[2]
		back := make([]float32, per)
		po, pm := make([]float32, c), make([]float32, c)
		for i := 0; i < n; i++ {
			o, m := out[i*per:(i+1)*per], mir[i*per:(i+1)*per]
			mirrorW(back, m, dims[2])
			copy(m, back)
			// Classes are planes: gather each pixel's c values.
			for px := 0; px < hw; px++ {
				for k := 0; k < c; k++ {
					po[k], pm[k] = o[k*hw+px], m[k*hw+px]
				}
				meanSoftmaxLog(po, pm)
				for k := 0; k < c; k++ {
					o[k*hw+px] = po[k]
				}
			}
		}
	default:
		return fmt.Errorf("%w: tta: task %q", ErrConfig, task)
	}
	return nil
}

// meanSoftmaxLog writes log((softmax(a) + softmax(b)) / 2) into a; b is
// used as scratch.
func meanSoftmaxLog(a, b []float32) {
	softmaxT(a, a, 1)
	softmaxT(b, b, 1)
	for k := range a {
		a[k] = float32(math.Log(max((float64(a[k])+float64(b[k]))/2, 1e-30)))
	}
}
