// Package graph is Vireo's ONNX-shaped model graph: the IR (nodes with an op
// type, attributes and named inputs/outputs, plus initializers), topological
// sorting, shape inference, an executor that plans and reuses buffers on a
// kernels.Backend, inference-time folding (Conv+BatchNorm(+Relu)), and
// reverse-mode autodiff that yields parameter gradients for training.
//
// # Compiling
//
// Compile turns a Graph into a Program for one backend and one set of input
// shapes. Everything that can be decided once is decided there:
//
//   - Sort orders the nodes (the file's order is never trusted).
//   - Every value gets a static shape. Values computable from constants
//     and shapes (Constant, Shape, Gather, Cast, Unsqueeze, Squeeze,
//     Concat, Reshape, Flatten, Slice, arithmetic) are folded on the host,
//     so PyTorch's Shape->Gather->Concat->Reshape chains cost nothing.
//   - For inference, a BatchNormalization fed only by a Conv is folded
//     into the Conv's weights (FoldConvBatchNorm); activations whose input
//     dies at that node (the Relu after a folded Conv) run in place.
//   - Buffers are planned by liveness: a value's storage is released after
//     its last reader and reused (best fit) by later values. Reshape,
//     Flatten, Squeeze, Unsqueeze, Identity, inference Dropout and Cast are
//     views that share storage. Program.Stats reports planned vs naive
//     bytes.
//   - Each kernel's params are resolved from the attributes, and each node
//     becomes a closure over its tensors, so a steady-state Run allocates
//     nothing on the Go heap beyond what the kernels do.
//
// Errors name the node, its op and the attribute or shapes at fault and
// wrap ErrUnsupported, ErrInvalid, ErrMissing, ErrCycle or kernels.ErrShape;
// a malformed graph never panics.
//
// # Training
//
// With Options.Training, BatchNormalization normalises with batch
// statistics and updates its running-statistics initializers in place (ONNX
// momentum semantics), Dropout draws a new mask per Run, nothing is folded,
// and every activation is kept for Backward. Backward walks the steps in
// reverse and calls each op's backward kernel; the first contribution to a
// gradient overwrites it and later ones (values read more than once) go
// through a scratch buffer and Axpy, an order decided at compile time.
// Gradients flow only into values that depend on a trainable parameter (a
// float initializer in a differentiable input slot) or, with
// Options.InputGrads, on a graph input. SetFrozen freezes parameters
// (fastai's freeze): Backward then skips every kernel, or part of one,
// that only frozen parameters needed, such as a frozen body's weight
// gradients. Dropout's n-th Run draws mask n; SetRuns lets a recompiled
// program continue the sequence. SyncToGraph copies parameters and
// running statistics back into the Graph for saving.
//
// # Ownership
//
// A Program owns its backend tensors (Close frees them) and is not safe for
// concurrent use: Run's outputs and Backward's gradients live in buffers the
// next call overwrites. Compile never modifies the Graph it is given;
// SyncToGraph replaces entries of its Initializers map.
package graph
