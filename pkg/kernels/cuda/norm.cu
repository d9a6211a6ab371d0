// Batch normalisation in inference mode over (N,C,S): one block per
// (n,c) plane (grid-stride over planes), coefficients a = scale/sqrt(var+eps)
// (the square root in double, as the CPU backend) and b = bias - mean*a.
#include "common.cuh"

extern "C" __global__ void bn_infer(float *y, const float *x, const float *scale,
                                    const float *bias, const float *mean, const float *var,
                                    float eps, long long planes, long long C, long long S) {
    for (long long p = blockIdx.x; p < planes; p += gridDim.x) {
        long long k = p % C;
        float a = scale[k] / (float)sqrt((double)var[k] + (double)eps);
        float b = bias[k] - mean[k] * a;
        const float *xs = x + p * S;
        float *ys = y + p * S;
        for (long long i = threadIdx.x; i < S; i += blockDim.x) ys[i] = xs[i] * a + b;
    }
}
