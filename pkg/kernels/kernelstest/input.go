package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testInput(t *testing.T, b kernels.Backend) {
	t.Run("hand", func(t *testing.T) { testInputHand(t, b) })
	t.Run("random", func(t *testing.T) { testInputRandom(t, b) })
	t.Run("errors", func(t *testing.T) { testInputErrors(t, b) })
}

// inRun runs NormalizeU8 into a guarded (N,C,H,W) y.
func inRun(t *testing.T, b kernels.Backend, name string, src []byte, p kernels.NormalizeParams) []float32 {
	t.Helper()
	y := NewGuarded(t, b, kernels.Shape{p.N, p.C, p.H, p.W}, 99)
	if err := b.NormalizeU8(y.T, src, p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return y.Check(t, name)
}

func testInputHand(t *testing.T, b kernels.Backend) {
	// One 1x2 BGR frame: pixel 0 = (B,G,R) = (0,128,255), pixel 1 =
	// (51,102,204). ImageNet stats in RGB order.
	src := []byte{0, 128, 255, 51, 102, 204}
	mean, std := []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	p := kernels.NormalizeParams{N: 1, H: 1, W: 2, C: 3, Mean: mean, Std: std}
	f := func(v byte, c int) float32 { return float32((float64(v)/255 - float64(mean[c])) / float64(std[c])) }
	// Without swap, output channel 0 is B.
	AssertClose(t, "normalize bgr", inRun(t, b, "normalize bgr", src, p),
		[]float32{f(0, 0), f(51, 0), f(128, 1), f(102, 1), f(255, 2), f(204, 2)}, TolF32)
	// With SwapRB output channel 0 is R (255, 204) normalised with
	// mean[0]: (1-0.485)/0.229 = 2.2489 for 255.
	p.SwapRB = true
	got := inRun(t, b, "normalize swap", src, p)
	AssertClose(t, "normalize swap", got, []float32{f(255, 0), f(204, 0), f(128, 1), f(102, 1), f(0, 2), f(51, 2)}, TolF32)
	AssertClose(t, "normalize swap literal", got[:1], []float32{2.2489083}, TolF32)
	// Mean 0, std 1 is v/255; gray frames, N = 2.
	p = kernels.NormalizeParams{N: 2, H: 2, W: 1, C: 1, Mean: []float32{0}, Std: []float32{1}}
	AssertClose(t, "normalize gray", inRun(t, b, "normalize gray", []byte{0, 255, 51, 102}, p), []float32{0, 1, 0.2, 0.4}, TolF32)
}

func testInputRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, g := range []struct{ n, h, w, c int }{{1, 1, 1, 3}, {2, 5, 7, 3}, {3, 4, 9, 1}, {2, 3, 5, 4}, {1, 37, 53, 3}, {4, 64, 48, 3}} {
		src := make([]byte, g.n*g.h*g.w*g.c)
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		for _, swap := range []bool{false, true} {
			p := kernels.NormalizeParams{N: g.n, H: g.h, W: g.w, C: g.c, Mean: Rand(r, g.c, 0, 1), Std: Rand(r, g.c, 0.1, 1), SwapRB: swap}
			name := fmt.Sprintf("normalize %dx%dx%dx%d swap=%v", g.n, g.h, g.w, g.c, swap)
			AssertClose(t, name, inRun(t, b, name, src, p), refNormalizeU8(src, p), TolF32)
		}
	}
}

func inWantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
	}
}

func testInputErrors(t *testing.T, b kernels.Backend) {
	good := kernels.NormalizeParams{N: 2, H: 3, W: 4, C: 3, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}}
	src := make([]byte, 2*3*4*3)
	y, err := b.Alloc(kernels.Shape{2, 3, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NormalizeU8(y, src, good); err != nil {
		t.Fatalf("good params: %v", err)
	}
	with := func(f func(p *kernels.NormalizeParams)) kernels.NormalizeParams {
		p := good
		p.Mean, p.Std = append([]float32(nil), good.Mean...), append([]float32(nil), good.Std...)
		f(&p)
		return p
	}
	inWantErr(t, "short src", b.NormalizeU8(y, src[1:], good), kernels.ErrShape)
	inWantErr(t, "long src", b.NormalizeU8(y, append(src, 0), good), kernels.ErrShape)
	inWantErr(t, "nil src", b.NormalizeU8(y, nil, good), kernels.ErrShape)
	wrongY, _ := b.Alloc(kernels.Shape{2, 3, 4, 3}) // NHWC, same size
	inWantErr(t, "y in HWC order", b.NormalizeU8(wrongY, src, good), kernels.ErrShape)
	inWantErr(t, "nil y", b.NormalizeU8(nil, src, good), kernels.ErrShape)
	inWantErr(t, "N 0", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.N = 0 })), kernels.ErrParam)
	inWantErr(t, "H negative", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.H = -3 })), kernels.ErrParam)
	inWantErr(t, "two means", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Mean = p.Mean[:2] })), kernels.ErrParam)
	inWantErr(t, "no std", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Std = nil })), kernels.ErrParam)
	inWantErr(t, "std 0", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Std[1] = 0 })), kernels.ErrParam)
	inWantErr(t, "std negative", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Std[2] = -1 })), kernels.ErrParam)
	inWantErr(t, "std NaN", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Std[0] = float32(math.NaN()) })), kernels.ErrParam)
	inWantErr(t, "mean NaN", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Mean[0] = float32(math.NaN()) })), kernels.ErrParam)
	inWantErr(t, "mean Inf", b.NormalizeU8(y, src, with(func(p *kernels.NormalizeParams) { p.Mean[0] = float32(math.Inf(1)) })), kernels.ErrParam)
}
