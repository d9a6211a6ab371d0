package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
)

// TestMaxPool3s2MatchesGeneric compares the 3x3 stride-2 C pool with the
// generic plane loop over odd and even sizes, top/left padding 0 and 1,
// end padding 0-2, ceil mode, and inputs with NaNs: same values, same NaNs.
func TestMaxPool3s2MatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	ran := 0
	for _, h := range []int{1, 2, 3, 4, 7, 8, 32, 33} {
		for _, w := range []int{1, 2, 3, 5, 6, 31, 32} {
			for _, pb := range []int{0, 1} {
				for _, pe := range []int{0, 1, 2} {
					for _, ceil := range []bool{false, true} {
						p := kernels.PoolParams{Kind: kernels.PoolMax, Kernel: [2]int{3, 3}, Strides: [2]int{2, 2},
							Pads: [4]int{pb, pb, pe, pe}, CeilMode: ceil}
						x := kernels.Shape{1, 3, h, w}
						p, ah, aw, ys, err := poolGeom("test", x, p)
						if err != nil || !maxPool3s2(p, ah, aw) {
							continue // not a geometry of the fast path
						}
						ran++
						xd := make([]float32, x.Numel())
						for i := range xd {
							xd[i] = float32(rng.IntN(7)) - 3 // ties are common
							if rng.IntN(50) == 0 {
								xd[i] = float32(math.NaN())
							}
						}
						want, got := make([]float32, ys.Numel()), make([]float32, ys.Numel())
						(&poolPlanes{x: xd, y: want, p: p, ah: ah, aw: aw}).run(0, 3)
						(&maxPool3s2Planes{x: xd, y: got, ah: ah, aw: aw}).run(0, 3)
						for i := range want {
							if !(got[i] == want[i] || math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
								t.Fatalf("%s: y[%d] = %v, want %v", fmt.Sprintf("h=%d w=%d pads %d/%d ceil %v", h, w, pb, pe, ceil), i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
	if ran < 100 {
		t.Fatalf("only %d geometries took the fast path", ran)
	}
}
