// Package cpu is Vireo's CPU backend: kernels.Backend in Go, with matrix
// products through OpenBLAS (cgo, cblas_sgemm).
//
// Threads: a CPU backend runs at most Threads threads of compute at once.
// OpenBLAS is set to one thread (openblas_set_num_threads(1), process-wide)
// and the backend parallelises itself, splitting GEMMs and loops over a pool
// of Threads-1 worker goroutines plus the calling goroutine, so OpenBLAS
// threads and goroutines together never exceed Threads (GOMAXPROCS by
// default). The pool is owned by the backend: Close joins it.
//
// Allocations: the inference kernels allocate nothing in the steady state.
// Each op's geometry (output shapes, conv/pool/broadcast/concat plans) is
// computed once per distinct shapes and params and kept, read-only, in the
// backend's plan caches (bounded; errors are never cached); loop bodies
// reach the workers as structs copied into pooled jobs (parallelFor,
// dynamicFor), not as closures; scratch buffers come from the backend's
// free lists per size class. Training-only kernels may still allocate.
//
// Every optimised kernel has a plain reference loop in its comment (or in
// kernelstest) that it must equal within tolerance.
//
// Determinism: for a given Threads, every kernel returns the same bits on
// every call. Reductions across threads (the conv weight gradient's sum
// over images) use a split fixed by the shapes and add the partial sums
// in a fixed order; per-channel reductions (BatchNorm) and element-wise
// loops run each output in one fixed order wherever the thread boundary
// falls. So a training run on 2 threads is reproducible bit for bit.
package cpu
