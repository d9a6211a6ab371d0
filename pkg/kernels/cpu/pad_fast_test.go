package cpu

import (
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// TestPadBlocks: channel padding of an NCHW tensor (the residual padding
// of BlazeFace-like blocks) through the block-copy path equals the plain
// definition, with a zero and a non-zero constant, on 1 and 2 threads.
func TestPadBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	xs := kernels.Shape{3, 5, 6, 7}
	x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, v := range []float32{0, -0.5} {
			p := kernels.PadParams{Mode: kernels.PadConstant, Pads: []int{0, 2, 0, 0, 0, 3, 0, 0}, Value: v}
			ys := kernels.Shape{3, 10, 6, 7}
			y := kernels.FromSlice(make([]float32, ys.Numel()), ys...)
			if !c.padBlocks(y, x, p) {
				t.Fatal("channel padding did not take the block path")
			}
			want := make([]float32, ys.Numel())
			hw := 6 * 7
			for n := range 3 {
				for ch := range 10 {
					for i := range hw {
						w := v
						if ch >= 2 && ch < 7 {
							w = x.Data[(n*5+ch-2)*hw+i]
						}
						want[(n*10+ch)*hw+i] = w
					}
				}
			}
			kernelstest.AssertClose(t, "channel pad", y.Data, want, kernelstest.TolExact)
		}
		// Two padded axes, a crop or another mode: not the block path.
		for _, p := range []kernels.PadParams{
			{Mode: kernels.PadConstant, Pads: []int{0, 1, 1, 0, 0, 0, 0, 0}},
			{Mode: kernels.PadConstant, Pads: []int{0, -1, 0, 0, 0, 0, 0, 0}},
			{Mode: kernels.PadEdge, Pads: []int{0, 1, 0, 0, 0, 0, 0, 0}},
		} {
			ys, err := kernels.PadOutShape(xs, p)
			if err != nil {
				t.Fatal(err)
			}
			if c.padBlocks(kernels.FromSlice(make([]float32, ys.Numel()), ys...), x, p) {
				t.Errorf("pads %v mode %d took the block path", p.Pads, p.Mode)
			}
		}
	}
}
