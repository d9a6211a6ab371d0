// Package kernelstest is the conformance suite every kernels.Backend must
// pass: Run(t, backend) checks each op family with hand-checked small
// cases, random cases against the plain reference loops in this package
// (direct convolution, never the GEMM path), finite-difference gradient
// checks of every backward, and guard values around outputs that catch
// out-of-bounds writes. Tolerances are abs + rel*|ref| (see Tol).
//
// The CPU backend runs it in package kernels/cpu's tests; the CUDA backend
// in kernels/cuda's (build tag cuda). Tests that need nothing but a Backend
// live here, so both backends are held to the same cases.
package kernelstest
