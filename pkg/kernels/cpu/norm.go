package cpu

import "vireo/pkg/kernels"

// PLACEHOLDER: this family is being written; every method returns ErrUnsupported.

func (_ *CPU) BatchNormInference(y, x, scale, bias, mean, variance *kernels.Tensor, eps float32) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return kernels.ErrUnsupported
}
func (_ *CPU) BatchNormBackward(dx, dscale, dbias, dy, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	return kernels.ErrUnsupported
}
