package graph

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// convLog is the CPU backend recording which gradients each
// Conv2DBackward call computes ("dx dw db" for all three).
type convLog struct {
	*cpu.CPU
	calls []string
}

func (c *convLog) Conv2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvParams) error {
	var got []string
	for i, t := range []*kernels.Tensor{dx, dw, db} {
		if t != nil {
			got = append(got, []string{"dx", "dw", "db"}[i])
		}
	}
	c.calls = append(c.calls, strings.Join(got, " "))
	return c.CPU.Conv2DBackward(dx, dw, db, dy, x, w, p)
}

// TestSetFrozen: freezing parameters leaves the other gradients exactly
// as they were, zeroes the frozen ones, and skips the backward work only
// frozen parameters needed (the stem's input gradient is never computed);
// unfreezing restores the full backward without allocating.
func TestSetFrozen(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const batch = 4
	g := tinyConvNet(r, batch)
	be := &convLog{CPU: newCPU(t, 2)}
	p := compile(t, g, be, Options{Training: true, InputShapes: map[string][]int{"x": {batch, 1, 6, 6}}})
	x := kernelstest.Upload(t, be, randVals(r, batch*36, -1, 1), batch, 1, 6, 6)
	dy := kernelstest.Upload(t, be, randVals(r, batch*3, -1, 1), batch, 3)
	step := func() map[string][]float32 {
		t.Helper()
		be.calls = nil
		if _, err := p.Run(x); err != nil {
			t.Fatal(err)
		}
		if err := p.Backward(dy); err != nil {
			t.Fatal(err)
		}
		grads := map[string][]float32{}
		for _, prm := range p.Params() {
			grads[prm.Name] = slices.Clone(download(t, be, prm.Grad))
		}
		return grads
	}
	// Running statistics move with each Run, so every case starts from
	// the same values.
	reset := func() {
		for _, n := range []string{"n1_m", "n1_v"} {
			if err := be.Upload(p.a.vals[n].t, g.Initializers[n].Float); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := step()
	if want := []string{"dx dw db", "dw db"}; !slices.Equal(be.calls, want) {
		t.Errorf("nothing frozen: conv backward calls %q, want %q (c2, then the stem c1 without dx)", be.calls, want)
	}
	allocs := len(p.allocs)
	for _, tc := range []struct {
		frozen []string
		calls  []string
	}{
		// The body's convs frozen, its BatchNorm training (fastai's
		// train_bn): c2 only passes the gradient on to n1; c1 runs nothing.
		{[]string{"c1_w", "c1_b", "c2_w", "c2_b"}, []string{"dx"}},
		// Everything but the head: no conv or BatchNorm backward at all.
		{[]string{"c1_w", "c1_b", "c2_w", "c2_b", "n1_s", "n1_bb"}, nil},
		{[]string{"c2_w"}, []string{"dx db", "dw db"}},
		{nil, []string{"dx dw db", "dw db"}},
	} {
		name := fmt.Sprint("frozen ", tc.frozen)
		if err := p.SetFrozen(func(n string) bool { return slices.Contains(tc.frozen, n) }); err != nil {
			t.Fatal(err)
		}
		reset()
		got := step()
		if !slices.Equal(be.calls, tc.calls) {
			t.Errorf("%s: conv backward calls %q, want %q", name, be.calls, tc.calls)
		}
		for n, want := range all {
			if slices.Contains(tc.frozen, n) {
				if !p.Frozen(n) {
					t.Errorf("%s: Frozen(%q) = false", name, n)
				}
				want = make([]float32, len(want))
			}
			if !slices.Equal(got[n], want) {
				t.Errorf("%s: gradient of %s differs from the unfrozen one (or, frozen, is not zero)", name, n)
			}
		}
		reset()
	}
	if len(p.allocs) != allocs {
		t.Errorf("freezing and unfreezing allocated %d more buffers, want 0", len(p.allocs)-allocs)
	}
	inf := compile(t, g, be, Options{InputShapes: map[string][]int{"x": {batch, 1, 6, 6}}})
	if err := inf.SetFrozen(nil); err == nil {
		t.Error("SetFrozen on an inference program: no error")
	}
}

// TestSetRunsContinuesDropout: a program compiled to replace another
// (progressive resizing) continues its Dropout masks with SetRuns instead
// of drawing the first ones again.
func TestSetRunsContinuesDropout(t *testing.T) {
	b := newBuilder()
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: "x", DType: Float32, Shape: []int{-1, 64}})
	b.node("Dropout", in("x"), in("y"), map[string]Attr{"ratio": aFloat(0.5)})
	b.output("y")
	be := newCPU(t, 1)
	opt := Options{Training: true, InputShapes: map[string][]int{"x": {2, 64}}}
	x := kernelstest.Upload(t, be, ones(128), 2, 64)
	masks := func(p *Program, n int) [][]float32 {
		var out [][]float32
		for range n {
			o, err := p.Run(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, slices.Clone(download(t, be, o[0])))
		}
		return out
	}
	old := masks(compile(t, b.g, be, opt), 4)
	first := compile(t, b.g, be, opt)
	done := masks(first, 2)
	next := compile(t, b.g, be, opt)
	next.SetRuns(first.Runs())
	if first.Runs() != 2 {
		t.Fatalf("Runs after 2 runs = %d", first.Runs())
	}
	cont := masks(next, 2)
	for i, m := range append(done, cont...) {
		if !slices.Equal(m, old[i]) {
			t.Errorf("run %d: mask differs from run %d of one program", i+1, i+1)
		}
	}
	if slices.Equal(cont[0], old[0]) {
		t.Error("the replacing program drew the first mask again")
	}
}
