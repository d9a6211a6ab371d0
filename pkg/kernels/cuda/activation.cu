// Activations forward and backward, and dropout. The kinds and the
// conventions at kinks follow kernels.ActKind and the CPU backend
// (PyTorch's autograd): Relu'(0)=0, LeakyRelu' is Alpha at 0, HardSigmoid'
// is 0 at its ends, HardSwish' is -0.5 at -3 and 1.5 at 3, Clip passes at
// both bounds, Abs'(0)=0. NaN propagates through every kind.
#include "common.cuh"

enum {
    ActIdentity, ActRelu, ActLeakyRelu, ActSigmoid, ActHardSigmoid, ActHardSwish,
    ActTanh, ActClip, ActExp, ActLog, ActSqrt, ActNeg, ActAbs
};

__device__ __forceinline__ float sigmoidf(float v) {
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

extern "C" __global__ void act_fwd(float *y, const float *x, long long n, long long kind,
                                   float alpha, float beta) {
    GRID_STRIDE(i, n) {
        float v = x[i], r;
        switch ((int)kind) {
        case ActRelu: r = (v > 0.0f || v != v) ? v : 0.0f; break;
        case ActLeakyRelu: r = v < 0 ? v * alpha : v; break;
        case ActSigmoid: r = sigmoidf(v); break;
        case ActHardSigmoid: r = gmax(0.0f, gmin(1.0f, alpha * v + beta)); break;
        case ActHardSwish: r = v * gmax(0.0f, gmin(1.0f, v / 6.0f + 0.5f)); break;
        case ActTanh: r = tanhf(v); break;
        case ActClip: r = gmin(gmax(v, alpha), beta); break;
        case ActExp: r = expf(v); break;
        case ActLog: r = logf(v); break;
        case ActSqrt: r = sqrtf(v); break;
        case ActNeg: r = -v; break;
        case ActAbs: r = fabsf(v); break;
        default: r = v;
        }
        y[i] = r;
    }
}

extern "C" __global__ void act_bwd(float *dx, const float *dy, const float *x, const float *y,
                                   long long n, long long kind, float alpha, float beta) {
    GRID_STRIDE(i, n) {
        float g = dy[i], v = x[i], o;
        switch ((int)kind) {
        case ActRelu: o = v > 0.0f ? g : 0.0f; break;
        case ActLeakyRelu: o = v > 0.0f ? g : alpha * g; break;
        case ActSigmoid: { float s = y[i]; o = g * s * (1 - s); } break;
        case ActHardSigmoid: { float u = alpha * v + beta; o = (u > 0 && u < 1) ? g * alpha : 0.0f; } break;
        case ActHardSwish: o = v < -3.0f ? 0.0f : (v <= 3.0f ? g * (v / 3.0f + 0.5f) : g); break;
        case ActTanh: { float t = y[i]; o = g * (1 - t * t); } break;
        case ActClip: o = (v >= alpha && v <= beta) ? g : 0.0f; break;
        case ActExp: o = g * y[i]; break;
        case ActLog: o = g / v; break;
        case ActSqrt: o = g * 0.5f / y[i]; break;
        case ActNeg: o = -g; break;
        case ActAbs: o = v > 0 ? g : (v < 0 ? -g : 0.0f); break;
        default: o = g;
        }
        dx[i] = o;
    }
}

// The CPU backend's SplitMix64 finaliser: the mask of element i is a pure
// function of (seed, i), so both backends draw the same mask.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// thresh = ratio * 2^53 (0 keeps everything); keep = 1/(1-ratio) in float32.
extern "C" __global__ void dropout_fwd(float *y, float *mask, const float *x, long long n,
                                       unsigned long long seed, unsigned long long thresh,
                                       float keep) {
    GRID_STRIDE(i, n) {
        if (thresh > 0 && (mix64(seed + (unsigned long long)i * 0x9E3779B97F4A7C15ULL) >> 11) < thresh) {
            mask[i] = 0.0f;
            y[i] = 0.0f;
        } else {
            mask[i] = 1.0f;
            y[i] = x[i] * keep;
        }
    }
}

extern "C" __global__ void dropout_bwd(float *dx, const float *dy, const float *mask, long long n,
                                       float keep) {
    GRID_STRIDE(i, n) { dx[i] = dy[i] * mask[i] * keep; }
}
