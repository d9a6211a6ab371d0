package train

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestRecorderPNGs: the loss and learning-rate plots as PNG bytes (what
// the retrain service stores with a candidate) are the files PlotLosses
// and PlotLR write, and show their curves: the smoothed loss in blue on
// the loss plot, the rate in blue and the momentum in orange on the
// stacked rate plot.
func TestRecorderPNGs(t *testing.T) {
	var r Recorder
	for i := range 40 {
		lr := 1e-3 * float64(i) / 39
		r.addStep(lr, 0.95-0.1*float64(i)/39, 2.0/float64(i+1), 2.0/float64(i+1)+0.1)
		if i%10 == 9 {
			r.addEpoch(EpochInfo{ValidLoss: 1.0 / float64(i+1)})
		}
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name         string
		bytesFn      func() ([]byte, error)
		file         func(string) error
		w, h         int
		orangeBelowY int // the momentum panel of the rate plot
	}{
		{"losses", r.LossesPNG, r.PlotLosses, 800, 480, 0},
		{"lr", r.LRPNG, r.PlotLR, 800, 640, 320},
	} {
		b, err := c.bytesFn()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		path := filepath.Join(dir, c.name+".png")
		if err := c.file(path); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fb, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(fb, b) {
			t.Errorf("%s: the written file (%d bytes, %v) differs from the PNG bytes (%d)", c.name, len(fb), err, len(b))
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := img.Bounds().Size(); got != image.Pt(c.w, c.h) {
			t.Errorf("%s: size %v (want %dx%d)", c.name, got, c.w, c.h)
		}
		blue, orange := 0, 0
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				switch color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) {
				case colBlue:
					blue++
				case colOrange:
					if y >= c.orangeBelowY {
						orange++
					}
				}
			}
		}
		if blue < 500 || orange < 100 {
			t.Errorf("%s: %d blue and %d orange pixels (want a curve of each)", c.name, blue, orange)
		}
	}
}
