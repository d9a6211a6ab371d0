package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Softmax(y, x *kernels.Tensor, axis int, log bool) error { return kernels.ErrUnsupported }
func (_ *CPU) SoftmaxBackward(dx, dy, y *kernels.Tensor, axis int, log bool) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) ReduceSum(y, x *kernels.Tensor, axes []int) error  { return kernels.ErrUnsupported }
func (_ *CPU) ReduceMean(y, x *kernels.Tensor, axes []int) error { return kernels.ErrUnsupported }
func (_ *CPU) ArgMax(y, x *kernels.Tensor, axis int) error       { return kernels.ErrUnsupported }
