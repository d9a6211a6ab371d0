package kernelstest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

// Run runs the whole conformance suite against b.
func Run(t *testing.T, b kernels.Backend) {
	t.Run("memory", func(t *testing.T) { testMemory(t, b) })
	t.Run("linear", func(t *testing.T) { testLinear(t, b) })
	t.Run("conv", func(t *testing.T) { testConv(t, b) })
	t.Run("norm", func(t *testing.T) { testNorm(t, b) })
	t.Run("activation", func(t *testing.T) { testActivation(t, b) })
	t.Run("elementwise", func(t *testing.T) { testElementwise(t, b) })
	t.Run("pool", func(t *testing.T) { testPool(t, b) })
	t.Run("layout", func(t *testing.T) { testLayout(t, b) })
	t.Run("reduce", func(t *testing.T) { testReduce(t, b) })
	t.Run("loss", func(t *testing.T) { testLoss(t, b) })
	t.Run("input", func(t *testing.T) { testInput(t, b) })
	t.Run("optim", func(t *testing.T) { testOptim(t, b) })
}

// Tol is an element-wise tolerance: |got-want| <= Abs + Rel*|want|.
type Tol struct{ Abs, Rel float64 }

// Default tolerances for float32 kernels.
var (
	TolExact = Tol{Abs: 0, Rel: 0}
	TolF32   = Tol{Abs: 1e-5, Rel: 1e-4}
	// TolGrad compares analytic gradients with central differences in
	// float32 arithmetic.
	TolGrad = Tol{Abs: 2e-3, Rel: 2e-2}
)

// guardValue fills the slots around an output; a kernel that writes there
// is writing out of bounds.
const guardValue = float32(-7.77e30)

const guardLen = 17

// Guarded is an output tensor with guard values on each side.
type Guarded struct {
	T    *kernels.Tensor
	full *kernels.Tensor
	b    kernels.Backend
}

// NewGuarded allocates a tensor of shape s inside a larger allocation whose
// extra slots hold guard values, and fills the tensor itself with fill.
func NewGuarded(t testing.TB, b kernels.Backend, s kernels.Shape, fill float32) *Guarded {
	t.Helper()
	n := s.Numel()
	full, err := b.Alloc(kernels.Shape{n + 2*guardLen})
	if err != nil {
		t.Fatalf("alloc guarded %v: %v", s, err)
	}
	init := make([]float32, n+2*guardLen)
	for i := range init {
		init[i] = guardValue
	}
	for i := 0; i < n; i++ {
		init[guardLen+i] = fill
	}
	if err := b.Upload(full, init); err != nil {
		t.Fatalf("upload guarded: %v", err)
	}
	view := &kernels.Tensor{Shape: s.Clone(), Dev: full.Dev, Offset: full.Offset + guardLen}
	if full.Data != nil {
		view.Data = full.Data[guardLen : guardLen+n]
	}
	return &Guarded{T: view, full: full, b: b}
}

// Check fails t if a guard value was overwritten, and returns the
// tensor's values.
func (g *Guarded) Check(t testing.TB, name string) []float32 {
	t.Helper()
	all := make([]float32, g.full.Numel())
	if err := g.b.Download(all, g.full); err != nil {
		t.Fatalf("%s: download guarded: %v", name, err)
	}
	n := g.T.Numel()
	for i := 0; i < guardLen; i++ {
		if all[i] != guardValue || all[guardLen+n+i] != guardValue {
			t.Fatalf("%s: write out of bounds: guard slot %d overwritten", name, i)
		}
	}
	return all[guardLen : guardLen+n]
}

// Upload makes a backend tensor of shape s holding vals.
func Upload(t testing.TB, b kernels.Backend, vals []float32, s ...int) *kernels.Tensor {
	t.Helper()
	x, err := b.Alloc(kernels.Shape(s))
	if err != nil {
		t.Fatalf("alloc %v: %v", s, err)
	}
	if err := b.Upload(x, vals); err != nil {
		t.Fatalf("upload %v: %v", s, err)
	}
	return x
}

// Download returns a backend tensor's values.
func Download(t testing.TB, b kernels.Backend, x *kernels.Tensor) []float32 {
	t.Helper()
	out := make([]float32, x.Numel())
	if err := b.Download(out, x); err != nil {
		t.Fatalf("download %v: %v", x.Shape, err)
	}
	return out
}

// Rand returns n values uniform in [lo,hi) from r.
func Rand(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// Close reports whether got is within tol of want, and the first index
// where it is not.
func Close(got, want []float32, tol Tol) (int, bool) {
	if len(got) != len(want) {
		return -1, false
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) {
			return i, false
		}
		if math.IsNaN(w) {
			continue
		}
		if math.IsInf(w, 0) {
			if g != w {
				return i, false
			}
			continue
		}
		if math.Abs(g-w) > tol.Abs+tol.Rel*math.Abs(w) {
			return i, false
		}
	}
	return 0, true
}

// AssertClose fails t with the first mismatch if got is not within tol of want.
func AssertClose(t testing.TB, name string, got, want []float32, tol Tol) {
	t.Helper()
	if i, ok := Close(got, want, tol); !ok {
		if i < 0 {
			t.Fatalf("%s: %d values (want %d)", name, len(got), len(want))
		}
		t.Fatalf("%s: element %d: got %v, want %v (tol abs %g rel %g); %s", name, i, got[i], want[i], tol.Abs, tol.Rel, around(got, want, i))
	}
}

func around(got, want []float32, i int) string {
	lo, hi := max(0, i-3), min(len(got), i+4)
	return fmt.Sprintf("got[%d:%d]=%v want=%v", lo, hi, got[lo:hi], want[lo:hi])
}

// NumericGrad returns d(loss)/d(x) by central differences: it perturbs each
// element of the backend tensor x by ±eps (uploading the change) and calls
// loss, which must run the forward pass and return a scalar.
func NumericGrad(t testing.TB, b kernels.Backend, x *kernels.Tensor, eps float32, loss func() float64) []float32 {
	t.Helper()
	vals := Download(t, b, x)
	g := make([]float32, len(vals))
	for i := range vals {
		orig := vals[i]
		vals[i] = orig + eps
		if err := b.Upload(x, vals); err != nil {
			t.Fatal(err)
		}
		lp := loss()
		vals[i] = orig - eps
		if err := b.Upload(x, vals); err != nil {
			t.Fatal(err)
		}
		lm := loss()
		vals[i] = orig
		g[i] = float32((lp - lm) / (2 * float64(eps)))
	}
	if err := b.Upload(x, vals); err != nil {
		t.Fatal(err)
	}
	return g
}

// Dot is sum(a[i]*w[i]) in float64: a random projection of an output turns
// it into the scalar loss of a gradient check (dL/dy = w).
func Dot(a, w []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(w[i])
	}
	return s
}

func testMemory(t *testing.T, b kernels.Backend) {
	x, err := b.Alloc(kernels.Shape{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := Download(t, b, x); !allEqual(got, 0) {
		t.Fatalf("alloc not zeroed: %v", got)
	}
	want := []float32{1, 2, 3, 4, 5, 6}
	if err := b.Upload(x, want); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "upload/download", Download(t, b, x), want, TolExact)
	g := NewGuarded(t, b, kernels.Shape{3, 2}, 0)
	if err := b.Copy(g.T, x); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "copy", g.Check(t, "copy"), want, TolExact)
	if err := b.Fill(g.T, 2.5); err != nil {
		t.Fatal(err)
	}
	AssertClose(t, "fill", g.Check(t, "fill"), []float32{2.5, 2.5, 2.5, 2.5, 2.5, 2.5}, TolExact)
	bad, _ := b.Alloc(kernels.Shape{4})
	if err := b.Copy(bad, x); err == nil {
		t.Fatal("copy of 6 values into 4: want error")
	}
	if err := b.Upload(x, []float32{1}); err == nil {
		t.Fatal("upload of 1 value into 6: want error")
	}
}

func allEqual(v []float32, x float32) bool {
	for _, e := range v {
		if e != x {
			return false
		}
	}
	return true
}

// RelToScale is the largest |got-want| over the largest |want| (that
// magnitude floored at floor): a whole output's error relative to its
// scale. NaN differences and a length mismatch are +Inf.
func RelToScale(got, want []float32, floor float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var maxAbs, maxDiff float64
	for i := range want {
		maxAbs = max(maxAbs, math.Abs(float64(want[i])))
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxDiff = max(maxDiff, d)
	}
	return maxDiff / max(maxAbs, floor)
}
