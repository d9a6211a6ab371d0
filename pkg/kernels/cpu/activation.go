package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Activation(y, x *kernels.Tensor, a kernels.Act) error { return kernels.ErrUnsupported }
func (_ *CPU) ActivationBackward(dx, dy, x, y *kernels.Tensor, a kernels.Act) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Dropout(y, mask, x *kernels.Tensor, ratio float32, seed uint64) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) DropoutBackward(dx, dy, mask *kernels.Tensor, ratio float32) error {
	return kernels.ErrUnsupported
}
