package bench

import (
	"context"
	"math/rand/v2"
	"time"

	"vireo/pkg/kernels"
)

// Interleave is the harness Kernels times with, for other benchmarks
// (`vireo bench train`): each runner runs warmup times, then reps rounds
// of all runners in turn (so drifting load hits them alike); it returns
// each runner's median time.
func Interleave(ctx context.Context, b kernels.Backend, runners []func() error, warmup, reps int, cpuClock bool) ([]time.Duration, error) {
	return interleave(ctx, b, runners, warmup, reps, cpuClock)
}

// Sgemm returns a runner that does one (m,k) x (k,n) Gemm on b with
// random operands, the SGEMM reference the conv cases are compared with,
// and a function that frees its tensors.
func Sgemm(b kernels.Backend, m, k, n int) (run func() error, free func(), err error) {
	a := &arena{b: b, r: rand.New(rand.NewPCG(uint64(m), uint64(k*n)))}
	x, err := a.tensor(m, k)
	if err == nil {
		var y, c *kernels.Tensor
		if y, err = a.tensor(k, n); err == nil {
			if c, err = a.tensor(m, n); err == nil {
				return func() error { return b.Gemm(c, x, y, kernels.GemmParams{Alpha: 1}) }, a.free, nil
			}
		}
	}
	a.free()
	return nil, nil, err
}
