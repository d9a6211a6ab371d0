// Package cuda is Vireo's NVIDIA GPU backend: a kernels.Backend whose
// tensors live in device memory and whose ops are the project's own CUDA C
// kernels (the *.cu files here), compiled to PTX for compute_80 and
// compute_90 by `make ptx` (scripts/gen-ptx.sh, nvcc 11.8), committed under
// ptx/ and embedded in the binary; the driver JIT-compiles the PTX for the
// GPU it finds. It uses the CUDA driver API only, through gorgonia.org/cu
// (no cuBLAS, no cuDNN, no runtime library).
//
// Everything but this file, the generated ptx_hash.go and the PTX
// freshness test is built only with the `cuda` build tag: gorgonia.org/cu's
// package init calls cuInit and exits the process when there is no driver
// or no GPU, so the default (CPU) build must never import it. A binary
// built with -tags cuda is the GPU variant and needs libcuda.so.1 and a
// device to start at all. pkg/backend registers "cuda" from a file built
// with the tag.
//
// One owner goroutine, locked to its OS thread, holds the CUDA context:
// every driver call (allocation, copies, module loading, launches, sync)
// runs on it, submitted by Backend methods that wait for the result.
// Kernels launch on the default stream in submission order; Download and
// Sync wait for them, and a kernel's asynchronous error surfaces there.
//
// Status (honest): the kernels that existed on 2026-11-30 passed the
// conformance suite (kernelstest) on an NVIDIA H200: memory (alloc,
// free, upload, download, fill, copy), NormalizeU8, activations forward
// and backward, Dropout, element-wise Binary with NumPy broadcasting,
// Axpy, Scale, Gemm/MatMul (tiled FP32 SGEMM, batched with broadcast
// batch dims), BatchNormInference, Softmax/LogSoftmax forward and
// backward, ArgMax. Added later that day for inference of the bundled
// models (conv.cu, pool.cu, layout.cu), and run on the H200 in a session
// of their own: Conv2D (an implicit-GEMM kernel, or a direct one for few
// outputs per group such as depthwise), Conv2DBackward,
// ConvTranspose2D and its backward (direct kernels), Pool2D and
// GlobalPool forward and backward, Concat, Split, DepthToSpace,
// Transpose, BroadcastTo, Slice, Pad and their backwards: the conv, pool
// and layout conformance subtests passed except Resize's. Conv2DFused
// (FusedConvOps with FusedAffineOps: bias, residual, activation and affine
// in the implicit GEMM's epilogue) has no conformance subtest; the
// graph uses it for every model, and pkg/backend's TestModelParity
// (CPU vs CUDA on the four bundled models) passed within 2e-6 of each
// output's scale. Still ErrUnsupported: BatchNormTraining/Backward,
// BinaryBackward, MatMulBackward, Resize and its backward,
// ReduceSum/ReduceMean, the losses and the optimiser steps (so no training
// on CUDA). Every such op returns an error wrapping kernels.ErrUnsupported
// that names the op, so a model that needs one fails clearly rather than
// silently falling back to the CPU.
package cuda
