package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Gemm(c, a, b *kernels.Tensor, p kernels.GemmParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) MatMul(c, a, b *kernels.Tensor) error                  { return kernels.ErrUnsupported }
func (_ *CPU) MatMulBackward(da, db, dc, a, b *kernels.Tensor) error { return kernels.ErrUnsupported }
