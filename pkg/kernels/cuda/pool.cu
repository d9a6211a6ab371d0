// Pooling in NCHW: Pool2D (ONNX MaxPool/AveragePool) and GlobalPool,
// forward and backward, with the CPU backend's semantics (pool.go):
//
//   for n, c, oh, ow: acc = -inf (max) or 0 (avg)
//     for kh, kw: ih = oh*sH - pT + kh*dH; iw = ow*sW - pL + kw*dW
//       if 0 <= ih < H && 0 <= iw < W: acc = max(acc, x) or acc += x
//     y = acc (max; -FLT_MAX if no tap is inside x) or acc / divisor (avg:
//     the taps inside x, or with count_include_pad those inside the
//     padded input [-pB, in+pE) on each axis; 0 if the divisor is 0)
#include "common.cuh"

#define VIREO_FLT_MAX 3.402823466e+38f

// taps counts the window's taps along one axis that land in [lo, hi).
__device__ __forceinline__ int pool_taps(int o, int s, int pb, int k, int d, int lo, int hi) {
    int c = 0;
    for (int t = 0; t < k; t++) {
        int pos = o * s - pb + t * d;
        if (pos >= lo && pos < hi) c++;
    }
    return c;
}

// geo: H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR.
extern "C" __global__ void pool2d_fwd(float *y, const float *x, long long planes, long long H,
                                      long long W, long long OH, long long OW, long long KH,
                                      long long KW, long long SH, long long SW, long long DH,
                                      long long DW, long long PT, long long PL, long long PB,
                                      long long PR, long long isMax, long long includePad) {
    const long long total = planes * OH * OW;
    GRID_STRIDE(i, total) {
        int ow = (int)(i % OW);
        long long r = i / OW;
        int oh = (int)(r % OH);
        long long pl = r / OH;
        const float *xp = x + pl * H * W;
        float acc = isMax ? -INFINITY : 0.0f;
        int valid = 0;
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * (int)SH - (int)PT + kh * (int)DH;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * (int)SW - (int)PL + kw * (int)DW;
                if (iw < 0 || iw >= W) continue;
                float v = xp[(long long)ih * W + iw];
                acc = isMax ? gmax(acc, v) : acc + v;
                valid++;
            }
        }
        if (isMax) {
            y[i] = valid == 0 ? -VIREO_FLT_MAX : acc;
            continue;
        }
        float dv;
        if (includePad) {
            dv = (float)(pool_taps(oh, (int)SH, (int)PT, (int)KH, (int)DH, -(int)PT, (int)(H + PB)) *
                         pool_taps(ow, (int)SW, (int)PL, (int)KW, (int)DW, -(int)PL, (int)(W + PR)));
        } else {
            dv = (float)valid;
        }
        y[i] = dv > 0 ? acc / dv : 0.0f;
    }
}

// Backward, one thread per output (dx zeroed first): max adds dy to the
// first maximum of the window (taps row by row, as the forward's scan
// and the CPU backend's), average adds dy/divisor to every tap inside x.
extern "C" __global__ void pool2d_bwd(float *dx, const float *dy, const float *x, long long planes,
                                      long long H, long long W, long long OH, long long OW,
                                      long long KH, long long KW, long long SH, long long SW,
                                      long long DH, long long DW, long long PT, long long PL,
                                      long long PB, long long PR, long long isMax,
                                      long long includePad) {
    const long long total = planes * OH * OW;
    GRID_STRIDE(i, total) {
        int ow = (int)(i % OW);
        long long r = i / OW;
        int oh = (int)(r % OH);
        long long pl = r / OH;
        float *dxp = dx + pl * H * W;
        float g = dy[i];
        if (isMax) {
            const float *xp = x + pl * H * W;
            long long at = -1;
            float best = 0.0f;
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * (int)SH - (int)PT + kh * (int)DH;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * (int)SW - (int)PL + kw * (int)DW;
                    if (iw < 0 || iw >= W) continue;
                    long long k = (long long)ih * W + iw;
                    float v = xp[k];
                    if (at < 0 || v > best) {
                        at = k;
                        best = v;
                    }
                }
            }
            if (at >= 0) atomicAdd(dxp + at, g);
            continue;
        }
        int vh = pool_taps(oh, (int)SH, (int)PT, (int)KH, (int)DH, 0, (int)H);
        int vw = pool_taps(ow, (int)SW, (int)PL, (int)KW, (int)DW, 0, (int)W);
        float dv = includePad
                       ? (float)(pool_taps(oh, (int)SH, (int)PT, (int)KH, (int)DH, -(int)PT, (int)(H + PB)) *
                                 pool_taps(ow, (int)SW, (int)PL, (int)KW, (int)DW, -(int)PL, (int)(W + PR)))
                       : (float)(vh * vw);
        if (!(dv > 0)) continue;
        g = g / dv;
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * (int)SH - (int)PT + kh * (int)DH;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * (int)SW - (int)PL + kw * (int)DW;
                if (iw < 0 || iw >= W) continue;
                atomicAdd(dxp + (long long)ih * W + iw, g);
            }
        }
    }
}

// GlobalPool, one block of 256 threads per plane (grid-stride over
// planes). Max is the CPU's scan m = x[0]; if v > m: m = v (a NaN first
// element stays, later NaNs are skipped); the mean sums in double.
extern "C" __global__ void __launch_bounds__(256)
global_pool_fwd(float *y, const float *x, long long planes, long long size, long long isMax) {
    __shared__ double ssum[256];
    __shared__ float smax[256];
    for (long long pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float *xp = x + pl * size;
        float m = xp[0];
        double s = 0.0;
        for (long long i = threadIdx.x; i < size; i += blockDim.x) {
            float v = xp[i];
            if (v > m) m = v;
            s += (double)v;
        }
        smax[threadIdx.x] = m;
        ssum[threadIdx.x] = s;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if (threadIdx.x < w) {
                float o = smax[threadIdx.x + w];
                if (o > smax[threadIdx.x]) smax[threadIdx.x] = o;
                ssum[threadIdx.x] += ssum[threadIdx.x + w];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) y[pl] = isMax ? smax[0] : (float)(ssum[0] / (double)size);
        __syncthreads();
    }
}

// GlobalPoolBackward: average writes dy/size everywhere; max writes dy at
// the first maximum (the forward's scan) and 0 elsewhere.
extern "C" __global__ void __launch_bounds__(256)
global_pool_bwd(float *dx, const float *dy, const float *x, long long planes, long long size,
                long long isMax) {
    __shared__ float smax[256];
    __shared__ long long sidx[256];
    for (long long pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        float *dxp = dx + pl * size;
        if (!isMax) {
            float g = dy[pl] / (float)size;
            for (long long i = threadIdx.x; i < size; i += blockDim.x) dxp[i] = g;
            continue;
        }
        const float *xp = x + pl * size;
        float m = xp[0];
        long long at = 0;
        for (long long i = threadIdx.x; i < size; i += blockDim.x) {
            float v = xp[i];
            if (v > m) {
                m = v;
                at = i;
            }
        }
        smax[threadIdx.x] = m;
        sidx[threadIdx.x] = at;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if (threadIdx.x < w) {
                float o = smax[threadIdx.x + w];
                long long oi = sidx[threadIdx.x + w];
                if (o > smax[threadIdx.x] || (o == smax[threadIdx.x] && oi < sidx[threadIdx.x])) {
                    smax[threadIdx.x] = o;
                    sidx[threadIdx.x] = oi;
                }
            }
            __syncthreads();
        }
        at = sidx[0];
        for (long long i = threadIdx.x; i < size; i += blockDim.x) dxp[i] = i == at ? dy[pl] : 0.0f;
        __syncthreads();
    }
}
