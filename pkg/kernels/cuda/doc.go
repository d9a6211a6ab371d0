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
// Status (honest): on an NVIDIA H200 on 2026-11-30 the whole
// conformance suite (kernelstest) passed, 82 subtests and 0 failures
// (with the optional label-smoothed cross-entropy and BatchNorm+Relu):
// memory, NormalizeU8, activations forward and backward, Dropout,
// Binary with NumPy broadcasting and BinaryBackward, Axpy, Scale,
// Gemm/MatMul (tiled FP32 SGEMM) and MatMulBackward, BatchNormInference,
// BatchNormTraining and BatchNormBackward, Softmax/LogSoftmax,
// ReduceSum/ReduceMean, ArgMax, Conv2D (implicit GEMM, or direct for
// depthwise), Conv2DBackward, ConvTranspose2D and its backward, Pool2D
// and GlobalPool forward and backward, Concat, Split, DepthToSpace,
// Transpose, BroadcastTo, Slice, Pad, Resize (nearest and bilinear, every
// coordinate mode) and their backwards, the losses (BCEWithLogits,
// CrossEntropy, MSE, with per-sample weights and an ignore index) and
// their gradients, SGDStep and AdamWStep. Every kernels.Backend op has a
// CUDA kernel; no op returns ErrUnsupported for lack of one. Sums that
// the CPU does in float64 (BN statistics and gradient sums, reductions
// over axes and broadcast axes, the losses) are in double with a fixed
// block tree (no atomics, deterministic). Loss weights and cross-entropy
// targets are downloaded and validated on the host before any launch.
//
// Not covered by the conformance suite: Conv2DFused (FusedConvOps; the
// graph uses it for every model: pkg/backend's TestModelParity, CPU vs
// CUDA on the four bundled models, passed within 2e-6 of each output's
// scale). pkg/backend's TestTrainStepParity (resnet18@0.125, three SGD
// steps, batch 8 at 28x28) on the H200: the first step's loss matched
// the CPU's within 1.8e-7 and every one of the 68 parameters' first-step
// gradients within 7.1e-6 of its scale (both asserted); later steps
// drift (2e-5, then 8e-3) as this small-batch model amplifies rounding
// (the CPU backend differs from itself across machines by 5e-6, then
// 3e-4).
//
// # Math modes (tensor cores)
//
// Config.Math or SetMath (kernels.MathModer) picks fp32 (the default),
// fp16 or bf16 for the GEMM-shaped ops: Gemm, MatMul, MatMulBackward and
// the implicit-GEMM Conv2D/Conv2DFused. In fp16/bf16 they run
// tensorcore.cu: WMMA 16x16x16 with FP32 accumulators, each operand
// element read from the FP32 tensor and rounded to half or bfloat16 into
// shared memory, the epilogue (alpha/beta, bias, residual, activation,
// affine) in FP32. Tensors stay FP32 in memory (weights are FP32 masters);
// the direct depthwise convolution, Conv2DBackward and every other op
// stay FP32. The mode is read when an op is issued. fp16 overflows to Inf
// beyond 65504; bf16 keeps FP32's range, which is why train's
// MixedPrecision uses bf16 with no loss scaling.
//
// Measured on the H200 (2026-11-30): TestTensorCoreMath (every Gemm
// transpose, batched MatMul and its backward, grouped/strided/dilated
// convolutions with the fused epilogue) within 3.0e-4 of the output's
// scale of FP32 in fp16 and 2.0e-3 in bf16 (asserted 1e-2 and 2e-2).
// GEMM at 4096^3: 49.7 TFLOP/s fp16 and 45.0 bf16 against 9.8 for the
// FP32 SGEMM: ~6% of the ~790 TFLOP/s a cuBLAS bf16 product reaches on
// this GPU. This is a first, correct kernel, not a tuned one: scalar
// FP32 loads converted on the way into shared memory, one shared-memory
// stage (the next K step prefetched into registers), WMMA rather than
// Hopper's wgmma, and some register spills in the GEMM variants. The
// bundled models (pkg/backend TestModelParity) stay within 2.0e-3 of the
// CPU's output scale in fp16 and 4.9e-2 in bf16 (FP32: 1.8e-6), and run
// at about the FP32 rate (fp32/fp16/bf16 images/s at batch 16: fashion
// 13557/12525/12485, megamind-face 8142/8038/7888, fashion-tiles
// 9140/8669/8482, vtest-people 3693/4147/4001): their layers are too
// narrow for the GEMMs to dominate. A bf16 training step of resnet18@0.125
// (TestTrainStepParity) matched the CPU's first-step loss within 1.3e-3
// and its gradients within 0.27 in relative L2.
package cuda
