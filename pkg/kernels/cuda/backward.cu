// Training kernels of the linear-algebra side: sums over axes (ReduceSum,
// ReduceMean and BinaryBackward's reduction over broadcast axes) and batch
// normalisation in training mode, forward and backward. Every sum is in
// double, per output either serially by one thread or by one block in a
// fixed tree (blocksum.cuh): deterministic, no atomics.
#include "common.cuh"
#include "blocksum.cuh"

enum { OpAdd, OpSub, OpMul, OpDiv, OpPow, OpMax, OpMin };

// grad_term is the summand of sum_axes: s0[o0] itself (op < 0), or
// dc*(d c/d a) (which 0) or dc*(d c/d b) (which 1) of c = a op b at
// (a = s1[o1], b = s2[o2]), dc = s0[o0], in float32 as the CPU backend's
// binGrads (Max/Min split a tie evenly, Pow as PyTorch).
__device__ __forceinline__ float grad_term(long long op, long long which, const float *s0,
                                           const float *s1, const float *s2, long long o0,
                                           long long o1, long long o2) {
    float dc = s0[o0];
    if (op < 0) return dc;
    float x = s1[o1], y = s2[o2], g;
    switch (op) {
    case OpAdd: g = 1.0f; break;
    case OpSub: g = which ? -1.0f : 1.0f; break;
    case OpMul: g = which ? x : y; break;
    case OpDiv: g = which ? -x / __fmul_rn(y, y) : 1.0f / y; break;
    case OpPow:
        if (which == 0) {
            g = y != 0.0f ? __fmul_rn(y, (float)pow((double)x, (double)(y - 1.0f))) : 0.0f;
        } else {
            float z = (float)pow((double)x, (double)y);
            g = (x != 0.0f || y < 0.0f) ? __fmul_rn(z, (float)log((double)x)) : 0.0f;
        }
        break;
    case OpMax:
        g = x > y ? (which ? 0.0f : 1.0f) : (y > x ? (which ? 1.0f : 0.0f) : 0.5f);
        break;
    default:
        g = x < y ? (which ? 0.0f : 1.0f) : (y < x ? (which ? 1.0f : 0.0f) : 0.5f);
    }
    return __fmul_rn(dc, g);
}

// sum_axes: dst[o] = scale * sum over the reduced index r < R of
// grad_term at (o, r), for o < nout. meta (int64) holds rk kept extents
// and their element strides into s0, s1, s2 (rk each), then rr reduced
// extents and their strides into s0, s1, s2; o and r are row-major over
// them. serial != 0: one thread per output (small R); else one block per
// output (blockDim.x == SUM_THREADS).
extern "C" __global__ void sum_axes(float *dst, const float *s0, const float *s1, const float *s2,
                                    long long nout, long long R, const long long *meta,
                                    long long rk, long long rr, long long op, long long which,
                                    double scale, long long serial) {
    __shared__ double sh[SUM_THREADS];
    const long long *kext = meta, *ks0 = meta + rk, *ks1 = meta + 2 * rk, *ks2 = meta + 3 * rk;
    const long long *rext = meta + 4 * rk, *rs0 = rext + rr, *rs1 = rext + 2 * rr,
                    *rs2 = rext + 3 * rr;
    long long first = serial ? (long long)blockIdx.x * blockDim.x + threadIdx.x : blockIdx.x;
    long long step = serial ? (long long)blockDim.x * gridDim.x : gridDim.x;
    for (long long o = first; o < nout; o += step) {
        long long q = o, b0 = 0, b1 = 0, b2 = 0;
        for (long long d = rk - 1; d >= 0; d--) {
            long long e = kext[d], i = q % e;
            q /= e;
            b0 += i * ks0[d];
            b1 += i * ks1[d];
            b2 += i * ks2[d];
        }
        double acc = 0.0;
        for (long long r = serial ? 0 : threadIdx.x; r < R; r += serial ? 1 : blockDim.x) {
            long long q2 = r, o0 = b0, o1 = b1, o2 = b2;
            for (long long d = rr - 1; d >= 0; d--) {
                long long e = rext[d], i = q2 % e;
                q2 /= e;
                o0 += i * rs0[d];
                o1 += i * rs1[d];
                o2 += i * rs2[d];
            }
            acc += (double)grad_term(op, which, s0, s1, s2, o0, o1, o2);
        }
        if (!serial) acc = block_sum(acc, sh);
        if (serial || threadIdx.x == 0) dst[o] = (float)(scale * acc);
    }
}

// The channel sums of batch normalisation over x (N,C,S): channel k's
// M = N*S values are x[(n*C+k)*S + i].
__device__ __forceinline__ long long bn_at(long long j, long long k, long long C, long long S) {
    long long n = j / S;
    return (n * C + k) * S + (j - n * S);
}

// bn_train: one block per channel (SUM_THREADS threads). mean and the
// biased variance in double, two passes (as the CPU backend); saves mean
// and 1/sqrt(var+eps), updates the running statistics (unbiased variance)
// as running*momentum + batch*(1-momentum) in float32, then
// y = x*a + b with a = scale*invstd, b = bias - mean*a (then Relu'd when
// relu != 0; NaN stays NaN). rmean and rvar may be null.
extern "C" __global__ void bn_train(float *y, const float *x, const float *scale,
                                    const float *bias, float *rmean, float *rvar, float *smean,
                                    float *sinv, float eps, float mom, long long N, long long C,
                                    long long S, long long relu) {
    __shared__ double sh[SUM_THREADS];
    const long long M = N * S;
    for (long long k = blockIdx.x; k < C; k += gridDim.x) {
        double s = 0.0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) s += (double)x[bn_at(j, k, C, S)];
        const double mean = block_sum(s, sh) / (double)M;
        s = 0.0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            double d = (double)x[bn_at(j, k, C, S)] - mean;
            s += d * d;
        }
        const double var = block_sum(s, sh) / (double)M;
        const float sm = (float)mean, si = (float)(1.0 / sqrt(var + (double)eps));
        if (threadIdx.x == 0) {
            smean[k] = sm;
            sinv[k] = si;
            const float om = 1.0f - mom;
            if (rmean) rmean[k] = __fadd_rn(__fmul_rn(rmean[k], mom), __fmul_rn(sm, om));
            if (rvar)
                rvar[k] = __fadd_rn(__fmul_rn(rvar[k], mom),
                                    __fmul_rn((float)(var * (double)M / (double)(M - 1)), om));
        }
        const float a = __fmul_rn(scale[k], si);
        const float b = __fsub_rn(bias[k], __fmul_rn(sm, a));
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            long long q = bn_at(j, k, C, S);
            float v = fmaf(x[q], a, b);
            y[q] = (relu && !(v > 0.0f || v != v)) ? 0.0f : v;
        }
    }
}

// bn_backward: one block per channel. With dy read as (y > 0 ? dy : 0)
// when y is not null (the fused Relu), mu = saved mean, inv = saved
// inverse std, in double:
//   sdy = sum dy, sdyx = inv * sum dy*(x-mu)
//   dbias = sdy, dscale = sdyx
//   dx = a*dy + b*x + c with a = scale*inv, b = -a*inv*sdyx/M,
//        c = -a*sdy/M - b*mu (rounded to float32 first)
// dx, dscale, dbias may be null.
extern "C" __global__ void bn_backward(float *dx, float *dscale, float *dbias, const float *dy,
                                       const float *y, const float *x, const float *scale,
                                       const float *smean, const float *sinv, long long N,
                                       long long C, long long S) {
    __shared__ double sh[SUM_THREADS];
    const long long M = N * S;
    for (long long k = blockIdx.x; k < C; k += gridDim.x) {
        const double mu = (double)smean[k], inv = (double)sinv[k];
        double s1 = 0.0, s2 = 0.0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            long long q = bn_at(j, k, C, S);
            double g = (double)((y && !(y[q] > 0.0f)) ? 0.0f : dy[q]);
            s1 += g;
            s2 += g * ((double)x[q] - mu);
        }
        const double sdy = block_sum(s1, sh);
        const double sdyx = block_sum(s2, sh) * inv;
        if (threadIdx.x == 0) {
            if (dbias) dbias[k] = (float)sdy;
            if (dscale) dscale[k] = (float)sdyx;
        }
        if (!dx) continue;
        const double a = (double)scale[k] * inv;
        const double bb = -a * inv * sdyx / (double)M;
        const double c0 = -a * sdy / (double)M - bb * mu;
        const float fa = (float)a, fb = (float)bb, fc = (float)c0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            long long q = bn_at(j, k, C, S);
            float g = (y && !(y[q] > 0.0f)) ? 0.0f : dy[q];
            dx[q] = fmaf(fa, g, fmaf(fb, x[q], fc));
        }
    }
}
