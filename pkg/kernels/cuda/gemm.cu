// Tiled SGEMM for Gemm and (batched, broadcast) MatMul:
//   C[z] = alpha * A[z] * B[z] + beta * C[z]
// with A element (m,k) at a[offA + m*sam + k*sak] and B element (k,n) at
// b[offB + k*sbk + n*sbn] (transposes are stride swaps), C row-major
// (M,N) at c + z*M*N. offs, when not null, holds (offA, offB) per batch
// index z (blockIdx.z); null means both offsets are 0.
//
// A 64x64 tile of C per block of 256 threads, each thread a 4x4 micro-tile
// (rows ty+16i, columns tx+16j), K in steps of 16 through shared memory.
// Plain FP32 FMA: a correct baseline, not a tensor-core kernel.
#include "common.cuh"

#define BM 64
#define BN 64
#define BK 16

extern "C" __global__ void __launch_bounds__(256)
sgemm(float *c, const float *a, const float *b, long long M, long long N, long long K,
      long long sam, long long sak, long long sbk, long long sbn, float alpha, float beta,
      const long long *offs) {
    __shared__ float As[BK][BM + 1];
    __shared__ float Bs[BK][BN + 1];
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    const long long z = blockIdx.z;
    const float *A = a + (offs ? offs[2 * z] : 0);
    const float *B = b + (offs ? offs[2 * z + 1] : 0);
    float *C = c + z * M * N;
    const long long m0 = (long long)blockIdx.y * BM, n0 = (long long)blockIdx.x * BN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (long long k0 = 0; k0 < K; k0 += BK) {
        // Each operand tile has 1024 elements: 4 per thread, the loop
        // order chosen so that consecutive threads read consecutive
        // addresses of whichever axis is contiguous.
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int e = t + 256 * r, kk, mm;
            if (sak == 1) { kk = e % BK; mm = e / BK; } else { mm = e % BM; kk = e / BM; }
            long long gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < M && gk < K) ? A[gm * sam + gk * sak] : 0.0f;
            int nn;
            if (sbn == 1) { nn = e % BN; kk = e / BN; } else { kk = e % BK; nn = e / BK; }
            long long gn = n0 + nn;
            gk = k0 + kk;
            Bs[kk][nn] = (gn < N && gk < K) ? B[gk * sbk + gn * sbn] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
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
        long long gm = m0 + ty + 16 * i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            long long gn = n0 + tx + 16 * j;
            if (gn >= N) continue;
            float v = alpha * acc[i][j];
            // beta == 0 never reads C (it may hold NaN garbage).
            if (beta != 0.0f) v += beta * C[gm * N + gn];
            C[gm * N + gn] = v;
        }
    }
}
