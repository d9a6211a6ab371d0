package kernels

// FusedConvOps is an optional extension of a Backend for inference: a 2-D
// convolution with its epilogue (bias, a residual addition and an
// activation) applied while the output is still in cache, instead of a
// Conv2D, a Binary add and an Activation each sweeping the whole tensor.
// The graph compiler fuses Conv -> Add -> activation chains when the
// backend implements it (see graph.FuseConvEpilogues).
type FusedConvOps interface {
	// Conv2DFused computes
	//
	//	y = act((conv(x, w) + b) + res)
	//
	// with Conv2D's shapes; b and res (y's shape) may be nil, act.Kind may
	// be ActIdentity. y must not share storage with x or res.
	// FusedActOK says which activation kinds it takes.
	Conv2DFused(y, x, w, b, res *Tensor, p ConvParams, act Act) error
	// FusedActOK reports whether Conv2DFused takes activation kind k.
	FusedActOK(k ActKind) bool
}

// FusedAffineOps is implemented by a FusedConvOps backend whose
// Conv2DFused takes Act.Affine (a scalar scale and shift after the
// activation, computed act(x)*Scale + Shift, possibly as one fused
// multiply-add).
type FusedAffineOps interface {
	FusedAffineOK() bool
}

// FusedBNReluOps runs a training-mode BatchNormalization followed by Relu
// as one kernel each way: the Relu's own passes over the tensor (forward
// and backward) disappear into BatchNormalization's. The graph compiler
// fuses BatchNormalization -> Relu in training programs when the backend
// implements it (see graph.FuseBatchNormRelu).
type FusedBNReluOps interface {
	// BatchNormTrainingRelu is BatchNormTraining with y = Relu(y) (NaN
	// stays NaN, as Activation's Relu).
	BatchNormTrainingRelu(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *Tensor, eps, momentum float32) error
	// BatchNormBackwardRelu is BatchNormBackward of dy masked by y > 0
	// (y: BatchNormTrainingRelu's output), i.e. the backward of Relu then
	// of BatchNormalization.
	BatchNormBackwardRelu(dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd *Tensor) error
}
