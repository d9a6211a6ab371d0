// Package graph is Vireo's ONNX-shaped model graph: the IR (nodes with an op
// type, attributes and named inputs/outputs, plus initializers), topological
// sorting, shape inference, an executor that plans and reuses buffers on a
// kernels.Backend, inference-time folding (Conv+BatchNorm(+Relu)), and
// reverse-mode autodiff that yields parameter gradients for training.
package graph
