// Package kernels holds Vireo's tensors and the Backend interface that every
// compute device implements: the forward and backward kernels of the ops the
// model graph uses, the losses, the optimiser steps and the fused input op.
//
// A Tensor is a dense, contiguous, row-major float32 array (NCHW for images).
// Its memory belongs to the Backend that allocated it: the CPU backend keeps it
// in Tensor.Data, a device backend in Tensor.Dev. Shapes are checked at the
// boundary of every op; a mismatch is an error wrapping ErrShape that says
// got and want, never a panic.
//
// Conventions every backend follows (the conformance suite in kernelstest
// checks them):
//   - Ops write into caller-allocated outputs; they never allocate outputs.
//   - Backward ops overwrite the gradients they are given; a nil gradient
//     means "not needed" and is skipped. Accumulation across uses of a tensor
//     is the graph's job.
//   - Ops are safe to call from one goroutine at a time per output; a backend
//     parallelises inside an op and never runs more threads than it was
//     configured with (CPU: goroutines plus OpenBLAS threads <= Threads).
//
// The per-family param structs (ConvParams, PoolParams, ...) use ONNX's
// attribute meanings, and each family has plain shape functions (for shape
// inference in the graph) next to its params.
package kernels
