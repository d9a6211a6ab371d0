package kernels

// Backend is a compute device: memory plus every kernel the graph, the
// trainer and the input path need. It is the composition of one interface per
// op family so each family can be read (and implemented) on its own. The CPU
// backend (package kernels/cpu) and the CUDA backend (package kernels/cuda,
// build tag cuda) implement it; kernelstest.Run checks either.
type Backend interface {
	Memory
	LinearOps
	ConvOps
	NormOps
	ActivationOps
	ElementwiseOps
	PoolOps
	LayoutOps
	ReduceOps
	LossOps
	InputOps
	OptimOps
}

// Memory allocates and moves tensors.
type Memory interface {
	// Name is the backend's short name ("cpu", "cuda").
	Name() string
	// Alloc returns a zeroed tensor of shape s in this backend's memory.
	Alloc(s Shape) (*Tensor, error)
	// Free releases t's memory (a no-op on the CPU); t must not be used after.
	Free(t *Tensor)
	// Upload copies host values into t (len(src) == t.Numel()).
	Upload(dst *Tensor, src []float32) error
	// Download copies t's values to host memory (len(dst) == t.Numel()).
	Download(dst []float32, src *Tensor) error
	// Fill sets every element of t to v.
	Fill(t *Tensor, v float32) error
	// Copy copies src into dst; they must have the same number of elements
	// (shapes may differ: Reshape, Flatten, Squeeze and Unsqueeze are copies
	// or views).
	Copy(dst, src *Tensor) error
	// Sync waits until all queued work is done (a no-op on the CPU).
	Sync() error
	// Close releases the backend's resources (worker goroutines, contexts).
	Close() error
}

// LinearOps are matrix products.
type LinearOps interface {
	// Gemm computes c = alpha*op(a)*op(b) + beta*c on 2-D tensors, where
	// op transposes when p.TransA/p.TransB is set. a is (M,K) or (K,M),
	// b is (K,N) or (N,K), c is (M,N).
	Gemm(c, a, b *Tensor, p GemmParams) error
	// MatMul is ONNX MatMul: c = a @ b over the last two dimensions with
	// NumPy broadcasting of the leading (batch) dimensions; rank-1 operands
	// are promoted as NumPy does.
	MatMul(c, a, b *Tensor) error
	// MatMulBackward writes da = dc @ b^T and db = a^T @ dc, summed over
	// broadcast batch dimensions. Either gradient may be nil.
	MatMulBackward(da, db, dc, a, b *Tensor) error
}

// ConvOps are 2-D convolutions in NCHW layout.
type ConvOps interface {
	// Conv2D: x is (N,C,H,W), w is (M,C/group,kH,kW), b is (M) or nil,
	// y is (N,M,oH,oW) with oH/oW from Conv2DOutShape.
	Conv2D(y, x, w, b *Tensor, p ConvParams) error
	// Conv2DBackward writes dx, dw, db (any may be nil) from dy.
	Conv2DBackward(dx, dw, db, dy, x, w *Tensor, p ConvParams) error
	// ConvTranspose2D: x is (N,C,H,W), w is (C,M/group,kH,kW), b is (M) or
	// nil, y is (N,M,oH,oW) with oH/oW from ConvTranspose2DOutShape.
	ConvTranspose2D(y, x, w, b *Tensor, p ConvTransposeParams) error
	// ConvTranspose2DBackward writes dx, dw, db (any may be nil) from dy.
	ConvTranspose2DBackward(dx, dw, db, dy, x, w *Tensor, p ConvTransposeParams) error
}

// NormOps are batch normalisation over the channel axis (axis 1) of a
// (N,C,...) tensor.
type NormOps interface {
	// BatchNormInference: y = scale*(x-mean)/sqrt(variance+eps) + bias.
	BatchNormInference(y, x, scale, bias, mean, variance *Tensor, eps float32) error
	// BatchNormTraining normalises with the batch statistics, writes the
	// batch mean and 1/sqrt(var+eps) to saveMean/saveInvStd (each (C)), and
	// updates the running statistics the ONNX way:
	// running = running*momentum + batch*(1-momentum), using the unbiased
	// batch variance for runVar.
	BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *Tensor, eps, momentum float32) error
	// BatchNormBackward writes dx, dscale, dbias (any may be nil) for the
	// training-mode forward that saved saveMean/saveInvStd.
	BatchNormBackward(dx, dscale, dbias, dy, x, scale, saveMean, saveInvStd *Tensor) error
}

// ActivationOps are element-wise functions of one tensor.
type ActivationOps interface {
	// Activation writes y = f(x); y and x may be the same tensor.
	Activation(y, x *Tensor, a Act) error
	// ActivationBackward writes dx = dy * f'(x). It is given both x and
	// y = f(x) (either may be used).
	ActivationBackward(dx, dy, x, y *Tensor, a Act) error
	// Dropout writes y = x*mask/(1-ratio) and the 0/1 mask, drawn from a
	// generator seeded with seed (the same seed gives the same mask).
	Dropout(y, mask, x *Tensor, ratio float32, seed uint64) error
	// DropoutBackward writes dx = dy*mask/(1-ratio).
	DropoutBackward(dx, dy, mask *Tensor, ratio float32) error
}

// ElementwiseOps are binary element-wise ops with NumPy broadcasting and
// BLAS-1 style updates.
type ElementwiseOps interface {
	// Binary writes c = a op b, with c's shape the broadcast of a and b.
	Binary(c, a, b *Tensor, op BinaryOp) error
	// BinaryBackward writes da and db (either may be nil), summing over the
	// dimensions each operand was broadcast along.
	BinaryBackward(da, db, dc, a, b *Tensor, op BinaryOp) error
	// Axpy does y += alpha*x (same number of elements).
	Axpy(y *Tensor, alpha float32, x *Tensor) error
	// Scale does y *= alpha.
	Scale(y *Tensor, alpha float32) error
}

// PoolOps are 2-D pooling in NCHW layout.
type PoolOps interface {
	Pool2D(y, x *Tensor, p PoolParams) error
	// Pool2DBackward writes dx from dy; max pooling routes each gradient to
	// the first maximum of its window (as PyTorch and ONNX Runtime do).
	Pool2DBackward(dx, dy, x, y *Tensor, p PoolParams) error
	// GlobalPool reduces H and W: y is (N,C,1,1).
	GlobalPool(y, x *Tensor, kind PoolKind) error
	GlobalPoolBackward(dx, dy, x, y *Tensor, kind PoolKind) error
}

// LayoutOps move data without arithmetic (or with interpolation, Resize).
type LayoutOps interface {
	// Concat joins xs along axis into y.
	Concat(y *Tensor, xs []*Tensor, axis int) error
	// Split cuts x along axis into ys (their extents along axis add up).
	Split(ys []*Tensor, x *Tensor, axis int) error
	Slice(y, x *Tensor, p SliceParams) error
	// SliceBackward writes dx (zero outside the slice) from dy.
	SliceBackward(dx, dy *Tensor, p SliceParams) error
	Pad(y, x *Tensor, p PadParams) error
	PadBackward(dx, dy *Tensor, p PadParams) error
	Resize(y, x *Tensor, p ResizeParams) error
	ResizeBackward(dx, dy *Tensor, p ResizeParams) error
	DepthToSpace(y, x *Tensor, p DepthToSpaceParams) error
	DepthToSpaceBackward(dx, dy *Tensor, p DepthToSpaceParams) error
	// Transpose permutes x's axes: y.Shape[i] == x.Shape[perm[i]]. Its
	// backward is Transpose with InversePerm(perm).
	Transpose(y, x *Tensor, perm []int) error
	// BroadcastTo writes x broadcast (NumPy rules) to y's shape.
	BroadcastTo(y, x *Tensor) error
}

// ReduceOps reduce along axes and normalise along one.
type ReduceOps interface {
	// Softmax (log=false) or LogSoftmax (log=true) along axis.
	Softmax(y, x *Tensor, axis int, log bool) error
	// SoftmaxBackward uses the forward output y.
	SoftmaxBackward(dx, dy, y *Tensor, axis int, log bool) error
	// ReduceSum and ReduceMean reduce x over axes (sorted, non-negative);
	// y has x's shape with those axes set to 1 (keepdims form) or removed:
	// only y's element count matters.
	ReduceSum(y, x *Tensor, axes []int) error
	ReduceMean(y, x *Tensor, axes []int) error
	// ArgMax writes the index (as float32) of the first maximum along axis;
	// y has x's shape with that axis removed or set to 1.
	ArgMax(y, x *Tensor, axis int) error
}

// LossOps compute a scalar loss (into a 1-element tensor, so a device
// backend need not copy to the host) and its gradient. weight, when not nil,
// is a per-sample weight of shape (N): the loss is the weighted mean
// sum_i w_i*l_i / sum_i w_i (counting only non-ignored elements). The
// backward ops write dx = scale * dLoss/dx.
type LossOps interface {
	// BCEWithLogits: x and target have the same shape (N,...); the mean
	// over all elements of -[t*log(sigmoid(x)) + (1-t)*log(1-sigmoid(x))],
	// computed stably.
	BCEWithLogits(loss, x, target, weight *Tensor) error
	BCEWithLogitsBackward(dx, x, target, weight *Tensor, scale float32) error
	// CrossEntropy: x is (N,C) or (N,C,H,W) logits, target is (N) or
	// (N,H,W) class ids stored as float32; elements whose target equals
	// ignoreIndex (use -1 for none) do not count.
	CrossEntropy(loss, x, target, weight *Tensor, ignoreIndex int) error
	CrossEntropyBackward(dx, x, target, weight *Tensor, ignoreIndex int, scale float32) error
	// MSE is the mean of (x-target)^2 over all elements (MSELossFlat).
	MSE(loss, x, target, weight *Tensor) error
	MSEBackward(dx, x, target, weight *Tensor, scale float32) error
}

// LabelSmoothingOps is cross-entropy against smoothed targets, (1-eps) on
// the true class plus eps spread evenly over all C classes (fastai's
// LabelSmoothingCrossEntropy); eps 0 is CrossEntropy. A backend that lacks
// it cannot train with label smoothing (the CPU backend has it).
type LabelSmoothingOps interface {
	CrossEntropySmooth(loss, x, target, weight *Tensor, ignoreIndex int, eps float32) error
	CrossEntropySmoothBackward(dx, x, target, weight *Tensor, ignoreIndex int, eps, scale float32) error
}

// InputOps turn camera frames into model inputs.
type InputOps interface {
	// NormalizeU8 converts N frames of uint8 pixels in HWC order (as OpenCV
	// gives them: BGR for 3 channels) into y, a (N,C,H,W) float tensor,
	// y = (v/255 - mean[c]) / std[c], in one pass. With p.SwapRB the
	// channel order is reversed (BGR in, RGB out).
	NormalizeU8(y *Tensor, src []byte, p NormalizeParams) error
}

// OptimOps are in-place optimiser steps on one parameter tensor.
type OptimOps interface {
	// SGDStep: v = momentum*v + (g + wd*p); p -= lr*v (PyTorch SGD with
	// momentum and L2 weight decay; v may be nil when momentum is 0).
	SGDStep(param, grad, velocity *Tensor, p SGDParams) error
	// AdamWStep: decoupled weight decay p -= lr*wd*p, then Adam with bias
	// correction at step p.Step (1-based).
	AdamWStep(param, grad, m, v *Tensor, p AdamWParams) error
}

// BLASCore is the OpenBLAS kernel set b's GEMMs run on, for backends
// that use OpenBLAS (the CPU backend: "SkylakeX", "Haswell", ...), else
// "". Rates measured on a CPU backend depend on it.
func BLASCore(b Backend) string {
	if c, ok := b.(interface{ BLASCore() string }); ok {
		return c.BLASCore()
	}
	return ""
}
