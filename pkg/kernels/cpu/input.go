package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) NormalizeU8(y *kernels.Tensor, src []byte, p kernels.NormalizeParams) error {
	return kernels.ErrUnsupported
}
