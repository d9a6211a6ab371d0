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
	return o(c)
}
