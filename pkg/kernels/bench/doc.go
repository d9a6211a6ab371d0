// Package bench is the kernel benchmark behind `vireo bench kernels --json`:
// it times the convolutions a vision model spends its time in (3x3, 1x1,
// strided, depthwise, and the backward of a 3x3) on any kernels.Backend and
// compares each with the same backend's Gemm on the equivalent GEMM shape
// (M, K, N), measured in the same run.
//
// Machines are shared and noisy, so a lone absolute time means little: each
// case alternates the conv and its GEMM rep by rep, discards warm-up runs
// and reports the median of each, and the ratio of the two rates is the
// number to read. Depthwise convolutions are memory-bound (9 multiply-adds
// per value read), so their row also reports bytes per second against a
// same-sized Copy, the memory-bound ceiling.
//
// Kernels writes one JSON object per case and line; it owns no goroutines
// and allocates its tensors through the backend (freed before it returns).
package bench
