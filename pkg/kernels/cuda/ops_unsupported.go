//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

// The ops below have no CUDA kernel yet. Each returns an error wrapping
// kernels.ErrUnsupported that names the op, so a model or trainer that
// needs one fails clearly on this backend instead of computing on the
// CPU behind the caller's back.

func unsupported(op string) error {
	return fmt.Errorf("%w: cuda backend has no %s kernel yet", kernels.ErrUnsupported, op)
}

// MatMulBackward implements kernels.LinearOps (not yet on CUDA).
func (b *Backend) MatMulBackward(da, db, dc, a, x *kernels.Tensor) error {
	return unsupported("MatMulBackward")
}

// BatchNormTraining implements kernels.NormOps (not yet on CUDA).
func (b *Backend) BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return unsupported("BatchNormTraining")
}

// BatchNormBackward implements kernels.NormOps (not yet on CUDA).
func (b *Backend) BatchNormBackward(dx, dscale, dbias, dy, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	return unsupported("BatchNormBackward")
}

// BinaryBackward implements kernels.ElementwiseOps (not yet on CUDA).
func (b *Backend) BinaryBackward(da, db, dc, x, y *kernels.Tensor, op kernels.BinaryOp) error {
	return unsupported("BinaryBackward")
}

// Resize implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	return unsupported("Resize")
}

// ResizeBackward implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	return unsupported("ResizeBackward")
}

// ReduceSum implements kernels.ReduceOps (not yet on CUDA).
func (b *Backend) ReduceSum(y, x *kernels.Tensor, axes []int) error {
	return unsupported("ReduceSum")
}

// ReduceMean implements kernels.ReduceOps (not yet on CUDA).
func (b *Backend) ReduceMean(y, x *kernels.Tensor, axes []int) error {
	return unsupported("ReduceMean")
}

// BCEWithLogits implements kernels.LossOps (not yet on CUDA).
func (b *Backend) BCEWithLogits(loss, x, target, weight *kernels.Tensor) error {
	return unsupported("BCEWithLogits")
}

// BCEWithLogitsBackward implements kernels.LossOps (not yet on CUDA).
func (b *Backend) BCEWithLogitsBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return unsupported("BCEWithLogitsBackward")
}

// CrossEntropy implements kernels.LossOps (not yet on CUDA).
func (b *Backend) CrossEntropy(loss, x, target, weight *kernels.Tensor, ignoreIndex int) error {
	return unsupported("CrossEntropy")
}

// CrossEntropyBackward implements kernels.LossOps (not yet on CUDA).
func (b *Backend) CrossEntropyBackward(dx, x, target, weight *kernels.Tensor, ignoreIndex int, scale float32) error {
	return unsupported("CrossEntropyBackward")
}

// MSE implements kernels.LossOps (not yet on CUDA).
func (b *Backend) MSE(loss, x, target, weight *kernels.Tensor) error {
	return unsupported("MSE")
}

// MSEBackward implements kernels.LossOps (not yet on CUDA).
func (b *Backend) MSEBackward(dx, x, target, weight *kernels.Tensor, scale float32) error {
	return unsupported("MSEBackward")
}

// SGDStep implements kernels.OptimOps (not yet on CUDA).
func (b *Backend) SGDStep(param, grad, velocity *kernels.Tensor, p kernels.SGDParams) error {
	return unsupported("SGDStep")
}

// AdamWStep implements kernels.OptimOps (not yet on CUDA).
func (b *Backend) AdamWStep(param, grad, m, v *kernels.Tensor, p kernels.AdamWParams) error {
	return unsupported("AdamWStep")
}
