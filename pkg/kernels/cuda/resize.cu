// Resize (ONNX, with scales) and its backward. The host computes the
// per-axis tables exactly as the CPU backend does (coordinate transform
// and rounding in float32); the nearest forward is layout.cu's gather_tab.
// The backwards gather instead of scattering: each dx element adds the
// dy elements that read it, in the CPU backend's order (so the float32
// sums round the same way) and without atomics.
#include "common.cuh"

// resize_nearest_bwd: rank r; meta holds r dx extents, r dy strides, then
// per axis k of dx the offset in meta of its tables start_k and count_k
// (start_k[j], count_k[j]: the dy coordinates reading dx coordinate j are
// start..start+count-1; the nearest tables are monotone). dx[J] is the
// sum of dy over the product of those ranges, row-major.
extern "C" __global__ void resize_nearest_bwd(float *dx, const float *dy, long long n,
                                              const long long *meta, long long r) {
    const long long *ext = meta, *dst = meta + r, *toff = meta + 2 * r;
    GRID_STRIDE(i, n) {
        // base offset and range sizes per axis
        long long q = i, base = 0, total = 1;
        for (long long k = r - 1; k >= 0; k--) {
            long long e = ext[k], j = q % e;
            q /= e;
            const long long *tab = meta + toff[k];
            base += tab[j] * dst[k];
            total *= tab[e + j];
        }
        float acc = 0.0f;
        for (long long u = 0; u < total; u++) {
            long long v = u, off = base;
            long long q2 = i;
            for (long long k = r - 1; k >= 0; k--) {
                long long e = ext[k], j = q2 % e;
                q2 /= e;
                long long cnt = meta[toff[k] + e + j];
                off += (v % cnt) * dst[k];
                v /= cnt;
            }
            acc = __fadd_rn(acc, dy[off]);
        }
        dx[i] = acc;
    }
}

// The bilinear tables (int64 each): loH, hiH, wH (float bits) of oH
// entries, loW, hiW, wW of oW, then per input row a the range
// [sH[a], eH[a]) of output rows reading it, and sW, eW per input column.
struct LinTabs {
    const long long *loH, *hiH, *wH, *loW, *hiW, *wW, *sH, *eH, *sW, *eW;
};

__device__ __forceinline__ LinTabs lin_tabs(const long long *t, long long H, long long W,
                                            long long oH, long long oW) {
    LinTabs m;
    m.loH = t; m.hiH = t + oH; m.wH = t + 2 * oH;
    m.loW = t + 3 * oH; m.hiW = m.loW + oW; m.wW = m.loW + 2 * oW;
    m.sH = m.loW + 3 * oW; m.eH = m.sH + H;
    m.sW = m.eH + H; m.eW = m.sW + W;
    return m;
}

__device__ __forceinline__ float fbits(long long v) { return __int_as_float((int)v); }

// resize_linear_fwd: per plane, with float32 arithmetic as the CPU
// backend (no contractions):
//   v0 = x[lh,lw]*(1-ww) + x[lh,hw]*ww; v1 = the same on row hh
//   y = v0*(1-wh) + v1*wh
extern "C" __global__ void resize_linear_fwd(float *y, const float *x, long long planes,
                                             long long H, long long W, long long oH,
                                             long long oW, const long long *tabs) {
    const LinTabs m = lin_tabs(tabs, H, W, oH, oW);
    const long long n = planes * oH * oW;
    GRID_STRIDE(i, n) {
        long long ow = i % oW, t = i / oW, oh = t % oH, pl = t / oH;
        const float *xp = x + pl * H * W;
        const float *r0 = xp + m.loH[oh] * W, *r1 = xp + m.hiH[oh] * W;
        long long l = m.loW[ow], h = m.hiW[ow];
        float wh = fbits(m.wH[oh]), ww = fbits(m.wW[ow]);
        float v0 = __fadd_rn(__fmul_rn(r0[l], 1.0f - ww), __fmul_rn(r0[h], ww));
        float v1 = __fadd_rn(__fmul_rn(r1[l], 1.0f - ww), __fmul_rn(r1[h], ww));
        y[i] = __fadd_rn(__fmul_rn(v0, 1.0f - wh), __fmul_rn(v1, wh));
    }
}

// resize_linear_bwd: dx[pl,a,b] adds, for the output rows oh in
// [sH[a],eH[a]) and columns ow in [sW[b],eW[b]) in row-major order, the
// forward's four terms g0*(1-ww) at (lh,lw), g0*ww at (lh,hw), g1*(1-ww)
// at (hh,lw), g1*ww at (hh,hw) (g0 = dy*(1-wh), g1 = dy*wh) that land on
// (a,b): the CPU backend's scatter order, gathered.
extern "C" __global__ void resize_linear_bwd(float *dx, const float *dy, long long planes,
                                             long long H, long long W, long long oH,
                                             long long oW, const long long *tabs) {
    const LinTabs m = lin_tabs(tabs, H, W, oH, oW);
    const long long n = planes * H * W;
    GRID_STRIDE(i, n) {
        long long b = i % W, t = i / W, a = t % H, pl = t / H;
        const float *gp = dy + pl * oH * oW;
        float acc = 0.0f;
        for (long long oh = m.sH[a]; oh < m.eH[a]; oh++) {
            long long lh = m.loH[oh], hh = m.hiH[oh];
            float wh = fbits(m.wH[oh]);
            for (long long ow = m.sW[b]; ow < m.eW[b]; ow++) {
                long long lw = m.loW[ow], hw = m.hiW[ow];
                float ww = fbits(m.wW[ow]), g = gp[oh * oW + ow];
                float g0 = __fmul_rn(g, 1.0f - wh), g1 = __fmul_rn(g, wh);
                if (lh == a && lw == b) acc = __fadd_rn(acc, __fmul_rn(g0, 1.0f - ww));
                if (lh == a && hw == b) acc = __fadd_rn(acc, __fmul_rn(g0, ww));
                if (hh == a && lw == b) acc = __fadd_rn(acc, __fmul_rn(g1, 1.0f - ww));
                if (hh == a && hw == b) acc = __fadd_rn(acc, __fmul_rn(g1, ww));
            }
        }
        dx[i] = acc;
    }
}
