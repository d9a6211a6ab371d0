package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Augment is the random augmentation of training items (fastai's
// get_transforms). The zero value is no augmentation.
type Augment struct {
	// FlipH flips horizontally with probability 1/2.
	FlipH bool
	// Dihedral picks one of the 8 symmetries of the square (flips and
	// 90-degree turns) uniformly: for overhead imagery (fastai flip_vert).
	// It includes FlipH's flips.
	Dihedral bool
	// MaxRotate rotates by a uniform angle in [-MaxRotate, MaxRotate]
	// degrees.
	MaxRotate float64
	// MaxZoom zooms in by a uniform factor in [1, MaxZoom] around a random
	// centre that keeps the view inside the image. 0 or 1: off.
	MaxZoom float64
	// MaxLighting changes brightness and contrast (in logit space, like
	// fastai) by up to this much; 0: off.
	MaxLighting float64
	// MaxWarp moves each corner of the view by up to this fraction of the
	// half-size, a perspective warp; 0: off.
	MaxWarp float64
	// MaxShift moves the view by a uniform whole number of pixels, up to
	// this fraction of the side, in x and y independently, on every item
	// (fastai's rand_pad and random crop, CIFAR's "pad 4 and crop"); 0:
	// off. What the view leaves shows the padding (zeros suit dark
	// backgrounds).
	MaxShift float64
	// Erase is the probability of random erasing (Zhong et al. 2017;
	// fastai's RandomErasing): a rectangle of 2-30% of the output's area,
	// aspect ratio between 0.3 and 1/0.3, filled with uniform random
	// pixels. Only the image changes: masks and points keep their labels
	// under it. 0: off.
	Erase float64
	// PAffine is the probability that rotate, zoom and warp are applied to
	// an item; PLighting that lighting is. Default 0.75 each (fastai).
	PAffine, PLighting float64
}

// Random erasing's area (fractions of the output) and aspect-ratio bounds.
const (
	eraseMinArea, eraseMaxArea = 0.02, 0.3
	eraseMinAspect             = 0.3
)

func (a *Augment) setDefaults() {
	if a.PAffine == 0 {
		a.PAffine = 0.75
	}
	if a.PLighting == 0 {
		a.PLighting = 0.75
	}
}

// Validate reports the first invalid field, wrapping ErrData.
func (a Augment) Validate() error {
	bad := func(name string, v, lo, hi float64) error {
		if !(v >= lo && v <= hi) {
			return fmt.Errorf("%w: augment: %s (got=%v, want %v..%v)", ErrData, name, v, lo, hi)
		}
		return nil
	}
	for _, e := range []error{
		bad("max_rotate", a.MaxRotate, 0, 180),
		bad("max_zoom", a.MaxZoom, 0, 10),
		bad("max_lighting", a.MaxLighting, 0, 0.95),
		bad("max_warp", a.MaxWarp, 0, 0.9),
		bad("max_shift", a.MaxShift, 0, 0.5),
		bad("erase", a.Erase, 0, 1),
		bad("p_affine", a.PAffine, 0, 1),
		bad("p_lighting", a.PLighting, 0, 1),
	} {
		if e != nil {
			return e
		}
	}
	if a.MaxZoom != 0 && a.MaxZoom < 1 {
		return fmt.Errorf("%w: augment: max_zoom (got=%v, want 0 or >=1)", ErrData, a.MaxZoom)
	}
	return nil
}

// ResizeMethod is how an image becomes a square of the output size.
type ResizeMethod int

const (
	// Squish resizes the whole image to the square (fastai SQUISH).
	Squish ResizeMethod = iota
	// Crop takes the largest square (centred; at a random position when
	// augmenting) and resizes it.
	Crop
)

// Padding is what the image shows where a transform looks outside it.
type Padding int

const (
	// PadReflection mirrors the image at its edges (fastai's default).
	PadReflection Padding = iota
	// PadZeros shows black.
	PadZeros
	// PadBorder repeats the edge pixels.
	PadBorder
)

// Mat3 is a 3x3 matrix, row-major, acting on column vectors (x, y, 1).
type Mat3 [9]float64

// Identity3 is the identity.
var identity3 = Mat3{1, 0, 0, 0, 1, 0, 0, 0, 1}

// Mul returns m*n (n is applied first).
func (m Mat3) Mul(n Mat3) Mat3 {
	var r Mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			r[3*i+j] = m[3*i]*n[j] + m[3*i+1]*n[3+j] + m[3*i+2]*n[6+j]
		}
	}
	return r
}

// Apply maps (x, y) through m (with the perspective division).
func (m Mat3) Apply(x, y float64) (float64, float64) {
	w := m[6]*x + m[7]*y + m[8]
	return (m[0]*x + m[1]*y + m[2]) / w, (m[3]*x + m[4]*y + m[5]) / w
}

// Inverse returns m's inverse (ok false when m is singular).
func (m Mat3) Inverse() (Mat3, bool) {
	a, b, c, d, e, f, g, h, i := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
	A, B, C := e*i-f*h, -(d*i - f*g), d*h-e*g
	det := a*A + b*B + c*C
	if math.Abs(det) < 1e-12 {
		return Mat3{}, false
	}
	inv := Mat3{A, -(b*i - c*h), b*f - c*e, B, a*i - c*g, -(a*f - c*d), C, -(a*h - b*g), a*e - b*d}
	for k := range inv {
		inv[k] /= det
	}
	return inv, true
}

// Transform is one item's concrete augmentation: the geometry as one
// matrix and the lighting as brightness/contrast.
type Transform struct {
	// View maps output coordinates to input coordinates, both normalised
	// to [-1,1] of their image (x' = 2x/W - 1 with x continuous, pixel i
	// covering [i, i+1)): the image is sampled through it and points move
	// through its inverse. One matrix, one resample.
	View Mat3
	// Lighting, applied as sigmoid(logit(v)*Contrast + logit(Brightness))
	// on v in [0,1]; Brightness 0.5 and Contrast 1 change nothing.
	Brightness, Contrast float64
	// Erase, when its area is not empty, is the rectangle [x0,x1) x
	// [y0,y1) of the output (fractions of its side) whose pixels are
	// replaced by uniform random bytes drawn from EraseSeed; masks and
	// points are left as they are.
	Erase     [4]float64
	EraseSeed uint64
}

// NoTransform changes nothing but the size (Squish).
func NoTransform() Transform { return Transform{View: identity3, Brightness: 0.5, Contrast: 1} }

// dihedral are the 8 symmetries of the square in normalised coordinates:
// bit 0 flips x, bit 1 flips y, bit 2 swaps x and y.
func dihedral(k int) Mat3 {
	m := identity3
	if k&4 != 0 {
		m = Mat3{0, 1, 0, 1, 0, 0, 0, 0, 1}
	}
	if k&1 != 0 {
		m = Mat3{-1, 0, 0, 0, 1, 0, 0, 0, 1}.Mul(m)
	}
	if k&2 != 0 {
		m = Mat3{1, 0, 0, 0, -1, 0, 0, 0, 1}.Mul(m)
	}
	return m
}

// homography returns the perspective matrix that maps src[i] to dst[i]
// (4 point pairs), solving the 8x8 linear system.
func homography(src, dst [4][2]float64) (Mat3, bool) {
	var a [8][9]float64
	for i := 0; i < 4; i++ {
		x, y, u, v := src[i][0], src[i][1], dst[i][0], dst[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := 0; c < 8; c++ { // Gaussian elimination, partial pivoting
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return Mat3{}, false
		}
		a[c], a[p] = a[p], a[c]
		for r := 0; r < 8; r++ {
			if r != c {
				f := a[r][c] / a[c][c]
				for k := c; k < 9; k++ {
					a[r][k] -= f * a[c][k]
				}
			}
		}
	}
	var h Mat3
	for i := 0; i < 8; i++ {
		h[i] = a[i][8] / a[i][i]
	}
	h[8] = 1
	return h, true
}

// SampleTransform draws one item's transform for an input of inW x inH.
// With aug nil (or zero) it only resizes (and, for Crop, centres).
func SampleTransform(rng *rand.Rand, aug *Augment, inW, inH int, resize ResizeMethod) Transform {
	t := NoTransform()
	var a Augment
	if aug != nil {
		a = *aug
		a.setDefaults()
	}
	augmenting := aug != nil && *aug != (Augment{})
	// crop: the largest square of the input, in input-normalised units
	crop := identity3
	if resize == Crop && inW != inH {
		sx, sy := 1.0, 1.0
		if inW > inH {
			sx = float64(inH) / float64(inW)
		} else {
			sy = float64(inW) / float64(inH)
		}
		ox, oy := 0.0, 0.0
		if augmenting {
			ox = (1 - sx) * (2*rng.Float64() - 1)
			oy = (1 - sy) * (2*rng.Float64() - 1)
		}
		crop = Mat3{sx, 0, ox, 0, sy, oy, 0, 0, 1}
	}
	if !augmenting {
		t.View = crop
		return t
	}
	view := identity3
	if a.Dihedral {
		view = dihedral(rng.IntN(8))
	} else if a.FlipH && rng.IntN(2) == 1 {
		view = dihedral(1)
	}
	if rng.Float64() < a.PAffine {
		if a.MaxWarp > 0 {
			src := [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}
			dst := src
			for i := range dst {
				dst[i][0] += a.MaxWarp * (2*rng.Float64() - 1)
				dst[i][1] += a.MaxWarp * (2*rng.Float64() - 1)
			}
			if h, ok := homography(src, dst); ok {
				view = view.Mul(h)
			}
		}
		if a.MaxRotate > 0 {
			th := a.MaxRotate * (2*rng.Float64() - 1) * math.Pi / 180
			c, s := math.Cos(th), math.Sin(th)
			view = Mat3{c, -s, 0, s, c, 0, 0, 0, 1}.Mul(view)
		}
		if a.MaxZoom > 1 {
			z := 1 + (a.MaxZoom-1)*rng.Float64()
			m := 1 - 1/z
			cx, cy := m*(2*rng.Float64()-1), m*(2*rng.Float64()-1)
			view = Mat3{1 / z, 0, cx, 0, 1 / z, cy, 0, 0, 1}.Mul(view)
		}
	}
	if a.MaxShift > 0 {
		// whole input pixels, so that a same-size output is an exact
		// translation (no blur); normalised units: the side is 2
		kx, ky := int(math.Round(a.MaxShift*float64(inW))), int(math.Round(a.MaxShift*float64(inH)))
		dx := 2 * float64(rng.IntN(2*kx+1)-kx) / float64(inW)
		dy := 2 * float64(rng.IntN(2*ky+1)-ky) / float64(inH)
		view = Mat3{1, 0, dx, 0, 1, dy, 0, 0, 1}.Mul(view)
	}
	t.View = crop.Mul(view)
	if a.MaxLighting > 0 && rng.Float64() < a.PLighting {
		ml := a.MaxLighting
		t.Brightness = 0.5 + ml/2*(2*rng.Float64()-1)
		lo := math.Log(1 - ml)
		t.Contrast = math.Exp(lo * (2*rng.Float64() - 1))
	}
	if a.Erase > 0 && rng.Float64() < a.Erase {
		area := eraseMinArea + (eraseMaxArea-eraseMinArea)*rng.Float64()
		la := math.Log(eraseMinAspect)
		aspect := math.Exp(la + -2*la*rng.Float64()) // w/h, log-uniform
		w, h := math.Min(1, math.Sqrt(area*aspect)), math.Min(1, math.Sqrt(area/aspect))
		x0, y0 := (1-w)*rng.Float64(), (1-h)*rng.Float64()
		t.Erase = [4]float64{x0, y0, x0 + w, y0 + h}
		t.EraseSeed = rng.Uint64()
	}
	return t
}

// erase fills t.Erase's rectangle of an out x out image of C channels with
// random bytes.
func (t Transform) erase(px []byte, out, C int) {
	x0, x1 := int(math.Round(t.Erase[0]*float64(out))), int(math.Round(t.Erase[2]*float64(out)))
	y0, y1 := int(math.Round(t.Erase[1]*float64(out))), int(math.Round(t.Erase[3]*float64(out)))
	if x1 <= x0 || y1 <= y0 {
		return
	}
	rng := rand.New(rand.NewPCG(t.EraseSeed, 0x5eed))
	for y := max(y0, 0); y < min(y1, out); y++ {
		row := px[(y*out+max(x0, 0))*C : (y*out+min(x1, out))*C]
		for i := range row {
			row[i] = byte(rng.Uint32())
		}
	}
}

// lightingLUT is the 256-entry table of t's lighting (nil: identity).
func (t Transform) lightingLUT() *[256]byte {
	if t.Brightness == 0.5 && t.Contrast == 1 || t.Contrast == 0 {
		return nil
	}
	var lut [256]byte
	lb := math.Log(t.Brightness / (1 - t.Brightness))
	for i := range lut {
		v := (float64(i) + 0.5) / 256 // keep logit finite
		l := math.Log(v/(1-v))*t.Contrast + lb
		lut[i] = byte(math.Round(255 / (1 + math.Exp(-l))))
	}
	return &lut
}

// Apply transforms an item to out x out pixels: the image with bilinear
// sampling (padding where the view leaves it), the mask with nearest
// neighbour (void where the view leaves the image; with void < 0 the edge
// is repeated), the points through the inverse view. Points that leave the
// image keep their (out-of-range) coordinates. The input is not modified.
func (t Transform) Apply(it Item, out int, void int, pad Padding) (Item, error) {
	if err := checkItem(it); err != nil {
		return Item{}, err
	}
	W, H, C := it.Width, it.Height, it.Channels
	// output pixel -> output normalised -> (View) input normalised -> input pixel
	toNorm := Mat3{2 / float64(out), 0, -1, 0, 2 / float64(out), -1, 0, 0, 1}
	toPix := Mat3{float64(W) / 2, 0, float64(W) / 2, 0, float64(H) / 2, float64(H) / 2, 0, 0, 1}
	m := toPix.Mul(t.View).Mul(toNorm)
	res := Item{Name: it.Name, Width: out, Height: out, Channels: C, Label: it.Label, Labels: it.Labels,
		Pixels: make([]byte, out*out*C)}
	lut := t.lightingLUT()
	var mask []byte
	if it.Mask != nil {
		mask = make([]byte, out*out)
		res.Mask = mask
	}
	var acc [4]float64
	for v := 0; v < out; v++ {
		for u := 0; u < out; u++ {
			x, y := m.Apply(float64(u)+0.5, float64(v)+0.5)
			o := v*out + u
			if mask != nil {
				mx, my := int(math.Floor(x)), int(math.Floor(y))
				if mx >= 0 && mx < W && my >= 0 && my < H {
					mask[o] = it.Mask[my*W+mx]
				} else if void >= 0 {
					mask[o] = byte(void)
				} else {
					mask[o] = it.Mask[clampInt(my, 0, H-1)*W+clampInt(mx, 0, W-1)]
				}
			}
			// bilinear in index space: centres at integer positions
			fx, fy := x-0.5, y-0.5
			x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
			ax, ay := fx-float64(x0), fy-float64(y0)
			for c := 0; c < C; c++ {
				acc[c] = 0
			}
			for k := 0; k < 4; k++ {
				xi, yi := x0+k&1, y0+k>>1
				w := ax
				if k&1 == 0 {
					w = 1 - ax
				}
				if k>>1 == 0 {
					w *= 1 - ay
				} else {
					w *= ay
				}
				if w == 0 {
					continue
				}
				xi, xok := padIndex(xi, W, pad)
				yi, yok := padIndex(yi, H, pad)
				if !xok || !yok {
					continue
				}
				p := (yi*W + xi) * C
				for c := 0; c < C; c++ {
					acc[c] += w * float64(it.Pixels[p+c])
				}
			}
			for c := 0; c < C; c++ {
				b := byte(math.Min(255, math.Max(0, math.Round(acc[c]))))
				if lut != nil {
					b = lut[b]
				}
				res.Pixels[o*C+c] = b
			}
		}
	}
	t.erase(res.Pixels, out, C)
	if it.Points != nil {
		inv, ok := t.View.Inverse()
		if !ok {
			return Item{}, fmt.Errorf("%w: %s: singular transform", ErrData, it.Name)
		}
		res.Points = make([]float32, len(it.Points))
		for k := 0; k+1 < len(it.Points); k += 2 {
			x, y := inv.Apply(float64(it.Points[k]), float64(it.Points[k+1]))
			res.Points[k], res.Points[k+1] = float32(x), float32(y)
		}
	}
	return res, nil
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// padIndex maps an index outside [0,n) by the padding (ok false: zero).
func padIndex(i, n int, pad Padding) (int, bool) {
	if i >= 0 && i < n {
		return i, true
	}
	switch pad {
	case PadZeros:
		return 0, false
	case PadBorder:
		return clampInt(i, 0, n-1), true
	}
	if n == 1 {
		return 0, true
	}
	period := 2 * n
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - 1 - i
	}
	return i, true
}

// checkItem validates an item's shapes before any pixel is read.
func checkItem(it Item) error {
	switch {
	case it.Width < 1 || it.Height < 1 || (it.Channels != 1 && it.Channels != 3):
		return fmt.Errorf("%w: %s: image shape (got=%dx%dx%d, want channels 1 or 3)", ErrData, it.Name, it.Width, it.Height, it.Channels)
	case len(it.Pixels) != it.Width*it.Height*it.Channels:
		return fmt.Errorf("%w: %s: pixel bytes (got=%d, want=%d)", ErrData, it.Name, len(it.Pixels), it.Width*it.Height*it.Channels)
	case it.Mask != nil && len(it.Mask) != it.Width*it.Height:
		return fmt.Errorf("%w: %s: mask size (got=%d, want=%d = %dx%d)", ErrData, it.Name, len(it.Mask), it.Width*it.Height, it.Width, it.Height)
	}
	return nil
}
