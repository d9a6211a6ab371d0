// Losses and optimiser steps. A loss is summed in double: each block of
// loss_part covers a fixed chunk of the elements and writes its partial
// sum, loss_finish adds the partials in a fixed tree and divides by the
// denominator (computed on the host, which validates targets and weights
// first). Deterministic: the chunking depends only on the sizes.
#include "common.cuh"
#include "blocksum.cuh"

enum { LossBCE, LossMSE };

// pw_elem is the per-element loss: BCE with logits in the stable form
// max(x,0) - x*t + log1p(exp(-|x|)), or the squared error.
__device__ __forceinline__ double pw_elem(long long kind, double x, double t) {
    if (kind == LossBCE) return fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
    return (x - t) * (x - t);
}

// loss_part: part[b] = sum over elements e of block b's chunk of
// w[e/inner] * pw_elem(x[e], t[e]) (w null: weight 1).
extern "C" __global__ void loss_part(double *part, const float *x, const float *t, const float *w,
                                     long long total, long long inner, long long chunk,
                                     long long kind) {
    __shared__ double sh[SUM_THREADS];
    const long long lo = (long long)blockIdx.x * chunk, hi = min(total, lo + chunk);
    double s = 0.0;
    for (long long e = lo + threadIdx.x; e < hi; e += blockDim.x) {
        double v = pw_elem(kind, (double)x[e], (double)t[e]);
        s += w ? (double)w[e / inner] * v : v;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// loss_finish (one block): loss[0] = (sum of the P partials) / den.
extern "C" __global__ void loss_finish(float *loss, const double *part, long long P, double den) {
    __shared__ double sh[SUM_THREADS];
    double s = 0.0;
    for (long long i = threadIdx.x; i < P; i += blockDim.x) s += part[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) loss[0] = (float)(s / den);
}

// loss_grad: dx[e] = coef * w[e/inner] * g(x[e], t[e]) with
// g = sigmoid(x) - t (BCE) or x - t (MSE; the 2 is in coef).
extern "C" __global__ void loss_grad(float *dx, const float *x, const float *t, const float *w,
                                     long long total, long long inner, long long kind,
                                     double coef) {
    GRID_STRIDE(e, total) {
        double xv = (double)x[e], tv = (double)t[e], g;
        if (kind == LossBCE) {
            double sg;
            if (xv >= 0) {
                sg = 1.0 / (1.0 + exp(-xv));
            } else {
                double ex = exp(xv);
                sg = ex / (1.0 + ex);
            }
            g = sg - tv;
        } else {
            g = xv - tv;
        }
        double k = w ? coef * (double)w[e / inner] : coef;
        dx[e] = (float)(k * g);
    }
}

// ce_lse: log(sum_c exp(x[n,c,s])) in double, as max + log(sum exp(x-max)).
__device__ __forceinline__ double ce_lse(const float *x, long long n, long long s, long long C,
                                         long long S) {
    const float *p = x + n * C * S + s;
    double m = -INFINITY;
    for (long long c = 0; c < C; c++) m = fmax(m, (double)p[c * S]);
    double se = 0.0;
    for (long long c = 0; c < C; c++) se += exp((double)p[c * S] - m);
    return m + log(se);
}

// ce_part: cross-entropy with label smoothing eps over x (N,C,S) and
// target (N,S) class ids (validated on the host; ignore marks ignored
// elements). Per counted element e = n*S+s, weighted by w[n]:
//   lse - (1-eps)*x[k] - eps/C * sum_c x[c]
// part[b] is the sum over block b's chunk of elements.
extern "C" __global__ void ce_part(double *part, const float *x, const float *t, const float *w,
                                   long long elements, long long C, long long S, long long chunk,
                                   long long ignore, double eps) {
    __shared__ double sh[SUM_THREADS];
    const long long lo = (long long)blockIdx.x * chunk, hi = min(elements, lo + chunk);
    double acc = 0.0;
    for (long long e = lo + threadIdx.x; e < hi; e += blockDim.x) {
        long long k = (long long)t[e];
        if (k == ignore) continue;
        long long n = e / S, s = e - n * S;
        const float *p = x + n * C * S + s;
        double v = ce_lse(x, n, s, C, S) - (1.0 - eps) * (double)p[k * S];
        if (eps != 0.0) {
            for (long long c = 0; c < C; c++) v -= eps / (double)C * (double)p[c * S];
        }
        acc += w ? (double)w[n] * v : v;
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

// ce_grad: one thread per element e = n*S+s:
//   dx[n,c,s] = coef*w[n] * (softmax(x[n,:,s])[c] - (1-eps)*[c == k] - eps/C)
// and 0 for an ignored element.
extern "C" __global__ void ce_grad(float *dx, const float *x, const float *t, const float *w,
                                   long long elements, long long C, long long S, long long ignore,
                                   double eps, double coef) {
    GRID_STRIDE(e, elements) {
        long long k = (long long)t[e];
        long long n = e / S, s = e - n * S;
        const float *p = x + n * C * S + s;
        float *o = dx + n * C * S + s;
        if (k == ignore) {
            for (long long c = 0; c < C; c++) o[c * S] = 0.0f;
            continue;
        }
        double kw = w ? coef * (double)w[n] : coef;
        double lse = ce_lse(x, n, s, C, S), spread = eps / (double)C, hit = 1.0 - eps;
        for (long long c = 0; c < C; c++) {
            double g = exp((double)p[c * S] - lse) - spread;
            if (c == k) g -= hit;
            o[c * S] = (float)(kw * g);
        }
    }
}

// sgd_step (PyTorch SGD, dampening 0), in float32 without contractions,
// as the CPU backend:
//   d = g + wd*p; if v: d = d + mom*v, v = d; p = p - lr*d
extern "C" __global__ void sgd_step(float *p, const float *g, float *v, long long n, float lr,
                                    float mom, float wd) {
    GRID_STRIDE(i, n) {
        float pi = p[i];
        float d = __fadd_rn(g[i], __fmul_rn(wd, pi));
        if (v) {
            d = __fadd_rn(d, __fmul_rn(mom, v[i]));
            v[i] = d;
        }
        p[i] = __fsub_rn(pi, __fmul_rn(lr, d));
    }
}

// adamw_step (PyTorch AdamW), the CPU backend's operations in its order,
// without contractions; bias corrections come folded into stepSize =
// lr/bc1 and invSqrtBC2 = 1/sqrt(bc2) (host, float64), decay = 1 - lr*wd:
//   m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g
//   den = sqrt(v)*invSqrtBC2 + eps
//   p = den == 0 ? p*decay : p*decay - stepSize*m/den
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, long long n,
                                      float b1, float b2, float eps, float stepSize,
                                      float invSqrtBC2, float decay) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(c1, gi));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(c2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), invSqrtBC2), eps);
        float pd = __fmul_rn(p[i], decay);
        p[i] = den == 0.0f ? pd : __fsub_rn(pd, __fdiv_rn(__fmul_rn(stepSize, mi), den));
    }
}
