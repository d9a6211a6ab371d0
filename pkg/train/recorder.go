package train

import (
	"fmt"
	"image"
)

// Recorder keeps what happened during training, as fastai's learn.recorder:
// per step the head group's rate, the momentum, the raw and smoothed loss;
// per epoch a table row. It is saved in checkpoints so that plots after a
// resumed run show the whole history.
type Recorder struct {
	LRs      []float64   `json:"lrs"`
	Moms     []float64   `json:"moms"`
	Losses   []float64   `json:"losses"`
	Smoothed []float64   `json:"smoothed"`
	Epochs   []EpochInfo `json:"epochs"`
}

func (r *Recorder) addStep(lr, mom, loss, sm float64) {
	r.LRs = append(r.LRs, lr)
	r.Moms = append(r.Moms, mom)
	r.Losses = append(r.Losses, loss)
	r.Smoothed = append(r.Smoothed, sm)
}

func (r *Recorder) addEpoch(e EpochInfo) {
	e.Iter = len(r.Losses)
	r.Epochs = append(r.Epochs, e)
}

func iters(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i + 1)
	}
	return x
}

// PlotLosses writes fastai's plot_losses as a PNG: the training loss per
// step (raw, light, and smoothed) and the validation loss at each epoch's
// end, against steps.
func (r *Recorder) PlotLosses(path string) error {
	return writePNG(path, r.lossesImage())
}

// LossesPNG is PlotLosses's image as PNG bytes (what the retrain service
// stores with a candidate version).
func (r *Recorder) LossesPNG() ([]byte, error) { return encodePNG(r.lossesImage()) }

// PlotLR writes fastai's plot_lr(show_moms=True) as a PNG: the head
// group's learning rate per step above the momentum per step.
func (r *Recorder) PlotLR(path string) error {
	return writePNG(path, r.lrImage())
}

// LRPNG is PlotLR's image as PNG bytes.
func (r *Recorder) LRPNG() ([]byte, error) { return encodePNG(r.lrImage()) }

func (r *Recorder) lossesImage() image.Image {
	x := iters(len(r.Losses))
	var vx, vy []float64
	var marks []marker
	for i, e := range r.Epochs {
		vx = append(vx, float64(e.Iter))
		vy = append(vy, e.ValidLoss)
		if i > 0 && e.Stage != r.Epochs[i-1].Stage {
			marks = append(marks, marker{x: float64(r.Epochs[i-1].Iter), name: fmt.Sprintf("stage %d", e.Stage), col: colGreen})
		}
	}
	c := chart{title: "losses", xlabel: "batches processed", ylabel: "loss", markers: marks, series: []series{
		{x: x, y: r.Losses, col: colLight},
		{name: "train", x: x, y: r.Smoothed, col: colBlue},
		{name: "valid", x: vx, y: vy, col: colOrange, dots: true},
	}}
	return c.render(800, 480)
}

func (r *Recorder) lrImage() image.Image {
	x := iters(len(r.LRs))
	a := chart{title: "learning rate (last layer group)", xlabel: "iterations", ylabel: "learning rate",
		series: []series{{x: x, y: r.LRs, col: colBlue}}}
	b := chart{title: "momentum (adamw beta1)", xlabel: "iterations", ylabel: "momentum",
		series: []series{{x: x, y: r.Moms, col: colOrange}}}
	return stack(a.render(800, 320), b.render(800, 320))
}

// Plot writes the LR finder's curve as a PNG: raw and smoothed loss
// against the rate on a log axis, with the suggestion and the minimum
// marked (fastai's recorder.plot after lr_find).
func (r *LRFindResult) Plot(path string) error {
	yMax := 0.0
	if len(r.Smoothed) > 0 {
		lo := r.Smoothed[0]
		for _, v := range r.Smoothed {
			if finite(v) && v < lo {
				lo = v
			}
		}
		yMax = 4.5 * lo
		if r.Smoothed[0] > yMax {
			yMax = 1.2 * r.Smoothed[0]
		}
	}
	c := chart{title: "learning rate finder", xlabel: "learning rate (log scale)", ylabel: "loss", logX: true, yMax: yMax,
		series: []series{
			{x: r.LRs, y: r.Losses, col: colLight},
			{name: "smoothed loss", x: r.LRs, y: r.Smoothed, col: colBlue},
		},
		markers: []marker{
			{x: r.Suggestion, name: fmt.Sprintf("suggestion %.2e", r.Suggestion), col: colRed},
			{x: r.MinLR, name: "min", col: colGreen},
		},
	}
	return writePNG(path, c.render(800, 480))
}
