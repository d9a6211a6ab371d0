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

// Conv2D implements kernels.ConvOps (not yet on CUDA).
func (b *Backend) Conv2D(y, x, w, bias *kernels.Tensor, p kernels.ConvParams) error {
	return unsupported("Conv2D")
}

// Conv2DBackward implements kernels.ConvOps (not yet on CUDA).
func (b *Backend) Conv2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvParams) error {
	return unsupported("Conv2DBackward")
}

// ConvTranspose2D implements kernels.ConvOps (not yet on CUDA).
func (b *Backend) ConvTranspose2D(y, x, w, bias *kernels.Tensor, p kernels.ConvTransposeParams) error {
	return unsupported("ConvTranspose2D")
}

// ConvTranspose2DBackward implements kernels.ConvOps (not yet on CUDA).
func (b *Backend) ConvTranspose2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvTransposeParams) error {
	return unsupported("ConvTranspose2DBackward")
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

// Pool2D implements kernels.PoolOps (not yet on CUDA).
func (b *Backend) Pool2D(y, x *kernels.Tensor, p kernels.PoolParams) error {
	return unsupported("Pool2D")
}

// Pool2DBackward implements kernels.PoolOps (not yet on CUDA).
func (b *Backend) Pool2DBackward(dx, dy, x, y *kernels.Tensor, p kernels.PoolParams) error {
	return unsupported("Pool2DBackward")
}

// GlobalPool implements kernels.PoolOps (not yet on CUDA).
func (b *Backend) GlobalPool(y, x *kernels.Tensor, kind kernels.PoolKind) error {
	return unsupported("GlobalPool")
}

// GlobalPoolBackward implements kernels.PoolOps (not yet on CUDA).
func (b *Backend) GlobalPoolBackward(dx, dy, x, y *kernels.Tensor, kind kernels.PoolKind) error {
	return unsupported("GlobalPoolBackward")
}

// Concat implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Concat(y *kernels.Tensor, xs []*kernels.Tensor, axis int) error {
	return unsupported("Concat")
}

// Split implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Split(ys []*kernels.Tensor, x *kernels.Tensor, axis int) error {
	return unsupported("Split")
}

// Slice implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Slice(y, x *kernels.Tensor, p kernels.SliceParams) error {
	return unsupported("Slice")
}

// SliceBackward implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) SliceBackward(dx, dy *kernels.Tensor, p kernels.SliceParams) error {
	return unsupported("SliceBackward")
}

// Pad implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Pad(y, x *kernels.Tensor, p kernels.PadParams) error {
	return unsupported("Pad")
}

// PadBackward implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) PadBackward(dx, dy *kernels.Tensor, p kernels.PadParams) error {
	return unsupported("PadBackward")
}

// Resize implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Resize(y, x *kernels.Tensor, p kernels.ResizeParams) error {
	return unsupported("Resize")
}

// ResizeBackward implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) ResizeBackward(dx, dy *kernels.Tensor, p kernels.ResizeParams) error {
	return unsupported("ResizeBackward")
}

// DepthToSpace implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) DepthToSpace(y, x *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return unsupported("DepthToSpace")
}

// DepthToSpaceBackward implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) DepthToSpaceBackward(dx, dy *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return unsupported("DepthToSpaceBackward")
}

// Transpose implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) Transpose(y, x *kernels.Tensor, perm []int) error {
	return unsupported("Transpose")
}

// BroadcastTo implements kernels.LayoutOps (not yet on CUDA).
func (b *Backend) BroadcastTo(y, x *kernels.Tensor) error {
	return unsupported("BroadcastTo")
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
