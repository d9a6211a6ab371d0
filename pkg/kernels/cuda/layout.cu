// Layout kernels: Concat/Split rows, DepthToSpace, and a table-driven
// gather/scatter that serves Transpose, BroadcastTo, Slice and Pad (and
// their backwards).
#include "common.cuh"

// copy_rows: for o < outer, j < chunk:
//   dst[o*dstRow + dstOff + j] = src[o*srcRow + srcOff + j]
// (Concat copies each part into its columns of the whole; Split the
// reverse.)
extern "C" __global__ void copy_rows(float *dst, const float *src, long long outer, long long chunk,
                                     long long dstRow, long long dstOff, long long srcRow,
                                     long long srcOff) {
    const long long n = outer * chunk;
    GRID_STRIDE(i, n) {
        long long o = i / chunk, j = i - o * chunk;
        dst[o * dstRow + dstOff + j] = src[o * srcRow + srcOff + j];
    }
}

// DepthToSpace on x (N,C,H,W) and y (N,C/b^2,H*b,W*b), one thread per y
// element:
//   y[n,c,h*b+i,w*b+j] = x[n,ch,h,w], ch = (i*b+j)*C/b^2 + c (DCR)
//                                     ch = c*b^2 + i*b + j   (CRD)
// back != 0 writes x from y instead (the backward: a permutation).
extern "C" __global__ void depth_to_space(float *y, float *x, long long N, long long C, long long H,
                                          long long W, long long B, long long crd, long long back) {
    const long long oc = C / (B * B), oh = H * B, ow = W * B;
    const long long total = N * C * H * W;
    GRID_STRIDE(e, total) {
        long long r = e;
        long long xw = r % ow; r /= ow;
        long long xh = r % oh; r /= oh;
        long long c = r % oc;
        long long n = r / oc;
        long long h = xh / B, i = xh - h * B, w = xw / B, j = xw - w * B;
        long long ch = crd ? c * B * B + i * B + j : (i * B + j) * oc + c;
        long long xi = ((n * C + ch) * H + h) * W + w;
        if (back) x[xi] = y[e];
        else y[e] = x[xi];
    }
}

// Table-driven index maps. meta (int64) holds rank r, then r extents of
// the small-side index space (y for a gather), r element strides into the
// big side, r offsets into meta where each axis's table starts, then the
// tables: tab_k[o] is the big-side coordinate (times stride k) of
// small-side coordinate o on axis k, or -1 for "no source" (Pad's
// constant).
__device__ __forceinline__ long long tab_offset(const long long *meta, long long i, bool *hole) {
    const long long r = meta[0];
    long long off = 0;
    *hole = false;
    for (long long k = r - 1; k >= 0; k--) {
        long long ext = meta[1 + k];
        long long q = i % ext;
        i /= ext;
        long long t = meta[meta[1 + 2 * r + k] + q];
        if (t < 0) {
            *hole = true;
            return 0;
        }
        off += t * meta[1 + r + k];
    }
    return off;
}

// gather_tab: y[i] = x[off(i)], or value where the map has no source.
extern "C" __global__ void gather_tab(float *y, const float *x, long long n, const long long *meta,
                                      float value) {
    GRID_STRIDE(i, n) {
        bool hole;
        long long off = tab_offset(meta, i, &hole);
        y[i] = hole ? value : x[off];
    }
}

// scatter_tab: x[off(i)] = y[i] (add == 0: the map is one-to-one) or
// x[off(i)] += y[i] atomically (add != 0: several i may share a target);
// positions without a source are skipped. x is zeroed by the caller.
extern "C" __global__ void scatter_tab(float *x, const float *y, long long n, const long long *meta,
                                       long long add) {
    GRID_STRIDE(i, n) {
        bool hole;
        long long off = tab_offset(meta, i, &hole);
        if (hole) continue;
        if (add) atomicAdd(x + off, y[i]);
        else x[off] = y[i];
    }
}
