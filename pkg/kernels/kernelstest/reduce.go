package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

func testReduce(t *testing.T, b kernels.Backend) {
	t.Run("shapes", func(t *testing.T) { testReduceShapes(t) })
	t.Run("softmax_hand", func(t *testing.T) { testSoftmaxHand(t, b) })
	t.Run("softmax_random", func(t *testing.T) { testSoftmaxRandom(t, b) })
	t.Run("softmax_grad", func(t *testing.T) { testSoftmaxGrad(t, b) })
	t.Run("reduce_hand", func(t *testing.T) { testReduceHand(t, b) })
	t.Run("reduce_random", func(t *testing.T) { testReduceRandom(t, b) })
	t.Run("argmax", func(t *testing.T) { testArgMax(t, b) })
	t.Run("errors", func(t *testing.T) { testReduceErrors(t, b) })
}

func testReduceShapes(t *testing.T) {
	x := kernels.Shape{2, 3, 4}
	for _, c := range []struct {
		axes       []int
		keep       bool
		want       kernels.Shape
		wantNormal []int
	}{
		{[]int{1}, true, kernels.Shape{2, 1, 4}, []int{1}},
		{[]int{1}, false, kernels.Shape{2, 4}, []int{1}},
		{[]int{-1, 0}, true, kernels.Shape{1, 3, 1}, []int{0, 2}},
		{[]int{-1, 0}, false, kernels.Shape{3}, []int{0, 2}},
		{nil, true, kernels.Shape{1, 1, 1}, []int{0, 1, 2}},
		{[]int{}, false, kernels.Shape{}, []int{0, 1, 2}},
	} {
		got, err := kernels.ReduceOutShape(x, c.axes, c.keep)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ReduceOutShape(%v, %v, %v) = %v, %v (want %v)", x, c.axes, c.keep, got, err, c.want)
		}
		ax, err := kernels.NormalizeAxes(c.axes, len(x))
		if err != nil || fmt.Sprint(ax) != fmt.Sprint(c.wantNormal) {
			t.Errorf("NormalizeAxes(%v, 3) = %v, %v (want %v)", c.axes, ax, err, c.wantNormal)
		}
	}
	for _, axes := range [][]int{{3}, {-4}, {1, -2}} {
		if _, err := kernels.ReduceOutShape(x, axes, true); !errors.Is(err, kernels.ErrParam) {
			t.Errorf("ReduceOutShape(%v, %v): error %v (want ErrParam)", x, axes, err)
		}
	}
	if got, err := kernels.ArgMaxOutShape(x, -2, false); err != nil || !got.Equal(kernels.Shape{2, 4}) {
		t.Errorf("ArgMaxOutShape(%v, -2, false) = %v, %v (want (2,4))", x, got, err)
	}
	if got, err := kernels.ArgMaxOutShape(x, 2, true); err != nil || !got.Equal(kernels.Shape{2, 3, 1}) {
		t.Errorf("ArgMaxOutShape(%v, 2, true) = %v, %v (want (2,3,1))", x, got, err)
	}
	if _, err := kernels.ArgMaxOutShape(kernels.Shape{2, 0}, 1, true); !errors.Is(err, kernels.ErrShape) {
		t.Errorf("ArgMaxOutShape on an empty axis: error %v (want ErrShape)", err)
	}
	if o, n, i, err := kernels.SplitAxis(x, -2); err != nil || o != 2 || n != 3 || i != 4 {
		t.Errorf("SplitAxis(%v, -2) = %d, %d, %d, %v (want 2, 3, 4)", x, o, n, i, err)
	}
}

// rdRun runs op into a guarded output of shape ys filled with junk and
// compares with want.
func rdRun(t *testing.T, b kernels.Backend, name string, ys kernels.Shape, op func(y *kernels.Tensor) error, want []float32, tol Tol) {
	t.Helper()
	y := NewGuarded(t, b, ys, 42)
	if err := op(y.T); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	AssertClose(t, name, y.Check(t, name), want, tol)
}

func testSoftmaxHand(t *testing.T, b kernels.Backend) {
	// ONNX test_softmax_example: softmax([-1, 0, 1]) = e^k / (e^-1+1+e);
	// log: k - log(e^-1+1+e) = k - 1.40760596.
	sm := []float32{0.09003057, 0.24472847, 0.66524096}
	lsm := []float32{-2.40760596, -1.40760596, -0.40760596}
	for _, c := range []struct {
		name string
		x    []float32
	}{{"example", []float32{-1, 0, 1}}, {"large (stability)", []float32{1000, 1001, 1002}}, {"very negative", []float32{-1e4 - 1, -1e4, -1e4 + 1}}} {
		x := Upload(t, b, c.x, 1, 3)
		rdRun(t, b, "softmax "+c.name, kernels.Shape{1, 3}, func(y *kernels.Tensor) error { return b.Softmax(y, x, 1, false) }, sm, TolF32)
		rdRun(t, b, "logsoftmax "+c.name, kernels.Shape{1, 3}, func(y *kernels.Tensor) error { return b.Softmax(y, x, -1, true) }, lsm, TolF32)
	}
	// Along axis 0 of [[1,2],[3,4]]: each column is softmax([a, a+2]) =
	// [1/(1+e^2), e^2/(1+e^2)] = [0.11920292, 0.88079708].
	x := Upload(t, b, []float32{1, 2, 3, 4}, 2, 2)
	rdRun(t, b, "softmax axis 0", kernels.Shape{2, 2}, func(y *kernels.Tensor) error { return b.Softmax(y, x, 0, false) },
		[]float32{0.11920292, 0.11920292, 0.88079708, 0.88079708}, TolF32)
	// Backward by hand: y = [0.25, 0.75], dy = [1, 0]: sum dy*y = 0.25,
	// dx = y*(dy - 0.25) = [0.1875, -0.1875]. Log: y = log([0.25, 0.75]),
	// sum dy = 1, dx = dy - exp(y) = [0.75, -0.75].
	y := Upload(t, b, []float32{0.25, 0.75}, 1, 2)
	dy := Upload(t, b, []float32{1, 0}, 1, 2)
	rdRun(t, b, "softmax backward", kernels.Shape{1, 2}, func(dx *kernels.Tensor) error { return b.SoftmaxBackward(dx, dy, y, 1, false) },
		[]float32{0.1875, -0.1875}, TolF32)
	ly := Upload(t, b, []float32{float32(math.Log(0.25)), float32(math.Log(0.75))}, 1, 2)
	rdRun(t, b, "logsoftmax backward", kernels.Shape{1, 2}, func(dx *kernels.Tensor) error { return b.SoftmaxBackward(dx, dy, ly, 1, true) },
		[]float32{0.75, -0.75}, TolF32)
	if err := b.SoftmaxBackward(nil, dy, y, 1, false); err != nil {
		t.Errorf("softmax backward with nil dx: %v (want nil, skipped)", err)
	}
}

// rdSoftmaxCases are shapes and axes that exercise rows (last axis), short
// and long columns, and column blocks wider than one task's (600 > 512).
var rdSoftmaxCases = []struct {
	s    kernels.Shape
	axis int
}{
	{kernels.Shape{7}, 0}, {kernels.Shape{3, 5}, 1}, {kernels.Shape{3, 5}, 0}, {kernels.Shape{2, 4, 3, 3}, 1},
	{kernels.Shape{2, 4, 3, 3}, -1}, {kernels.Shape{2, 3, 600}, 1}, {kernels.Shape{5, 1, 2}, 1}, {kernels.Shape{2, 3, 4, 5}, 2},
}

func testSoftmaxRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range rdSoftmaxCases {
		a := c.axis
		if a < 0 {
			a += len(c.s)
		}
		xv := Rand(r, c.s.Numel(), -6, 6)
		x := Upload(t, b, xv, c.s...)
		for _, log := range []bool{false, true} {
			name := fmt.Sprintf("softmax log=%v %v axis %d", log, c.s, c.axis)
			want := refSoftmax(xv, c.s, a, log)
			rdRun(t, b, name, c.s, func(y *kernels.Tensor) error { return b.Softmax(y, x, c.axis, log) }, want, TolF32)
			// In place: y and x the same tensor.
			xy := Upload(t, b, xv, c.s...)
			if err := b.Softmax(xy, xy, c.axis, log); err != nil {
				t.Fatalf("%s in place: %v", name, err)
			}
			AssertClose(t, name+" in place", Download(t, b, xy), want, TolF32)
			// Backward against the reference, and in place (dx = dy).
			dyv := Rand(r, c.s.Numel(), -1, 1)
			y, dy := Upload(t, b, want, c.s...), Upload(t, b, dyv, c.s...)
			wantDx := refSoftmaxBackward(dyv, want, c.s, a, log)
			rdRun(t, b, name+" backward", c.s, func(dx *kernels.Tensor) error { return b.SoftmaxBackward(dx, dy, y, c.axis, log) }, wantDx, TolF32)
			if err := b.SoftmaxBackward(dy, dy, y, c.axis, log); err != nil {
				t.Fatalf("%s backward in place: %v", name, err)
			}
			AssertClose(t, name+" backward in place", Download(t, b, dy), wantDx, TolF32)
		}
	}
}

func testSoftmaxGrad(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, c := range rdSoftmaxCases {
		if c.s.Numel() > 200 {
			continue // finite differences cost two forwards per element
		}
		x := Upload(t, b, Rand(r, c.s.Numel(), -2, 2), c.s...)
		for _, log := range []bool{false, true} {
			y := Upload(t, b, make([]float32, c.s.Numel()), c.s...)
			plGradCheck(t, b, fmt.Sprintf("softmax log=%v %v axis %d", log, c.s, c.axis), x, c.s, 1e-2,
				func(yy *kernels.Tensor) error { return b.Softmax(yy, x, c.axis, log) },
				func(dx, dy *kernels.Tensor) error {
					if err := b.Softmax(y, x, c.axis, log); err != nil {
						return err
					}
					return b.SoftmaxBackward(dx, dy, y, c.axis, log)
				})
		}
	}
}

func testReduceHand(t *testing.T, b kernels.Backend) {
	// x = [[1,2,3],[4,5,6]].
	x := Upload(t, b, plSeq(6), 2, 3)
	for _, c := range []struct {
		axes []int
		mean bool
		ys   kernels.Shape
		want []float32
	}{
		{[]int{0}, false, kernels.Shape{1, 3}, []float32{5, 7, 9}},
		{[]int{1}, false, kernels.Shape{2}, []float32{6, 15}},
		{[]int{-1}, true, kernels.Shape{2, 1}, []float32{2, 5}},
		{nil, false, kernels.Shape{}, []float32{21}},
		{[]int{0, 1}, true, kernels.Shape{1, 1}, []float32{3.5}},
	} {
		name := fmt.Sprintf("reduce mean=%v axes %v", c.mean, c.axes)
		rdRun(t, b, name, c.ys, func(y *kernels.Tensor) error {
			if c.mean {
				return b.ReduceMean(y, x, c.axes)
			}
			return b.ReduceSum(y, x, c.axes)
		}, c.want, TolF32)
	}
	// x = 1..8 as (2,2,2): x[i,j,k] = 1+4i+2j+k; over axes 0 and 2, j=0
	// sums 1+2+5+6 = 14, j=1 adds 2 four times: 22.
	x8 := Upload(t, b, plSeq(8), 2, 2, 2)
	rdRun(t, b, "reducesum axes 0,2", kernels.Shape{1, 2, 1}, func(y *kernels.Tensor) error { return b.ReduceSum(y, x8, []int{0, 2}) }, []float32{14, 22}, TolF32)
	// An empty reduced axis: sum 0, mean NaN (0/0).
	empty := Upload(t, b, nil, 2, 0)
	rdRun(t, b, "reducesum empty axis", kernels.Shape{2}, func(y *kernels.Tensor) error { return b.ReduceSum(y, empty, []int{1}) }, []float32{0, 0}, TolExact)
	nan := float32(math.NaN())
	rdRun(t, b, "reducemean empty axis", kernels.Shape{2}, func(y *kernels.Tensor) error { return b.ReduceMean(y, empty, []int{1}) }, []float32{nan, nan}, TolExact)
}

func testReduceRandom(t *testing.T, b kernels.Backend) {
	r := rand.New(rand.NewPCG(15, 16))
	ran := 0
	for _, s := range []kernels.Shape{{6}, {3, 1, 5}, {2, 3, 4, 5}, {4, 1, 3, 7}, {3, 700}, {700, 3}, {2, 600, 2}} {
		xv := Rand(r, s.Numel(), -1, 1)
		x := Upload(t, b, xv, s...)
		// Every non-empty subset of the axes.
		for mask := 1; mask < 1<<len(s); mask++ {
			var axes []int
			for a := range s {
				if mask&(1<<a) != 0 {
					axes = append(axes, a)
				}
			}
			ys, err := kernels.ReduceOutShape(s, axes, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, mean := range []bool{false, true} {
				ran++
				name := fmt.Sprintf("reduce mean=%v %v axes %v", mean, s, axes)
				// Sums of up to 2100 terms in [-1,1]: absolute tolerance.
				rdRun(t, b, name, ys, func(y *kernels.Tensor) error {
					if mean {
						return b.ReduceMean(y, x, axes)
					}
					return b.ReduceSum(y, x, axes)
				}, refReduce(xv, s, axes, mean), Tol{Abs: 1e-4, Rel: 1e-4})
			}
		}
	}
	if ran < 100 {
		t.Errorf("only %d random reduce cases ran (want >= 100)", ran)
	}
}

func testArgMax(t *testing.T, b kernels.Backend) {
	// ONNX test_argmax_default_axis_example: [[2,1],[3,10]] along axis 0
	// gives [[1,1]].
	x := Upload(t, b, []float32{2, 1, 3, 10}, 2, 2)
	rdRun(t, b, "argmax onnx example", kernels.Shape{1, 2}, func(y *kernels.Tensor) error { return b.ArgMax(y, x, 0) }, []float32{1, 1}, TolExact)
	// Ties pick the first maximum: [[1,5,5],[7,2,7]].
	xt := Upload(t, b, []float32{1, 5, 5, 7, 2, 7}, 2, 3)
	rdRun(t, b, "argmax ties axis 1", kernels.Shape{2}, func(y *kernels.Tensor) error { return b.ArgMax(y, xt, 1) }, []float32{1, 0}, TolExact)
	rdRun(t, b, "argmax ties axis -2", kernels.Shape{3}, func(y *kernels.Tensor) error { return b.ArgMax(y, xt, -2) }, []float32{1, 0, 1}, TolExact)
	// NaN is the maximum (NumPy), the first one wins.
	nan := float32(math.NaN())
	xn := Upload(t, b, []float32{1, nan, 3, nan, 4, 1, 2, 3}, 2, 4)
	rdRun(t, b, "argmax nan", kernels.Shape{2}, func(y *kernels.Tensor) error { return b.ArgMax(y, xn, 1) }, []float32{1, 0}, TolExact)
	rdRun(t, b, "argmax nan columns", kernels.Shape{4}, func(y *kernels.Tensor) error { return b.ArgMax(y, xn, 0) }, []float32{1, 0, 0, 0}, TolExact)
	// Random against the reference, with ties (values on a coarse grid).
	r := rand.New(rand.NewPCG(17, 18))
	for _, c := range rdSoftmaxCases {
		a := c.axis
		if a < 0 {
			a += len(c.s)
		}
		xv := make([]float32, c.s.Numel())
		for i := range xv {
			xv[i] = float32(r.IntN(9))
		}
		xr := Upload(t, b, xv, c.s...)
		ys, _ := kernels.ArgMaxOutShape(c.s, c.axis, false)
		rdRun(t, b, fmt.Sprintf("argmax %v axis %d", c.s, c.axis), ys, func(y *kernels.Tensor) error { return b.ArgMax(y, xr, c.axis) }, refArgMax(xv, c.s, a), TolExact)
	}
}

func testReduceErrors(t *testing.T, b kernels.Backend) {
	x := Upload(t, b, plSeq(6), 2, 3)
	y6, y2, y3 := Upload(t, b, make([]float32, 6), 3, 2), Upload(t, b, make([]float32, 2), 2), Upload(t, b, make([]float32, 3), 3)
	plWantErr(t, "softmax y shape", b.Softmax(y6, x, 1, false), kernels.ErrShape)
	plWantErr(t, "softmax axis", b.Softmax(Upload(t, b, make([]float32, 6), 2, 3), x, 2, false), kernels.ErrParam)
	plWantErr(t, "softmax backward dy shape", b.SoftmaxBackward(Upload(t, b, make([]float32, 6), 2, 3), y6, x, 1, true), kernels.ErrShape)
	plWantErr(t, "softmax backward axis", b.SoftmaxBackward(Upload(t, b, make([]float32, 6), 2, 3), x, x, -3, true), kernels.ErrParam)
	plWantErr(t, "reducesum y size", b.ReduceSum(y3, x, []int{1}), kernels.ErrShape)
	plWantErr(t, "reducemean y size", b.ReduceMean(y2, x, []int{0}), kernels.ErrShape)
	plWantErr(t, "reducesum axis range", b.ReduceSum(y2, x, []int{2}), kernels.ErrParam)
	plWantErr(t, "reducesum repeated axis", b.ReduceSum(y2, x, []int{1, -1}), kernels.ErrParam)
	plWantErr(t, "argmax y size", b.ArgMax(y3, x, 1), kernels.ErrShape)
	plWantErr(t, "argmax axis", b.ArgMax(y3, x, 5), kernels.ErrParam)
	plWantErr(t, "argmax empty axis", b.ArgMax(y2, Upload(t, b, nil, 2, 0), 1), kernels.ErrShape)
	plWantErr(t, "softmax nil y", b.Softmax(nil, x, 1, false), kernels.ErrShape)
	plWantErr(t, "reducesum nil y", b.ReduceSum(nil, x, nil), kernels.ErrShape)
}
