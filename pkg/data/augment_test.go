package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// blocky makes a W x H gray image of 8x8 blocks, each 0 or 255 at random,
// with the mask of its own content (class 1 where 255).
func blocky(rng *rand.Rand, w, h int) Item {
	it := Item{Name: "blocky", Width: w, Height: h, Channels: 1, Pixels: make([]byte, w*h), Mask: make([]byte, w*h)}
	bw, bh := (w+7)/8, (h+7)/8
	on := make([]bool, bw*bh)
	for i := range on {
		on[i] = rng.IntN(2) == 1
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if on[(y/8)*bw+x/8] {
				it.Pixels[y*w+x], it.Mask[y*w+x] = 255, 1
			}
		}
	}
	return it
}

func randomAugment(rng *rand.Rand) *Augment {
	return &Augment{
		FlipH: true, Dihedral: rng.IntN(2) == 1,
		MaxRotate: 45 * rng.Float64(), MaxZoom: 1 + rng.Float64(), MaxWarp: 0.3 * rng.Float64(),
		MaxShift: 0.2 * rng.Float64(), PAffine: 1,
	}
}

// A mask drawn from the image's own content matches the transformed image
// wherever the image is pure (not a blend of a block edge) and the mask is
// not Void.
func TestAugmentMaskFollowsImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const void = 2
	for trial := 0; trial < 200; trial++ {
		w, h := 16+rng.IntN(100), 16+rng.IntN(100)
		it := blocky(rng, w, h)
		resize := ResizeMethod(rng.IntN(2))
		tr := SampleTransform(rng, randomAugment(rng), w, h, resize)
		out := 16 + rng.IntN(80)
		pad := Padding(rng.IntN(3))
		res, err := tr.Apply(it, out, void, pad)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for i, m := range res.Mask {
			p := res.Pixels[i]
			if m == void || (p != 0 && p != 255) {
				continue
			}
			checked++
			if (p == 255) != (m == 1) {
				t.Fatalf("trial %d (%dx%d -> %d, resize %d, pad %d): pixel %d is %d but mask says %d", trial, w, h, out, resize, pad, i, p, m)
			}
		}
		if checked < len(res.Mask)/4 {
			t.Fatalf("trial %d: only %d of %d pixels checked", trial, checked, len(res.Mask))
		}
	}
}

// Out-of-frame mask pixels are Void, and with zero padding the image is
// black there.
func TestAugmentOutOfFrameIsVoid(t *testing.T) {
	it := Item{Width: 10, Height: 10, Channels: 1, Pixels: make([]byte, 100), Mask: make([]byte, 100)}
	for i := range it.Pixels {
		it.Pixels[i], it.Mask[i] = 200, 1
	}
	// zoom out by 2: the middle half of the output shows the image
	tr := NoTransform()
	tr.View = Mat3{2, 0, 0, 0, 2, 0, 0, 0, 1}
	res, err := tr.Apply(it, 20, 7, PadZeros)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 20; y++ {
		for x := 0; x < 20; x++ {
			inside := x >= 5 && x < 15 && y >= 5 && y < 15
			m, p := res.Mask[y*20+x], res.Pixels[y*20+x]
			if inside && m != 1 || !inside && m != 7 {
				t.Fatalf("(%d,%d): mask %d, inside=%v", x, y, m, inside)
			}
			if !inside && (x < 4 || x > 15 || y < 4 || y > 15) && p != 0 {
				t.Fatalf("(%d,%d): pixel %d outside, want 0", x, y, p)
			}
		}
	}
}

// A bright blob marked on the image ends up where the transformed point
// says, within a pixel.
func TestAugmentPointFollowsImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checked := 0
	for trial := 0; trial < 300; trial++ {
		w, h := 24+rng.IntN(100), 24+rng.IntN(100)
		it := Item{Name: "dot", Width: w, Height: h, Channels: 3, Pixels: make([]byte, w*h*3)}
		px, py := 4+rng.IntN(w-8), 4+rng.IntN(h-8)
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				o := ((py+dy)*w + px + dx) * 3
				it.Pixels[o], it.Pixels[o+1], it.Pixels[o+2] = 255, 255, 255
			}
		}
		// the blob's centre is the centre of pixel (px, py)
		it.Points = []float32{2*(float32(px)+0.5)/float32(w) - 1, 2*(float32(py)+0.5)/float32(h) - 1}
		aug := randomAugment(rng)
		aug.MaxZoom = 1 + 0.5*rng.Float64()
		tr := SampleTransform(rng, aug, w, h, ResizeMethod(rng.IntN(2)))
		out := 48 + rng.IntN(64)
		res, err := tr.Apply(it, out, -1, PadZeros)
		if err != nil {
			t.Fatal(err)
		}
		ox := (float64(res.Points[0]) + 1) / 2 * float64(out)
		oy := (float64(res.Points[1]) + 1) / 2 * float64(out)
		// the blob grows to ~6 px at the largest zoom: keep it whole in view
		if ox < 8 || oy < 8 || ox > float64(out)-8 || oy > float64(out)-8 {
			continue // the point (or part of its blob) left the view
		}
		var sx, sy, sw float64
		for y := 0; y < out; y++ {
			for x := 0; x < out; x++ {
				v := float64(res.Pixels[(y*out+x)*3])
				sx += v * (float64(x) + 0.5)
				sy += v * (float64(y) + 0.5)
				sw += v
			}
		}
		if sw == 0 {
			t.Fatalf("trial %d: blob vanished but the point is at (%.1f,%.1f) of %d", trial, ox, oy, out)
		}
		cx, cy := sx/sw, sy/sw
		if d := math.Hypot(cx-ox, cy-oy); d > 1 {
			t.Fatalf("trial %d: blob at (%.2f,%.2f), point at (%.2f,%.2f): %.2f px apart", trial, cx, cy, ox, oy, d)
		}
		checked++
	}
	if checked < 100 {
		t.Fatalf("only %d trials kept the point in view", checked)
	}
}

// The 8 dihedral symmetries are exact pixel permutations, all different.
func TestDihedralExact(t *testing.T) {
	it := Item{Width: 5, Height: 5, Channels: 1, Pixels: make([]byte, 25)}
	for i := range it.Pixels {
		it.Pixels[i] = byte(i * 10)
	}
	seen := map[string]int{}
	for k := 0; k < 8; k++ {
		tr := NoTransform()
		tr.View = dihedral(k)
		res, err := tr.Apply(it, 5, -1, PadZeros)
		if err != nil {
			t.Fatal(err)
		}
		count := map[byte]int{}
		for _, p := range res.Pixels {
			count[p]++
		}
		if len(count) != 25 {
			t.Fatalf("k=%d: not a permutation: %v", k, res.Pixels)
		}
		if j, dup := seen[string(res.Pixels)]; dup {
			t.Fatalf("k=%d equals k=%d", k, j)
		}
		seen[string(res.Pixels)] = k
	}
	// k=1 is the horizontal flip
	tr := NoTransform()
	tr.View = dihedral(1)
	res, _ := tr.Apply(it, 5, -1, PadZeros)
	if res.Pixels[0] != it.Pixels[4] || res.Pixels[5] != it.Pixels[9] {
		t.Fatalf("flip: got row %v", res.Pixels[:5])
	}
}

func TestNoTransformIsCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	it := blocky(rng, 20, 20)
	for i := range it.Pixels {
		it.Pixels[i] = byte(rng.IntN(256))
	}
	res, err := SampleTransform(rng, nil, 20, 20, Squish).Apply(it, 20, 3, PadReflection)
	if err != nil {
		t.Fatal(err)
	}
	for i := range it.Pixels {
		if res.Pixels[i] != it.Pixels[i] || res.Mask[i] != it.Mask[i] {
			t.Fatalf("pixel %d: got %d/%d, want %d/%d", i, res.Pixels[i], res.Mask[i], it.Pixels[i], it.Mask[i])
		}
	}
}

func TestLighting(t *testing.T) {
	if NoTransform().lightingLUT() != nil {
		t.Fatal("identity lighting builds a table")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 50; trial++ {
		tr := SampleTransform(rng, &Augment{MaxLighting: 0.8, PLighting: 1}, 8, 8, Squish)
		lut := tr.lightingLUT()
		if lut == nil {
			continue
		}
		for i := 1; i < 256; i++ {
			if lut[i] < lut[i-1] {
				t.Fatalf("b=%.2f c=%.2f: not monotone at %d", tr.Brightness, tr.Contrast, i)
			}
		}
	}
	bright := Transform{View: identity3, Brightness: 0.8, Contrast: 1}.lightingLUT()
	if bright[128] <= 128 {
		t.Fatalf("brightness 0.8: 128 -> %d, want brighter", bright[128])
	}
}

func TestHomographyMapsCorners(t *testing.T) {
	src := [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}
	dst := [4][2]float64{{-0.9, -1.1}, {1.2, -0.8}, {0.9, 1.1}, {-1.1, 0.7}}
	h, ok := homography(src, dst)
	if !ok {
		t.Fatal("singular")
	}
	for i := range src {
		x, y := h.Apply(src[i][0], src[i][1])
		if math.Abs(x-dst[i][0]) > 1e-9 || math.Abs(y-dst[i][1]) > 1e-9 {
			t.Fatalf("corner %d: got (%v,%v), want %v", i, x, y, dst[i])
		}
	}
	inv, _ := h.Inverse()
	x, y := inv.Mul(h).Apply(0.3, -0.4)
	if math.Abs(x-0.3) > 1e-9 || math.Abs(y+0.4) > 1e-9 {
		t.Fatalf("inverse: got (%v,%v)", x, y)
	}
}

func TestApplyBadItem(t *testing.T) {
	for name, it := range map[string]Item{
		"pixels":   {Name: "a", Width: 4, Height: 4, Channels: 1, Pixels: make([]byte, 15)},
		"channels": {Name: "b", Width: 4, Height: 4, Channels: 2, Pixels: make([]byte, 32)},
		"mask":     {Name: "c", Width: 4, Height: 4, Channels: 1, Pixels: make([]byte, 16), Mask: make([]byte, 9)},
	} {
		if _, err := NoTransform().Apply(it, 8, 0, PadZeros); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A shift alone, at the input's size, is an exact translation by whole
// pixels within the bound, with the padding (and Void) where the view
// leaves the image, and every offset in the bound occurs.
func TestShiftIsTranslation(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const w, void = 28, 7
	it := Item{Name: "noise", Width: w, Height: w, Channels: 1, Pixels: make([]byte, w*w), Mask: make([]byte, w*w)}
	for i := range it.Pixels {
		it.Pixels[i] = byte(1 + rng.IntN(255)) // never 0: zeros are padding
		it.Mask[i] = byte(rng.IntN(2))
	}
	seen := map[[2]int]bool{}
	for trial := 0; trial < 400; trial++ {
		tr := SampleTransform(rng, &Augment{MaxShift: 0.1}, w, w, Squish)
		res, err := tr.Apply(it, w, void, PadZeros)
		if err != nil {
			t.Fatal(err)
		}
		// the offset in pixels from the view's translation
		dx, dy := int(math.Round(tr.View[2]*w/2)), int(math.Round(tr.View[5]*w/2))
		if dx < -3 || dx > 3 || dy < -3 || dy > 3 { // round(0.1*28) = 3
			t.Fatalf("trial %d: offset (%d,%d) beyond 3 px", trial, dx, dy)
		}
		seen[[2]int{dx, dy}] = true
		for y := 0; y < w; y++ {
			for x := 0; x < w; x++ {
				sx, sy := x+dx, y+dy
				want, wantM := byte(0), byte(void)
				if sx >= 0 && sx < w && sy >= 0 && sy < w {
					want, wantM = it.Pixels[sy*w+sx], it.Mask[sy*w+sx]
				}
				if got := res.Pixels[y*w+x]; got != want || res.Mask[y*w+x] != wantM {
					t.Fatalf("trial %d offset (%d,%d): pixel (%d,%d) = %d/%d, want %d/%d", trial, dx, dy, x, y, got, res.Mask[y*w+x], want, wantM)
				}
			}
		}
	}
	if len(seen) != 49 {
		t.Fatalf("saw %d of the 49 offsets", len(seen))
	}
}

// Random erasing changes only the image, only inside its rectangle, which
// stays within the area and aspect bounds; the mask and the points are
// those of the same transform without it.
func TestRandomErase(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	erased := 0
	for trial := 0; trial < 300; trial++ {
		w, h := 16+rng.IntN(60), 16+rng.IntN(60)
		it := blocky(rng, w, h)
		it.Points = []float32{float32(2*rng.Float64() - 1), float32(2*rng.Float64() - 1)}
		aug := randomAugment(rng)
		aug.Erase = 0.5
		tr := SampleTransform(rng, aug, w, h, Squish)
		plain := tr
		plain.Erase, plain.EraseSeed = [4]float64{}, 0
		out := 16 + rng.IntN(60)
		got, err := tr.Apply(it, out, 2, PadZeros)
		if err != nil {
			t.Fatal(err)
		}
		want, err := plain.Apply(it, out, 2, PadZeros)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Mask) != string(want.Mask) || got.Points[0] != want.Points[0] || got.Points[1] != want.Points[1] {
			t.Fatalf("trial %d: erasing moved the mask or the points", trial)
		}
		e := tr.Erase
		if e == ([4]float64{}) {
			if string(got.Pixels) != string(want.Pixels) {
				t.Fatalf("trial %d: no rectangle but the image changed", trial)
			}
			continue
		}
		erased++
		fw, fh := e[2]-e[0], e[3]-e[1]
		if a := fw * fh; a < eraseMinArea-1e-9 || a > eraseMaxArea+1e-9 || e[0] < 0 || e[1] < 0 || e[2] > 1 || e[3] > 1 {
			t.Fatalf("trial %d: rectangle %v (area %.3f) outside the bounds", trial, e, a)
		}
		if r := fw / fh; r < eraseMinAspect-1e-9 || r > 1/eraseMinAspect+1e-9 {
			t.Fatalf("trial %d: aspect %.3f outside the bounds", trial, r)
		}
		inside, changed := 0, 0
		for y := 0; y < out; y++ {
			for x := 0; x < out; x++ {
				in := x >= int(math.Round(e[0]*float64(out))) && x < int(math.Round(e[2]*float64(out))) &&
					y >= int(math.Round(e[1]*float64(out))) && y < int(math.Round(e[3]*float64(out)))
				g, p := got.Pixels[y*out+x], want.Pixels[y*out+x]
				switch {
				case !in && g != p:
					t.Fatalf("trial %d: pixel (%d,%d) outside the rectangle changed", trial, x, y)
				case in:
					inside++
					if g != p {
						changed++
					}
				}
			}
		}
		if inside > 20 && changed < inside*3/4 {
			t.Fatalf("trial %d: only %d of %d pixels in the rectangle changed", trial, changed, inside)
		}
	}
	if erased < 100 || erased > 200 {
		t.Fatalf("%d of 300 items erased at probability 0.5", erased)
	}
}
