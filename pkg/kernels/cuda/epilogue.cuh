// The fused convolution epilogue shared by conv.cu's implicit GEMM and
// tensorcore.cu's: conv_epi applies the activation, then the affine.
#pragma once
#include "common.cuh"

// The activation kinds of kernels.ActKind that the epilogue takes (the
// CPU backend's fused set), with activation.cu's formulas.
enum { ActIdentity, ActRelu, ActLeakyRelu, ActSigmoid, ActHardSigmoid, ActHardSwish,
       ActTanh, ActClip };

__device__ __forceinline__ float epi_sigmoid(float v) {
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

// epilogue: ((acc + bias) + res), the activation, then the affine.
__device__ __forceinline__ float conv_epi(float v, int act, float alpha, float beta, int affine,
                                          float scale, float shift) {
    switch (act) {
    case ActRelu: v = (v > 0.0f || v != v) ? v : 0.0f; break;
    case ActLeakyRelu: v = v < 0 ? v * alpha : v; break;
    case ActSigmoid: v = epi_sigmoid(v); break;
    case ActHardSigmoid: v = gmax(0.0f, gmin(1.0f, alpha * v + beta)); break;
    case ActHardSwish: v = v * gmax(0.0f, gmin(1.0f, v / 6.0f + 0.5f)); break;
    case ActClip: v = gmin(gmax(v, alpha), beta); break;
    default: break;
    }
    if (affine) v = v * scale + shift;
    return v;
}
