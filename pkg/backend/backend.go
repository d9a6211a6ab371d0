// Package backend opens a compute backend by name, so commands and services
// can take "cpu" or "cuda" from a flag without importing every backend.
//
// The CUDA backend registers itself from a file built only with the cuda
// build tag; without it, asking for "cuda" is a clear error.
package backend

import (
	"fmt"
	"sort"
	"strings"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
)

// Config picks a backend.
type Config struct {
	// Name is "cpu" (the default when empty) or "cuda".
	Name string
	// Threads caps the CPU backend's compute threads (0: GOMAXPROCS).
	Threads int
	// Device is the CUDA device ordinal.
	Device int
	// Math is the operand precision of the GEMM-shaped ops:
	// kernels.MathFP32 (the default when empty), MathFP16 or MathBF16.
	// Only a kernels.MathModer backend (CUDA) takes the last two.
	Math string
}

// opener opens one kind of backend.
type opener func(Config) (kernels.Backend, error)

var openers = map[string]opener{
	"cpu": func(c Config) (kernels.Backend, error) { return cpu.New(cpu.Config{Threads: c.Threads}) },
}

// Names lists the backends this binary was built with.
func Names() []string {
	ns := make([]string, 0, len(openers))
	for n := range openers {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Open returns the backend c names; the caller closes it.
func Open(c Config) (kernels.Backend, error) {
	name := c.Name
	if name == "" {
		name = "cpu"
	}
	o, ok := openers[name]
	if !ok {
		if name == "cuda" {
			return nil, fmt.Errorf("%w: backend %q: this vireo was built without CUDA (build with -tags cuda)", kernels.ErrUnsupported, name)
		}
		return nil, fmt.Errorf("%w: unknown backend %q (have %s)", kernels.ErrUnsupported, name, strings.Join(Names(), ", "))
	}
	if err := kernels.CheckMath(c.Math); err != nil {
		return nil, err
	}
	if c.Math == "" || c.Math == kernels.MathFP32 {
		return o(c)
	}
	b, err := o(c)
	if err != nil {
		return nil, err
	}
	mm, ok := b.(kernels.MathModer)
	if !ok {
		b.Close()
		return nil, fmt.Errorf("%w: backend %q computes in %s only (math %q is for the cuda backend's tensor cores)", kernels.ErrUnsupported, name, kernels.MathFP32, c.Math)
	}
	if err := mm.SetMath(c.Math); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Math reports b's math mode: its MathModer mode, or kernels.MathFP32.
func Math(b kernels.Backend) string {
	if mm, ok := b.(kernels.MathModer); ok {
		return mm.Math()
	}
	return kernels.MathFP32
}
