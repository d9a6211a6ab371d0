package train

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A small line-chart renderer on the standard library (image/png): axes,
// ticks with labels in a 3x5 bitmap font, lines, a legend, optional log x
// axis and vertical markers. Enough for loss, learning-rate and LR-finder
// plots without a plotting dependency.

type series struct {
	name string
	x, y []float64
	col  color.RGBA
	dots bool // draw a dot at every point (sparse series such as validation)
}

type marker struct {
	x    float64
	name string
	col  color.RGBA
}

type chart struct {
	title          string
	xlabel, ylabel string
	logX           bool
	series         []series
	markers        []marker
	// yMax, when set, clips the y range from above (LR finder: the tail).
	yMax float64
}

var (
	colBlue   = color.RGBA{31, 119, 180, 255}
	colOrange = color.RGBA{255, 127, 14, 255}
	colLight  = color.RGBA{174, 199, 232, 255}
	colRed    = color.RGBA{214, 39, 40, 255}
	colGreen  = color.RGBA{44, 160, 44, 255}
	colGray   = color.RGBA{200, 200, 200, 255}
	colText   = color.RGBA{40, 40, 40, 255}
)

// font3x5 holds 3x5 glyphs, 5 rows of 3 bits (MSB left), top row first.
var font3x5 = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
	'+': {0, 2, 7, 2, 0}, '_': {0, 0, 0, 0, 7}, ':': {0, 2, 0, 2, 0}, '(': {1, 2, 2, 2, 1},
	')': {4, 2, 2, 2, 4}, '/': {1, 1, 2, 4, 4}, '=': {0, 7, 0, 7, 0}, ',': {0, 0, 0, 2, 4},
	'A': {2, 5, 7, 5, 5}, 'B': {6, 5, 6, 5, 6}, 'C': {3, 4, 4, 4, 3}, 'D': {6, 5, 5, 5, 6},
	'E': {7, 4, 6, 4, 7}, 'F': {7, 4, 6, 4, 4}, 'G': {3, 4, 5, 5, 3}, 'H': {5, 5, 7, 5, 5},
	'I': {7, 2, 2, 2, 7}, 'J': {1, 1, 1, 5, 2}, 'K': {5, 5, 6, 5, 5}, 'L': {4, 4, 4, 4, 7},
	'M': {5, 7, 7, 5, 5}, 'N': {6, 5, 5, 5, 5}, 'O': {2, 5, 5, 5, 2}, 'P': {6, 5, 6, 4, 4},
	'Q': {2, 5, 5, 6, 3}, 'R': {6, 5, 6, 5, 5}, 'S': {3, 4, 2, 1, 6}, 'T': {7, 2, 2, 2, 2},
	'U': {5, 5, 5, 5, 7}, 'V': {5, 5, 5, 5, 2}, 'W': {5, 5, 7, 7, 5}, 'X': {5, 5, 2, 5, 5},
	'Y': {5, 5, 2, 2, 2}, 'Z': {7, 1, 2, 4, 7},
}

const glyphScale = 2

func textWidth(s string) int { return len(s) * 4 * glyphScale }

// drawText draws s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, col color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font3x5[r]
		if ok {
			for row := 0; row < 5; row++ {
				for c := 0; c < 3; c++ {
					if g[row]&(4>>c) != 0 {
						fillRect(img, x+c*glyphScale, y+row*glyphScale, glyphScale, glyphScale, col)
					}
				}
			}
		}
		x += 4 * glyphScale
	}
}

// drawTextUp draws s rotated 90° counter-clockwise, reading bottom to top,
// its bottom-left at (x, y).
func drawTextUp(img *image.RGBA, x, y int, s string, col color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font3x5[r]
		if ok {
			for row := 0; row < 5; row++ {
				for c := 0; c < 3; c++ {
					if g[row]&(4>>c) != 0 {
						fillRect(img, x+row*glyphScale, y-(c+1)*glyphScale, glyphScale, glyphScale, col)
					}
				}
			}
		}
		y -= 4 * glyphScale
	}
}

func fillRect(img *image.RGBA, x, y, w, h int, col color.RGBA) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Bounds())
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.SetRGBA(xx, yy, col)
		}
	}
}

// drawLine draws a line of the given width (Bresenham, square pen),
// clipped to clip.
func drawLine(img *image.RGBA, clip image.Rectangle, x0, y0, x1, y1, width int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for n := 0; n < 100000; n++ {
		for i := 0; i < width; i++ {
			for j := 0; j < width; j++ {
				if p := image.Pt(x0+i-width/2, y0+j-width/2); p.In(clip) {
					img.SetRGBA(p.X, p.Y, col)
				}
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func tickLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e-3 && a < 1e5 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'e', 0, 64)
}

// render draws the chart into a w x h image.
func (c *chart) render(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fillRect(img, 0, 0, w, h, color.RGBA{255, 255, 255, 255})
	left, right, top, bottom := 90, 20, 34, 50
	plot := image.Rect(left, top, w-right, h-bottom)

	tx := func(v float64) float64 {
		if c.logX {
			return math.Log10(v)
		}
		return v
	}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for i := range s.x {
			x, y := tx(s.x[i]), s.y[i]
			if !finite(x) || !finite(y) || (c.yMax != 0 && y > c.yMax) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if !finite(xmin) {
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-1, ymax+1
	}
	pad := (ymax - ymin) * 0.05
	ymin, ymax = ymin-pad, ymax+pad
	px := func(x float64) int {
		return plot.Min.X + int(math.Round((tx(x)-xmin)/(xmax-xmin)*float64(plot.Dx()-1)))
	}
	py := func(y float64) int {
		return plot.Max.Y - 1 - int(math.Round((y-ymin)/(ymax-ymin)*float64(plot.Dy()-1)))
	}

	// Grid and tick labels.
	for _, v := range niceTicks(ymin, ymax, 6) {
		y := py(v)
		drawLine(img, plot, plot.Min.X, y, plot.Max.X-1, y, 1, colGray)
		l := tickLabel(v)
		drawText(img, plot.Min.X-8-textWidth(l), y-5, l, colText)
	}
	if c.logX {
		for d := math.Ceil(xmin); d <= xmax; d++ {
			x := plot.Min.X + int(math.Round((d-xmin)/(xmax-xmin)*float64(plot.Dx()-1)))
			drawLine(img, plot, x, plot.Min.Y, x, plot.Max.Y-1, 1, colGray)
			l := "1e" + strconv.Itoa(int(d))
			drawText(img, x-textWidth(l)/2, plot.Max.Y+8, l, colText)
		}
	} else {
		for _, v := range niceTicks(xmin, xmax, 8) {
			x := px(v)
			drawLine(img, plot, x, plot.Min.Y, x, plot.Max.Y-1, 1, colGray)
			l := tickLabel(v)
			drawText(img, x-textWidth(l)/2, plot.Max.Y+8, l, colText)
		}
	}
	// Axes.
	drawLine(img, img.Bounds(), plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y-1, 1, colText)
	drawLine(img, img.Bounds(), plot.Min.X, plot.Max.Y-1, plot.Max.X-1, plot.Max.Y-1, 1, colText)
	drawText(img, (plot.Min.X+plot.Max.X-textWidth(c.xlabel))/2, h-20, c.xlabel, colText)
	drawTextUp(img, 8, (plot.Min.Y+plot.Max.Y+textWidth(c.ylabel))/2, c.ylabel, colText)
	drawText(img, plot.Min.X, 8, c.title, colText)

	for i, m := range c.markers {
		if !finite(tx(m.x)) {
			continue
		}
		x := px(m.x)
		drawLine(img, plot, x, plot.Min.Y, x, plot.Max.Y-1, 1, m.col)
		drawText(img, min(x+4, plot.Max.X-textWidth(m.name)), plot.Max.Y-16-12*i, m.name, m.col)
	}
	for _, s := range c.series {
		prev := image.Point{-1, -1}
		for i := range s.x {
			x, y := tx(s.x[i]), s.y[i]
			if !finite(x) || !finite(y) {
				prev = image.Point{-1, -1}
				continue
			}
			if c.yMax != 0 && y > c.yMax {
				y = ymax
			}
			p := image.Pt(px(s.x[i]), py(y))
			if prev.X >= 0 {
				drawLine(img, plot, prev.X, prev.Y, p.X, p.Y, 2, s.col)
			}
			if s.dots {
				fillRect(img, p.X-3, p.Y-3, 7, 7, s.col)
			}
			prev = p
		}
	}
	// Legend, top right.
	ly := plot.Min.Y + 6
	for _, s := range c.series {
		if s.name == "" {
			continue
		}
		lx := plot.Max.X - 16 - textWidth(s.name) - 20
		fillRect(img, lx, ly+2, 14, 6, s.col)
		drawText(img, lx+20, ly, s.name, colText)
		ly += 16
	}
	return img
}

// stack puts images on top of each other.
func stack(imgs ...*image.RGBA) *image.RGBA {
	w, h := 0, 0
	for _, m := range imgs {
		w = max(w, m.Bounds().Dx())
		h += m.Bounds().Dy()
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	y := 0
	for _, m := range imgs {
		for yy := 0; yy < m.Bounds().Dy(); yy++ {
			copy(out.Pix[(y+yy)*out.Stride:], m.Pix[yy*m.Stride:yy*m.Stride+m.Bounds().Dx()*4])
		}
		y += m.Bounds().Dy()
	}
	return out
}

// encodePNG encodes img as PNG bytes.
func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("train: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// writePNG encodes img and writes it atomically to path.
func writePNG(path string, img image.Image) error {
	b, err := encodePNG(img)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, path)
	}
	return writeAtomic(path, b)
}

// writeAtomic writes b to a temporary file beside path, syncs it, renames
// it over path and syncs the directory.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("train: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
