// Softmax / LogSoftmax (forward and backward) and ArgMax over the
// (outer, n, inner) view of a tensor around one axis: one thread per
// (outer, inner) column, walking the n values inner apart (adjacent
// threads read adjacent addresses when inner > 1). Sums in float32 in
// index order, as the CPU backend.
#include "common.cuh"

extern "C" __global__ void softmax_fwd(float *y, const float *x, long long outer, long long n,
                                       long long inner, long long logsm) {
    GRID_STRIDE(u, outer * inner) {
        long long o = u / inner, j = u % inner;
        const float *xs = x + o * n * inner + j;
        float *ys = y + o * n * inner + j;
        float m = xs[0];
        for (long long k = 1; k < n; k++) m = gmax(m, xs[k * inner]);
        float s = 0.0f;
        if (logsm) {
            for (long long k = 0; k < n; k++) s += expf(xs[k * inner] - m);
            float ls = logf(s);
            for (long long k = 0; k < n; k++) ys[k * inner] = (xs[k * inner] - m) - ls;
        } else {
            for (long long k = 0; k < n; k++) {
                float e = expf(xs[k * inner] - m);
                ys[k * inner] = e;
                s += e;
            }
            float inv = 1.0f / s;
            for (long long k = 0; k < n; k++) ys[k * inner] *= inv;
        }
    }
}

// softmax:    dx[k] = y[k] * (dy[k] - sum_j dy[j]*y[j])
// logsoftmax: dx[k] = dy[k] - exp(y[k]) * sum_j dy[j]
extern "C" __global__ void softmax_bwd(float *dx, const float *dy, const float *y, long long outer,
                                       long long n, long long inner, long long logsm) {
    GRID_STRIDE(u, outer * inner) {
        long long o = u / inner, j = u % inner, base = o * n * inner + j;
        float s = 0.0f;
        if (logsm) {
            for (long long k = 0; k < n; k++) s += dy[base + k * inner];
            for (long long k = 0; k < n; k++) {
                long long q = base + k * inner;
                dx[q] = dy[q] - expf(y[q]) * s;
            }
        } else {
            for (long long k = 0; k < n; k++) s += dy[base + k * inner] * y[base + k * inner];
            for (long long k = 0; k < n; k++) {
                long long q = base + k * inner;
                dx[q] = y[q] * (dy[q] - s);
            }
        }
    }
}

// Index (as float) of the first maximum; a NaN counts as larger than any
// number (NumPy), the first NaN wins.
extern "C" __global__ void argmax(float *y, const float *x, long long outer, long long n,
                                  long long inner) {
    GRID_STRIDE(u, outer * inner) {
        long long o = u / inner, j = u % inner;
        const float *xs = x + o * n * inner + j;
        float b = xs[0];
        long long bi = 0;
        for (long long k = 1; k < n; k++) {
            float v = xs[k * inner];
            if (v > b || (v != v && b == b)) { b = v; bi = k; }
        }
        y[u] = (float)bi;
    }
}
