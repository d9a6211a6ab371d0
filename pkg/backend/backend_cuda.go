//go:build cuda

package backend

import (
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cuda"
)

// The GPU variant (-tags cuda) can open "cuda". Such a binary links
// libcuda.so.1 and exits at start where there is no driver or GPU
// (gorgonia.org/cu's init), so the CPU build never includes this file.
func init() {
	openers["cuda"] = func(c Config) (kernels.Backend, error) {
		return cuda.New(cuda.Config{Device: c.Device})
	}
}
