package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) SGDStep(param, grad, velocity *kernels.Tensor, p kernels.SGDParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) AdamWStep(param, grad, m, v *kernels.Tensor, p kernels.AdamWParams) error {
	return kernels.ErrUnsupported
}
