package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) Conv2D(y, x, w, b *kernels.Tensor, p kernels.ConvParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) Conv2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) ConvTranspose2D(y, x, w, b *kernels.Tensor, p kernels.ConvTransposeParams) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) ConvTranspose2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvTransposeParams) error {
	return kernels.ErrUnsupported
}
