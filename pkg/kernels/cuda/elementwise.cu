// Element-wise binary ops with NumPy broadcasting, Axpy and Scale.
#include "common.cuh"

enum { OpAdd, OpSub, OpMul, OpDiv, OpPow, OpMax, OpMin };

__device__ __forceinline__ float binop(int op, float x, float y) {
    switch (op) {
    case OpAdd: return x + y;
    case OpSub: return x - y;
    case OpMul: return x * y;
    case OpDiv: return x / y;
    case OpPow: return (float)pow((double)x, (double)y);
    case OpMax: return gmax(x, y);
    default: return gmin(x, y);
    }
}

// Same shapes: c[i] = a[i] op b[i].
extern "C" __global__ void binary_same(float *c, const float *a, const float *b, long long n,
                                       long long op) {
    GRID_STRIDE(i, n) { c[i] = binop((int)op, a[i], b[i]); }
}

// Broadcast: meta holds rank extents of c, then rank element strides of a
// and of b (0 along the axes an operand is broadcast along), precomputed
// on the host.
extern "C" __global__ void binary_bcast(float *c, const float *a, const float *b, long long n,
                                        long long op, const long long *meta, long long rank) {
    GRID_STRIDE(i, n) {
        long long r = i, ia = 0, ib = 0;
        for (long long d = rank - 1; d >= 0; d--) {
            long long ext = meta[d];
            long long q = r % ext;
            r /= ext;
            ia += q * meta[rank + d];
            ib += q * meta[2 * rank + d];
        }
        c[i] = binop((int)op, a[ia], b[ib]);
    }
}

extern "C" __global__ void axpy(float *y, const float *x, long long n, float alpha) {
    GRID_STRIDE(i, n) { y[i] += alpha * x[i]; }
}

extern "C" __global__ void scale(float *y, long long n, float alpha) {
    GRID_STRIDE(i, n) { y[i] *= alpha; }
}
