package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Binary(c, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) BinaryBackward(da, db, dc, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Axpy(y *kernels.Tensor, alpha float32, x *kernels.Tensor) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Scale(y *kernels.Tensor, alpha float32) error { return kernels.ErrUnsupported }
