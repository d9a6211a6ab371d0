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
// Every optimised kernel has a plain reference loop in its comment (or in
// kernelstest) that it must equal within tolerance.
package cpu
