package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testPool(t *testing.T, b kernels.Backend) {
	t.Run("shape", func(t *testing.T) { testPoolShape(t) })
	t.Run("hand", func(t *testing.T) { testPoolHand(t, b) })
	t.Run("random", func(t *testing.T) { testPoolRandom(t, b) })
	t.Run("grad", func(t *testing.T) { testPoolGrad(t, b) })
	t.Run("global", func(t *testing.T) { testGlobalPool(t, b) })
	t.Run("errors", func(t *testing.T) { testPoolErrors(t, b) })
}

// seq is 1, 2, ..., n.
func plSeq(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i + 1)
	}
	return v
}

// distinct returns n values in [-1, 1) with no two equal (a shuffled
// ramp), so max pooling has no ties.
func plDistinct(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i, p := range r.Perm(n) {
		v[i] = -1 + 2*float32(p)/float32(n) + 0.5/float32(n)
	}
	return v
}

func testPoolShape(t *testing.T) {
	cases := []struct {
		name string
		x    kernels.Shape
		p    kernels.PoolParams
		want kernels.Shape
	}{
		// floor((4-3)/2)+1 = 1; ceil: ceil(1/2)+1 = 2, last window starts
		// at 2 < 4: kept.
		{"k3s2", kernels.Shape{1, 1, 4, 4}, kernels.PoolParams{Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}}, kernels.Shape{1, 1, 1, 1}},
		{"k3s2ceil", kernels.Shape{1, 1, 4, 4}, kernels.PoolParams{Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, CeilMode: true}, kernels.Shape{1, 1, 2, 2}},
		// 5 + 1 + 1 - 2 = 5: ceil(5/2)+1 = 4, but window 3 would start at
		// 6 >= 5 + 1 (entirely in the right padding): 3, as floor mode.
		{"ceil-last-window", kernels.Shape{1, 1, 5, 5}, kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}, CeilMode: true}, kernels.Shape{1, 1, 3, 3}},
		// Effective kernel (3-1)*2+1 = 5 on H: 7-5+1 = 3; W 4, k 1: 4.
		{"dilated", kernels.Shape{2, 3, 7, 4}, kernels.PoolParams{Kernel: [2]int{3, 1}, Dilations: [2]int{2, 1}}, kernels.Shape{2, 3, 3, 4}},
		// Asymmetric pads: H 5+1+0-3 = 3 -> 3/2+1 = 2, ceil: ceil(3/2)+1 = 3
		// (last start 4 < 5+1: kept); W 6+0+1-2 = 5 -> 5/3+1 = 2, ceil:
		// ceil(5/3)+1 = 3, but the last start 6 >= 6+0: 2.
		{"asym", kernels.Shape{1, 2, 5, 6}, kernels.PoolParams{Kernel: [2]int{3, 2}, Strides: [2]int{2, 3}, Pads: [4]int{1, 0, 0, 1}}, kernels.Shape{1, 2, 2, 2}},
		{"asym-ceil", kernels.Shape{1, 2, 5, 6}, kernels.PoolParams{Kernel: [2]int{3, 2}, Strides: [2]int{2, 3}, Pads: [4]int{1, 0, 0, 1}, CeilMode: true}, kernels.Shape{1, 2, 3, 2}},
	}
	for _, c := range cases {
		got, err := kernels.Pool2DOutShape(c.x, c.p)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: Pool2DOutShape(%v) = %v, %v (want %v)", c.name, c.x, got, err, c.want)
		}
	}
}

// poolCase runs Pool2D on x into a guarded y and compares with want.
func plPoolCase(t *testing.T, b kernels.Backend, name string, x []float32, xs kernels.Shape, p kernels.PoolParams, want []float32, tol Tol) {
	t.Helper()
	ys, err := kernels.Pool2DOutShape(xs, p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	xt := Upload(t, b, x, xs...)
	y := NewGuarded(t, b, ys, 123)
	if err := b.Pool2D(y.T, xt, p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	AssertClose(t, name, y.Check(t, name), want, tol)
}

func testPoolHand(t *testing.T, b kernels.Backend) {
	x16, x25 := plSeq(16), plSeq(25)
	s44, s55 := kernels.Shape{1, 1, 4, 4}, kernels.Shape{1, 1, 5, 5}
	k3s2 := kernels.PoolParams{Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, CeilMode: true}
	// ONNX test_maxpool_2d_ceil: x = 1..16 (4x4), 3x3 windows at rows and
	// cols {0..2, 2..3}: max of the bottom-right corner of each.
	plPoolCase(t, b, "maxpool_2d_ceil", x16, s44, k3s2, []float32{11, 12, 15, 16}, TolExact)
	// test_averagepool_2d_ceil: (1+2+3+5+6+7+9+10+11)/9 = 6;
	// (3+4+7+8+11+12)/6 = 7.5; (9+10+11+13+14+15)/6 = 12;
	// (11+12+15+16)/4 = 13.5.
	avg := k3s2
	avg.Kind = kernels.PoolAvg
	plPoolCase(t, b, "averagepool_2d_ceil", x16, s44, avg, []float32{6, 7.5, 12, 13.5}, TolF32)
	// With count_include_pad the part of a ceil-mode window beyond the
	// (unpadded) input still does not count: same numbers.
	avg.CountIncludePad = true
	plPoolCase(t, b, "averagepool_2d_ceil_count_include_pad", x16, s44, avg, []float32{6, 7.5, 12, 13.5}, TolF32)
	// test_maxpool_2d_dilations: 2x2 taps 2 apart: max(x[1][1], x[1][3],
	// x[3][1], x[3][3]) = 16 at (1,1), and so on.
	plPoolCase(t, b, "maxpool_2d_dilations", x16, s44, kernels.PoolParams{Kernel: [2]int{2, 2}, Dilations: [2]int{2, 2}}, []float32{11, 12, 15, 16}, TolExact)
	// test_maxpool_2d_precomputed_pads: 5x5 windows, pads 2: the window of
	// (i,j) covers rows i-2..i+2: max = x[min(i+2,4)][min(j+2,4)].
	k5p2 := kernels.PoolParams{Kernel: [2]int{5, 5}, Pads: [4]int{2, 2, 2, 2}}
	plPoolCase(t, b, "maxpool_2d_precomputed_pads", x25, s55, k5p2, []float32{
		13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25}, TolExact)
	// test_averagepool_2d_precomputed_pads: (0,0) averages rows and cols
	// 0..2 = 63/9 = 7; with count_include_pad 63/25 = 2.52.
	k5p2.Kind = kernels.PoolAvg
	plPoolCase(t, b, "averagepool_2d_precomputed_pads", x25, s55, k5p2, []float32{
		7, 7.5, 8, 8.5, 9, 9.5, 10, 10.5, 11, 11.5, 12, 12.5, 13, 13.5, 14, 14.5, 15, 15.5, 16, 16.5, 17, 17.5, 18, 18.5, 19}, TolF32)
	k5p2.CountIncludePad = true
	plPoolCase(t, b, "averagepool_2d_precomputed_pads_count_include_pad", x25, s55, k5p2, []float32{
		2.52, 3.6, 4.8, 4.08, 3.24, 4.56, 6.4, 8.4, 7.04, 5.52, 7.2, 10, 13, 10.8, 8.4,
		6.96, 9.6, 12.4, 10.24, 7.92, 6.12, 8.4, 10.8, 8.88, 6.84}, TolF32)
	// test_averagepool_2d_precomputed_strides: 2x2 windows, stride 2 on
	// 5x5: (1+2+6+7)/4 = 4, ...
	plPoolCase(t, b, "averagepool_2d_precomputed_strides", x25, s55, kernels.PoolParams{Kind: kernels.PoolAvg, Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}},
		[]float32{4, 6, 14, 16}, TolF32)
	// Asymmetric pads, max: pads top 1, left 0; 2x2 windows stride 2 on
	// 1..16: row windows {-1,0}, {1,2}; col windows {0,1}, {2,3}.
	plPoolCase(t, b, "maxpool_asym_pads", x16, s44, kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}, Pads: [4]int{1, 0, 0, 0}},
		[]float32{2, 4, 10, 12}, TolExact)
}

// poolParamSets are the random cases' parameters: odd sizes, stride 2,
// dilation, asymmetric pads, ceil mode, both divisors.
func poolParamSets() []kernels.PoolParams {
	var ps []kernels.PoolParams
	base := []kernels.PoolParams{
		{Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}},
		{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}},
		{Kernel: [2]int{3, 2}, Strides: [2]int{1, 2}, Pads: [4]int{2, 0, 1, 1}},
		{Kernel: [2]int{3, 3}, Strides: [2]int{2, 1}, Dilations: [2]int{2, 2}, Pads: [4]int{1, 2, 0, 1}},
		{Kernel: [2]int{1, 4}, Strides: [2]int{3, 3}, Pads: [4]int{0, 3, 0, 2}},
		{Kernel: [2]int{5, 5}, Strides: [2]int{3, 2}, Pads: [4]int{4, 1, 2, 3}},
	}
	for _, p := range base {
		for _, ceil := range []bool{false, true} {
			for _, kind := range []kernels.PoolKind{kernels.PoolMax, kernels.PoolAvg} {
				for _, cip := range []bool{false, true} {
					if kind == kernels.PoolMax && cip {
						continue
					}
					q := p
					q.CeilMode, q.Kind, q.CountIncludePad = ceil, kind, cip
					ps = append(ps, q)
				}
			}
		}
	}
	return ps
}

func testPoolRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := []kernels.Shape{{1, 1, 7, 7}, {2, 3, 9, 8}, {1, 2, 11, 5}, {3, 1, 6, 13}}
	ran := 0
	defer func() {
		if ran < 80 {
			t.Errorf("only %d random pool cases ran (want >= 80)", ran)
		}
	}()
	for _, p := range poolParamSets() {
		for _, xs := range shapes {
			name := fmt.Sprintf("%+v x%v", p, xs)
			ys, err := kernels.Pool2DOutShape(xs, p)
			if err != nil {
				continue // window larger than this input
			}
			ran++
			x := Rand(r, xs.Numel(), -2, 2)
			plPoolCase(t, b, name, x, xs, p, refPool2D(x, xs, ys, p), TolF32)
			// Backward against the reference (max with distinct values).
			if p.Kind == kernels.PoolMax {
				x = plDistinct(r, xs.Numel())
			}
			dy := Rand(r, ys.Numel(), -1, 1)
			xt, yt, dyt := Upload(t, b, x, xs...), Upload(t, b, make([]float32, ys.Numel()), ys...), Upload(t, b, dy, ys...)
			if err := b.Pool2D(yt, xt, p); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			dx := NewGuarded(t, b, xs, 99)
			if err := b.Pool2DBackward(dx.T, dyt, xt, yt, p); err != nil {
				t.Fatalf("%s backward: %v", name, err)
			}
			AssertClose(t, name+" backward", dx.Check(t, name), refPool2DBackward(dy, x, xs, ys, p), TolF32)
		}
	}
}

// gradCheck compares the backward's dx with central differences of
// loss = Dot(forward(x), w).
func plGradCheck(t *testing.T, b kernels.Backend, name string, x *kernels.Tensor, ys kernels.Shape, eps float32, fwd func(y *kernels.Tensor) error, bwd func(dx, dy *kernels.Tensor) error) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(len(name)), 7))
	w := Rand(r, ys.Numel(), -1, 1)
	y, err := b.Alloc(ys)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		if err := fwd(y); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return Dot(Download(t, b, y), w)
	}
	num := NumericGrad(t, b, x, eps, loss)
	dx := NewGuarded(t, b, x.Shape, 55) // backward must overwrite
	if err := bwd(dx.T, Upload(t, b, w, ys...)); err != nil {
		t.Fatalf("%s backward: %v", name, err)
	}
	AssertClose(t, name+" grad", dx.Check(t, name), num, TolGrad)
}

func testPoolGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := kernels.Shape{1, 2, 5, 6}
	for i, p := range poolParamSets() {
		if i%3 != 0 { // a spread of the sets keeps this quick
			continue
		}
		ys, err := kernels.Pool2DOutShape(xs, p)
		if err != nil {
			continue
		}
		x := Upload(t, b, plDistinct(r, xs.Numel()), xs...)
		y := Upload(t, b, make([]float32, ys.Numel()), ys...)
		// eps well under half the gap between distinct values (2/60).
		plGradCheck(t, b, fmt.Sprintf("pool %+v", p), x, ys, 4e-3,
			func(yy *kernels.Tensor) error { return b.Pool2D(yy, x, p) },
			func(dx, dy *kernels.Tensor) error {
				if err := b.Pool2D(y, x, p); err != nil {
					return err
				}
				return b.Pool2DBackward(dx, dy, x, y, p)
			})
	}
}

func testGlobalPool(t *testing.T, b kernels.Backend) {
	// (N,C,H,W) = (1,2,2,2): plane 0 = 1..4, plane 1 = 8, -1, 3, 8.
	x := Upload(t, b, []float32{1, 2, 3, 4, 8, -1, 3, 8}, 1, 2, 2, 2)
	for _, c := range []struct {
		kind kernels.PoolKind
		want []float32
	}{{kernels.PoolMax, []float32{4, 8}}, {kernels.PoolAvg, []float32{2.5, 4.5}}} {
		y := NewGuarded(t, b, kernels.Shape{1, 2, 1, 1}, 0)
		if err := b.GlobalPool(y.T, x, c.kind); err != nil {
			t.Fatal(err)
		}
		AssertClose(t, "globalpool", y.Check(t, "globalpool"), c.want, TolF32)
		// Backward: max sends dy to the first 8 (index 4); avg spreads
		// dy/4.
		dx := NewGuarded(t, b, x.Shape, 9)
		if err := b.GlobalPoolBackward(dx.T, Upload(t, b, []float32{4, 2}, 1, 2, 1, 1), x, y.T, c.kind); err != nil {
			t.Fatal(err)
		}
		want := []float32{0, 0, 0, 4, 2, 0, 0, 0}
		if c.kind == kernels.PoolAvg {
			want = []float32{1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5}
		}
		AssertClose(t, "globalpool backward", dx.Check(t, "globalpool backward"), want, TolF32)
	}
	// Random, rank 5 included, against plain sums; and gradients.
	r := rand.New(rand.NewPCG(5, 6))
	for _, xs := range []kernels.Shape{{2, 3, 5, 7}, {1, 2, 3, 2, 4}} {
		xv := plDistinct(r, xs.Numel())
		xt := Upload(t, b, xv, xs...)
		ys, _ := kernels.GlobalPoolOutShape(xs)
		size := xs.Numel() / ys.Numel()
		for _, kind := range []kernels.PoolKind{kernels.PoolMax, kernels.PoolAvg} {
			want := make([]float32, ys.Numel())
			for pl := range want {
				m, s := math.Inf(-1), 0.0
				for _, v := range xv[pl*size : (pl+1)*size] {
					m, s = math.Max(m, float64(v)), s+float64(v)
				}
				want[pl] = float32(s / float64(size))
				if kind == kernels.PoolMax {
					want[pl] = float32(m)
				}
			}
			y := NewGuarded(t, b, ys, 0)
			if err := b.GlobalPool(y.T, xt, kind); err != nil {
				t.Fatal(err)
			}
			AssertClose(t, fmt.Sprintf("globalpool %v", xs), y.Check(t, "globalpool"), want, TolF32)
			plGradCheck(t, b, fmt.Sprintf("globalpool %d %v", kind, xs), xt, ys, 4e-3,
				func(yy *kernels.Tensor) error { return b.GlobalPool(yy, xt, kind) },
				func(dx, dy *kernels.Tensor) error { return b.GlobalPoolBackward(dx, dy, xt, y.T, kind) })
		}
	}
}

// wantErr fails t unless err wraps target.
func plWantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v (want one wrapping %v)", name, err, target)
	}
}

func testPoolErrors(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, plSeq(16), 1, 1, 4, 4)
	p := kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}}
	bad := Upload(t, b, make([]float32, 9), 1, 1, 3, 3)
	good := Upload(t, b, make([]float32, 4), 1, 1, 2, 2)
	plWantErr(t, "pool2d y shape", b.Pool2D(bad, x, p), kernels.ErrShape)
	plWantErr(t, "pool2d x rank", b.Pool2D(good, Upload(t, b, plSeq(16), 1, 16), p), kernels.ErrShape)
	plWantErr(t, "pool2d window > input", b.Pool2D(good, x, kernels.PoolParams{Kernel: [2]int{5, 5}}), kernels.ErrShape)
	plWantErr(t, "pool2d kernel 0", b.Pool2D(good, x, kernels.PoolParams{Kernel: [2]int{0, 2}}), kernels.ErrParam)
	plWantErr(t, "pool2d pad >= kernel", b.Pool2D(good, x, kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}, Pads: [4]int{2, 0, 0, 0}}), kernels.ErrParam)
	plWantErr(t, "pool2d negative stride", b.Pool2D(good, x, kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{-1, 2}}), kernels.ErrParam)
	plWantErr(t, "pool2d backward dy shape", b.Pool2DBackward(Upload(t, b, plSeq(16), 1, 1, 4, 4), bad, x, nil, p), kernels.ErrShape)
	plWantErr(t, "pool2d backward x shape", b.Pool2DBackward(Upload(t, b, plSeq(16), 1, 1, 4, 4), good, bad, nil, p), kernels.ErrShape)
	plWantErr(t, "globalpool y shape", b.GlobalPool(good, x, kernels.PoolMax), kernels.ErrShape)
	plWantErr(t, "globalpool rank 2", b.GlobalPool(Upload(t, b, []float32{0}, 1, 1), Upload(t, b, plSeq(4), 2, 2), kernels.PoolAvg), kernels.ErrShape)
	plWantErr(t, "globalpool kind", b.GlobalPool(Upload(t, b, []float32{0}, 1, 1, 1, 1), x, kernels.PoolKind(7)), kernels.ErrParam)
	if err := b.Pool2DBackward(nil, good, x, nil, p); err != nil {
		t.Errorf("pool2d backward with nil dx: %v (want nil, skipped)", err)
	}
}
