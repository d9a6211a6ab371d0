// A deterministic block reduction for the training kernels: every thread
// passes its partial sum and gets the block's total, added in a fixed
// tree whose shape depends only on blockDim.x (a power of two <= 256), so
// a result never depends on scheduling (no atomics).
#pragma once

#define SUM_THREADS 256

__device__ __forceinline__ double block_sum(double v, double *sh) {
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}
