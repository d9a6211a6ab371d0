package cpu_test

import (
	"testing"

	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

func newCPU(t testing.TB, threads int) *cpu.CPU {
	t.Helper()
	c, err := cpu.New(cpu.Config{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the whole kernelstest suite on one and on two threads
// (the parallel paths and the inline paths must agree with the references).
func TestConformance(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(t *testing.T) {
			kernelstest.Run(t, newCPU(t, threads))
		})
	}
}
