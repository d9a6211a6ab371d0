package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) BCEWithLogits(loss, x, target, weight *kernels.Tensor) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) BCEWithLogitsBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) CrossEntropy(loss, x, target, weight *kernels.Tensor, ignoreIndex int) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) CrossEntropyBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, scale float32) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) MSE(loss, x, target, weight *kernels.Tensor) error { return kernels.ErrUnsupported }
func (_ *CPU) MSEBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return kernels.ErrUnsupported
}
