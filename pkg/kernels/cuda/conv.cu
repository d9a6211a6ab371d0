// 2-D convolution forward in NCHW, with the fused inference epilogue of
// kernels.FusedConvOps:
//
//   y[n][m][oy][ox] = epi(b[m] + sum_{ci<C/G, ki, kj} w[m][ci][ki][kj] *
//       x[n][g*C/G+ci][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw] (+ res[n][m][oy][ox]))
//   (g = m/(M/G); taps outside x are 0; epi = activation, then *scale+shift
//   when affine)
//
// conv2d_igemm is an implicit GEMM: per (image, group) the product of W_g
// (M/G x K, K = C/G*kH*kW) and the im2col columns of the image (K x P,
// P = oH*oW), the columns gathered from x while loading each shared-memory
// tile (no column buffer); the tiling is gemm.cu's (64x64 tile per block,
// 4x4 per thread, K in steps of 16). conv2d_direct is one thread per
// output, for convolutions with few outputs per group (depthwise).
#include "common.cuh"

#include "epilogue.cuh"

#define CBM 64
#define CBN 64
#define CBK 16

// Grid: x over P in tiles of 64, y over M/G in tiles of 64, z over
// N*G (z = n*G + g). All sizes are per image and fit in 32 bits; image
// offsets are 64-bit.
extern "C" __global__ void __launch_bounds__(256)
conv2d_igemm(float *y, const float *x, const float *w, const float *bias, const float *res,
             long long C, long long H, long long W, long long M, long long OH, long long OW,
             long long G, long long KH, long long KW, long long SH, long long SW,
             long long PT, long long PL, long long DH, long long DW,
             long long act, float alpha, float beta, long long affine, float scale, float shift) {
    __shared__ float As[CBK][CBM + 1];
    __shared__ float Bs[CBK][CBN + 1];
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    const int g = (int)(blockIdx.z % G);
    const long long n = blockIdx.z / G;
    const int outer = (int)(M / G), cg = (int)(C / G);
    const int kk2 = (int)(KH * KW), kw = (int)KW;
    const int K = cg * kk2, ow = (int)OW, P = (int)(OH * OW);
    const int h = (int)H, wd = (int)W, sh = (int)SH, sw = (int)SW, pt = (int)PT, pl = (int)PL,
              dh = (int)DH, dw = (int)DW;
    const float *A = w + (long long)g * outer * K;
    const float *X = x + (n * C + (long long)g * cg) * H * W;
    const int m0 = blockIdx.y * CBM, p0 = blockIdx.x * CBN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += CBK) {
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int e = t + 256 * r;
            // A: W_g row-major (outer x K), contiguous along k.
            int ka = e % CBK, ma = e / CBK;
            int gm = m0 + ma, gk = k0 + ka;
            As[ka][ma] = (gm < outer && gk < K) ? A[(long long)gm * K + gk] : 0.0f;
            // B: columns, consecutive threads on consecutive positions.
            int pb = e % CBN, kb = e / CBN;
            int gp = p0 + pb;
            gk = k0 + kb;
            float v = 0.0f;
            if (gp < P && gk < K) {
                int ci = gk / kk2, rr = gk - ci * kk2;
                int ki = rr / kw, kj = rr - ki * kw;
                int oy = gp / ow, ox = gp - oy * ow;
                int ih = oy * sh - pt + ki * dh, iw = ox * sw - pl + kj * dw;
                if (ih >= 0 && ih < h && iw >= 0 && iw < wd) v = X[((long long)ci * h + ih) * wd + iw];
            }
            Bs[kb][pb] = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < CBK; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int gm = m0 + ty + 16 * i;
        if (gm >= outer) continue;
        long long mg = (long long)g * outer + gm;
        float bv = bias ? bias[mg] : 0.0f;
        long long rowOff = (n * M + mg) * P;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int gp = p0 + tx + 16 * j;
            if (gp >= P) continue;
            float v = acc[i][j];
            if (bias) v += bv;
            if (res) v += res[rowOff + gp];
            y[rowOff + gp] = conv_epi(v, (int)act, alpha, beta, (int)affine, scale, shift);
        }
    }
}

// One thread per output element (grid-stride over N*M*oH*oW).
extern "C" __global__ void conv2d_direct(float *y, const float *x, const float *w, const float *bias,
                                         const float *res, long long N, long long C, long long H,
                                         long long W, long long M, long long OH, long long OW,
                                         long long G, long long KH, long long KW, long long SH,
                                         long long SW, long long PT, long long PL, long long DH,
                                         long long DW, long long act, float alpha, float beta,
                                         long long affine, float scale, float shift) {
    const long long total = N * M * OH * OW;
    const int outer = (int)(M / G), cg = (int)(C / G);
    GRID_STRIDE(i, total) {
        long long r = i;
        int ox = (int)(r % OW); r /= OW;
        int oy = (int)(r % OH); r /= OH;
        int m = (int)(r % M);
        long long n = r / M;
        int g = m / outer;
        const float *X = x + (n * C + (long long)g * cg) * H * W;
        const float *Wm = w + (long long)m * cg * KH * KW;
        float acc = 0.0f;
        for (int ci = 0; ci < cg; ci++) {
            for (int ki = 0; ki < KH; ki++) {
                int ih = oy * (int)SH - (int)PT + ki * (int)DH;
                if (ih < 0 || ih >= H) continue;
                const float *xr = X + ((long long)ci * H + ih) * W;
                const float *wr = Wm + ((long long)ci * KH + ki) * KW;
                for (int kj = 0; kj < KW; kj++) {
                    int iw = ox * (int)SW - (int)PL + kj * (int)DW;
                    if (iw < 0 || iw >= W) continue;
                    acc = fmaf(wr[kj], xr[iw], acc);
                }
            }
        }
        float v = acc;
        if (bias) v += bias[m];
        if (res) v += res[i];
        y[i] = conv_epi(v, (int)act, alpha, beta, (int)affine, scale, shift);
    }
}

// ConvTranspose2D as a gather, one thread per output element:
//
//   y[n][m][oy][ox] = b[m] + sum_{c in group g, ki, kj} x[n][c][iy][ix] * w[c][m-g*M/G][ki][kj]
//
// over the taps with oy = iy*sh - pt + ki*dh (iy integral, 0 <= iy < H),
// and likewise ox; g = m/(M/G). x is (N,C,H,W), w (C,M/G,kH,kW).
extern "C" __global__ void convt2d_direct(float *y, const float *x, const float *w, const float *bias,
                                          long long N, long long C, long long H, long long W,
                                          long long M, long long OH, long long OW, long long G,
                                          long long KH, long long KW, long long SH, long long SW,
                                          long long PT, long long PL, long long DH, long long DW) {
    const long long total = N * M * OH * OW;
    const int mg = (int)(M / G), cg = (int)(C / G);
    GRID_STRIDE(i, total) {
        long long r = i;
        int ox = (int)(r % OW); r /= OW;
        int oy = (int)(r % OH); r /= OH;
        int m = (int)(r % M);
        long long n = r / M;
        int g = m / mg, mm = m - g * mg;
        float acc = 0.0f;
        for (int ki = 0; ki < KH; ki++) {
            int ty = oy + (int)PT - ki * (int)DH;
            if (ty < 0 || ty % (int)SH != 0) continue;
            int iy = ty / (int)SH;
            if (iy >= H) continue;
            for (int kj = 0; kj < KW; kj++) {
                int tx = ox + (int)PL - kj * (int)DW;
                if (tx < 0 || tx % (int)SW != 0) continue;
                int ix = tx / (int)SW;
                if (ix >= W) continue;
                for (int cc = 0; cc < cg; cc++) {
                    long long c = (long long)g * cg + cc;
                    acc = fmaf(x[((n * C + c) * H + iy) * W + ix], w[((c * mg + mm) * KH + ki) * KW + kj], acc);
                }
            }
        }
        if (bias) acc += bias[m];
        y[i] = acc;
    }
}

// Weight gradient of Conv2D and ConvTranspose2D, one block of 256 threads
// per element of dw (D0,D1,kH,kW) (grid-stride over elements):
//
//   dw[o0][o1][ki][kj] = sum_{n, gy<GH, gx<GW} gr[n][o0][gy][gx] *
//       img[n][g*D1+o1][gy*sh-pt+ki*dh][gx*sw-pl+kj*dw]      (g = o0/(D0/G))
//
// Conv2D: gr = dy (N,M,oH,oW), img = x, (D0,D1) = (M, C/G). ConvTranspose2D:
// gr = x (N,C,H,W), img = dy, (D0,D1) = (C, M/G). Taps outside img are 0.
extern "C" __global__ void __launch_bounds__(256)
conv_filter_grad(float *dw, const float *gr, const float *img, long long N, long long D0,
                 long long D1, long long KH, long long KW, long long G, long long GH, long long GW,
                 long long IC, long long IH, long long IW, long long SH, long long SW, long long PT,
                 long long PL, long long DH, long long DW) {
    __shared__ float part[256];
    const long long total = D0 * D1 * KH * KW;
    const long long per = N * GH * GW;
    for (long long e = blockIdx.x; e < total; e += gridDim.x) {
        long long r = e;
        int kj = (int)(r % KW); r /= KW;
        int ki = (int)(r % KH); r /= KH;
        long long o1 = r % D1, o0 = r / D1;
        long long g = o0 / (D0 / G), ic = g * D1 + o1;
        float acc = 0.0f;
        for (long long q = threadIdx.x; q < per; q += blockDim.x) {
            long long gx = q % GW, t = q / GW;
            long long gy = t % GH, n = t / GH;
            long long iy = gy * SH - PT + ki * DH, ix = gx * SW - PL + kj * DW;
            if (iy < 0 || iy >= IH || ix < 0 || ix >= IW) continue;
            acc = fmaf(gr[((n * D0 + o0) * GH + gy) * GW + gx], img[((n * IC + ic) * IH + iy) * IW + ix], acc);
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
            __syncthreads();
        }
        if (threadIdx.x == 0) dw[e] = part[0];
        __syncthreads();
    }
}

// Bias gradient: db[m] = sum_{n, p<P} dy[n][m][p], one block per m.
extern "C" __global__ void __launch_bounds__(256)
conv_bias_grad(float *db, const float *dy, long long N, long long M, long long P) {
    __shared__ float part[256];
    for (long long m = blockIdx.x; m < M; m += gridDim.x) {
        float acc = 0.0f;
        for (long long q = threadIdx.x; q < N * P; q += blockDim.x) {
            long long n = q / P, p = q - n * P;
            acc += dy[(n * M + m) * P + p];
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
            __syncthreads();
        }
        if (threadIdx.x == 0) db[m] = part[0];
        __syncthreads();
    }
}
