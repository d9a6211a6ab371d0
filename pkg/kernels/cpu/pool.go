package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Pool2D(y, x *kernels.Tensor, p kernels.PoolParams) error { return kernels.ErrUnsupported }
func (_ *CPU) Pool2DBackward(dx, dy, x, y *kernels.Tensor, p kernels.PoolParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) GlobalPool(y, x *kernels.Tensor, kind kernels.PoolKind) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) GlobalPoolBackward(dx, dy, x, y *kernels.Tensor, kind kernels.PoolKind) error {
	return kernels.ErrUnsupported
}
