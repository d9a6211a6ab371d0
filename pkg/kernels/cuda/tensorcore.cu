// Tensor-core GEMM and implicit-GEMM convolution for the backend's fp16
// and bf16 math modes: the same products as gemm.cu's sgemm and conv.cu's
// conv2d_igemm, with the same launch arguments,
//
//   C[z] = alpha * A[z] * B[z] + beta * C[z]                 (tc_gemm_*)
//   y = conv_epi((W_g * im2col(x) + bias) + res)            (tc_conv_*)
//
// but each operand element is rounded to half (fp16) or bfloat16 as it
// is stored into shared memory, and the products are summed by the tensor
// cores (WMMA 16x16x16) into FP32 accumulators. The tensors stay FP32 in
// device memory; the epilogue (alpha/beta, bias, residual, activation,
// affine) runs in FP32 on the accumulators. So the only differences from
// the FP32 kernels are the operands' rounding (relative 2^-11 for fp16,
// 2^-8 for bf16) and the summation order; fp16 also overflows to Inf for
// operands beyond 65504 (bf16 has FP32's exponent range).
//
// Tiling: a BM x 128 tile of C per block of 256 threads (8 warps), K in
// steps of 32. BM is 128 (warps 4x2, each 32x64: 2x4 fragments) or 64
// for short M (warps 2x4, each 32x32: 2x2 fragments). The next K step's
// operands are loaded from global memory into registers while the tensor
// cores work on the current one. The epilogue goes through a 16x16 FP32
// staging tile per warp in shared memory.
#include <mma.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include "common.cuh"
#include "epilogue.cuh"

using namespace nvcuda;

#define TBN 128
#define TBK 32
#define TPAD 8 // keeps rows 16-byte aligned (WMMA's ldm) and spreads banks

template <typename T> __device__ __forceinline__ T to_t(float v);
template <> __device__ __forceinline__ __half to_t<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// tc_body is the block's whole GEMM: L supplies the operands (a(m, k) and
// b(k, n) in block-tile coordinates made global by the caller, 0 outside
// the matrix) and which axis of each is contiguous; E receives every
// in-range C element (row, column, FP32 sum).
template <typename T, int BM, class L, class E>
__device__ __forceinline__ void tc_body(const L &ld, const E &ep, int m0, int n0, int K) {
    constexpr int WARPS_M = BM / 32, WARPS_N = 8 / WARPS_M;
    constexpr int WTN = TBN / WARPS_N, FM = 2, FN = WTN / 16;
    constexpr int AE = BM * TBK / 256, BE = TBK * TBN / 256;
    __shared__ __align__(32) T As[BM][TBK + TPAD];
    __shared__ __align__(32) T Bs[TBK][TBN + TPAD];
    __shared__ __align__(32) float Cs[8][16 * 16];
    const int t = threadIdx.x, warp = t / 32, lane = t % 32;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    // Element e of a tile: consecutive threads on the contiguous axis.
    auto amap = [&](int e, int &mm, int &kk) {
        if (ld.akfast) { kk = e % TBK; mm = e / TBK; } else { mm = e % BM; kk = e / BM; }
    };
    auto bmap = [&](int e, int &kk, int &nn) {
        if (ld.bnfast) { nn = e % TBN; kk = e / TBN; } else { kk = e % TBK; nn = e / TBK; }
    };
    float ra[AE], rb[BE];
    auto load = [&](int k0) {
#pragma unroll
        for (int r = 0; r < AE; r++) {
            int mm, kk;
            amap(t + 256 * r, mm, kk);
            ra[r] = ld.a(m0 + mm, k0 + kk);
        }
#pragma unroll
        for (int r = 0; r < BE; r++) {
            int kk, nn;
            bmap(t + 256 * r, kk, nn);
            rb[r] = ld.b(k0 + kk, n0 + nn);
        }
    };
    if (K > 0) load(0);
    for (int k0 = 0; k0 < K; k0 += TBK) {
#pragma unroll
        for (int r = 0; r < AE; r++) {
            int mm, kk;
            amap(t + 256 * r, mm, kk);
            As[mm][kk] = to_t<T>(ra[r]);
        }
#pragma unroll
        for (int r = 0; r < BE; r++) {
            int kk, nn;
            bmap(t + 256 * r, kk, nn);
            Bs[kk][nn] = to_t<T>(rb[r]);
        }
        __syncthreads();
        if (k0 + TBK < K) load(k0 + TBK);
#pragma unroll
        for (int kk = 0; kk < TBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[FM];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[FN];
#pragma unroll
            for (int i = 0; i < FM; i++)
                wmma::load_matrix_sync(fa[i], &As[wm * 32 + i * 16][kk], TBK + TPAD);
#pragma unroll
            for (int j = 0; j < FN; j++)
                wmma::load_matrix_sync(fb[j], &Bs[kk][wn * WTN + j * 16], TBN + TPAD);
#pragma unroll
            for (int i = 0; i < FM; i++)
#pragma unroll
                for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) {
            wmma::store_matrix_sync(Cs[warp], acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            const int rm = m0 + wm * 32 + i * 16, cn = n0 + wn * WTN + j * 16;
            for (int e = lane; e < 256; e += 32) ep(rm + e / 16, cn + e % 16, Cs[warp][e]);
            __syncwarp();
        }
}

// GEMM operands with sgemm's strides.
struct GemmLoad {
    const float *A, *B;
    long long M, N, K, sam, sak, sbk, sbn;
    bool akfast, bnfast;
    __device__ __forceinline__ float a(long long m, long long k) const {
        return (m < M && k < K) ? A[m * sam + k * sak] : 0.0f;
    }
    __device__ __forceinline__ float b(long long k, long long n) const {
        return (k < K && n < N) ? B[k * sbk + n * sbn] : 0.0f;
    }
};

struct GemmStore {
    float *C;
    long long M, N;
    float alpha, beta;
    __device__ __forceinline__ void operator()(long long m, long long n, float v) const {
        if (m >= M || n >= N) return;
        v *= alpha;
        // beta == 0 never reads C (it may hold NaN garbage).
        if (beta != 0.0f) v += beta * C[m * N + n];
        C[m * N + n] = v;
    }
};

template <typename T, int BM>
__device__ __forceinline__ void tc_gemm(float *c, const float *a, const float *b, long long M,
                                        long long N, long long K, long long sam, long long sak,
                                        long long sbk, long long sbn, float alpha, float beta,
                                        const long long *offs) {
    const long long z = blockIdx.z;
    GemmLoad ld{a + (offs ? offs[2 * z] : 0), b + (offs ? offs[2 * z + 1] : 0), M, N, K,
                sam, sak, sbk, sbn, sak == 1, sbn == 1};
    GemmStore st{c + z * M * N, M, N, alpha, beta};
    tc_body<T, BM>(ld, st, (int)blockIdx.y * BM, (int)blockIdx.x * TBN, (int)K);
}

#define TC_GEMM(name, T, BM)                                                                   \
    extern "C" __global__ void __launch_bounds__(256)                                          \
        name(float *c, const float *a, const float *b, long long M, long long N, long long K, \
             long long sam, long long sak, long long sbk, long long sbn, float alpha,          \
             float beta, const long long *offs) {                                              \
        tc_gemm<T, BM>(c, a, b, M, N, K, sam, sak, sbk, sbn, alpha, beta, offs);               \
    }
TC_GEMM(tc_gemm_f16_128, __half, 128)
TC_GEMM(tc_gemm_f16_64, __half, 64)
TC_GEMM(tc_gemm_bf16_128, __nv_bfloat16, 128)
TC_GEMM(tc_gemm_bf16_64, __nv_bfloat16, 64)

// Convolution operands: A = W_g (outer x K, row-major), B = the im2col
// columns of one image's group (K x P), gathered from x (conv.cu's
// conv2d_igemm loads the same elements).
struct ConvLoad {
    const float *A, *X;
    int outer, K, P, kk2, kw, ow, h, wd, sh, sw, pt, pl, dh, dw;
    bool akfast = true, bnfast = true;
    __device__ __forceinline__ float a(int m, int k) const {
        return (m < outer && k < K) ? A[(long long)m * K + k] : 0.0f;
    }
    __device__ __forceinline__ float b(int k, int p) const {
        if (p >= P || k >= K) return 0.0f;
        int ci = k / kk2, rr = k - ci * kk2;
        int ki = rr / kw, kj = rr - ki * kw;
        int oy = p / ow, ox = p - oy * ow;
        int ih = oy * sh - pt + ki * dh, iw = ox * sw - pl + kj * dw;
        if (ih < 0 || ih >= h || iw < 0 || iw >= wd) return 0.0f;
        return X[((long long)ci * h + ih) * wd + iw];
    }
};

struct ConvStore {
    float *y;
    const float *bias, *res;
    long long n, M, gOuter; // gOuter = g * outer
    int outer, P, act, affine;
    float alpha, beta, scale, shift;
    __device__ __forceinline__ void operator()(int m, int p, float v) const {
        if (m >= outer || p >= P) return;
        long long mg = gOuter + m, off = (n * M + mg) * P + p;
        if (bias) v += bias[mg];
        if (res) v += res[off];
        y[off] = conv_epi(v, act, alpha, beta, affine, scale, shift);
    }
};

// Grid: x over P in tiles of 128, y over M/G in tiles of BM, z over N*G
// (z = n*G + g), as conv2d_igemm with its tiles.
template <typename T, int BM>
__device__ __forceinline__ void tc_conv(float *y, const float *x, const float *w, const float *bias,
                                        const float *res, long long C, long long H, long long W,
                                        long long M, long long OH, long long OW, long long G,
                                        long long KH, long long KW, long long SH, long long SW,
                                        long long PT, long long PL, long long DH, long long DW,
                                        long long act, float alpha, float beta, long long affine,
                                        float scale, float shift) {
    const int g = (int)(blockIdx.z % G);
    const long long n = blockIdx.z / G;
    const int outer = (int)(M / G), cg = (int)(C / G);
    const int kk2 = (int)(KH * KW), K = cg * kk2, P = (int)(OH * OW);
    ConvLoad ld{w + (long long)g * outer * K, x + (n * C + (long long)g * cg) * H * W,
                outer, K, P, kk2, (int)KW, (int)OW, (int)H, (int)W, (int)SH, (int)SW,
                (int)PT, (int)PL, (int)DH, (int)DW};
    ConvStore st{y, bias, res, n, M, (long long)g * outer, outer, P, (int)act, (int)affine,
                 alpha, beta, scale, shift};
    tc_body<T, BM>(ld, st, (int)blockIdx.y * BM, (int)blockIdx.x * TBN, K);
}

#define TC_CONV(name, T, BM)                                                                     \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        name(float *y, const float *x, const float *w, const float *bias, const float *res,      \
             long long C, long long H, long long W, long long M, long long OH, long long OW,     \
             long long G, long long KH, long long KW, long long SH, long long SW, long long PT,   \
             long long PL, long long DH, long long DW, long long act, float alpha, float beta,   \
             long long affine, float scale, float shift) {                                       \
        tc_conv<T, BM>(y, x, w, bias, res, C, H, W, M, OH, OW, G, KH, KW, SH, SW, PT, PL, DH,   \
                       DW, act, alpha, beta, affine, scale, shift);                              \
    }
TC_CONV(tc_conv_f16_128, __half, 128)
TC_CONV(tc_conv_f16_64, __half, 64)
TC_CONV(tc_conv_bf16_128, __nv_bfloat16, 128)
TC_CONV(tc_conv_bf16_64, __nv_bfloat16, 64)
