package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Concat(y *kernels.Tensor, xs []*kernels.Tensor, axis int) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Split(ys []*kernels.Tensor, x *kernels.Tensor, axis int) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Slice(y, x *kernels.Tensor, p kernels.SliceParams) error { return kernels.ErrUnsupported }
func (_ *CPU) SliceBackward(dx, dy *kernels.Tensor, p kernels.SliceParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Pad(y, x *kernels.Tensor, p kernels.PadParams) error { return kernels.ErrUnsupported }
func (_ *CPU) PadBackward(dx, dy *kernels.Tensor, p kernels.PadParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) DepthToSpace(y, x *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) DepthToSpaceBackward(dx, dy *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Transpose(y, x *kernels.Tensor, perm []int) error { return kernels.ErrUnsupported }
func (_ *CPU) BroadcastTo(y, x *kernels.Tensor) error           { return kernels.ErrUnsupported }
