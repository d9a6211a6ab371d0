// Shared helpers of Vireo's CUDA kernels (included by every .cu file).
// Sizes and integer parameters are 64-bit (long long) so every launch
// argument fills one 8-byte slot; float parameters are 4 bytes.
#pragma once

// NaN-propagating max and min, as Go's built-in max and min (fmaxf/fminf
// would drop the NaN).
__device__ __forceinline__ float gmax(float a, float b) {
    if (a != a || b != b) return a + b;
    return a > b ? a : b;
}
__device__ __forceinline__ float gmin(float a, float b) {
    if (a != a || b != b) return a + b;
    return a < b ? a : b;
}

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
