package kernelstest

import "vireo/pkg/kernels"

// Plain reference loops for the linear family, in float64 accumulation.

// RefGemm returns alpha*op(a)*op(b) + beta*c for row-major a (M,K) or
// (K,M) with transA, b (K,N) or (N,K) with transB, c (M,N).
func RefGemm(a []float32, as kernels.Shape, b []float32, bs kernels.Shape, c []float32, p kernels.GemmParams) []float32 {
	M, K := as[0], as[1]
	if p.TransA {
		M, K = K, M
	}
	N := bs[1]
	if p.TransB {
		N = bs[0]
	}
	at := func(i, k int) float64 {
		if p.TransA {
			return float64(a[k*M+i])
		}
		return float64(a[i*K+k])
	}
	bt := func(k, j int) float64 {
		if p.TransB {
			return float64(b[j*K+k])
		}
		return float64(b[k*N+j])
	}
	out := make([]float32, M*N)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s float64
			for k := 0; k < K; k++ {
				s += at(i, k) * bt(k, j)
			}
			out[i*N+j] = float32(float64(p.Alpha)*s + float64(p.Beta)*float64(c[i*N+j]))
		}
	}
	return out
}

// matmulRefIndex holds, for an ONNX MatMul of shapes as and bs, the sizes
// after rank-1 promotion and, for each flat batch index of the broadcast
// batch, the batch offsets into a and b. It is computed here with its own
// loops (not the backend's) from the NumPy rules: align batch dims on the
// right, a dim of 1 repeats.
type matmulRefIndex struct {
	M, K, N int
	ia, ib  []int
}

func newMatmulRefIndex(as, bs kernels.Shape) matmulRefIndex {
	pa, pb := as.Clone(), bs.Clone()
	if len(pa) == 1 {
		pa = kernels.Shape{1, pa[0]}
	}
	if len(pb) == 1 {
		pb = kernels.Shape{pb[0], 1}
	}
	r := max(len(pa), len(pb)) - 2
	pad := func(s kernels.Shape) kernels.Shape {
		out := make(kernels.Shape, r)
		for i := range out {
			out[i] = 1
		}
		copy(out[r-(len(s)-2):], s[:len(s)-2])
		return out
	}
	ab, bb := pad(pa), pad(pb)
	batch := make(kernels.Shape, r)
	for i := range batch {
		batch[i] = max(ab[i], bb[i])
	}
	x := matmulRefIndex{M: pa[len(pa)-2], K: pa[len(pa)-1], N: pb[len(pb)-1]}
	idx := make([]int, r)
	for {
		oa, ob := 0, 0
		for i := 0; i < r; i++ {
			ia, ib := idx[i], idx[i]
			if ab[i] == 1 {
				ia = 0
			}
			if bb[i] == 1 {
				ib = 0
			}
			oa = oa*ab[i] + ia
			ob = ob*bb[i] + ib
		}
		x.ia, x.ib = append(x.ia, oa), append(x.ib, ob)
		// odometer increment over batch
		i := r - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < batch[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
	return x
}

// RefMatMul is ONNX MatMul: for every broadcast batch index t,
//
//	c[t][i][j] = sum_k a[ia(t)][i][k] * b[ib(t)][k][j]
func RefMatMul(a []float32, as kernels.Shape, b []float32, bs kernels.Shape) []float32 {
	x := newMatmulRefIndex(as, bs)
	out := make([]float32, len(x.ia)*x.M*x.N)
	for t := range x.ia {
		for i := 0; i < x.M; i++ {
			for j := 0; j < x.N; j++ {
				var s float64
				for k := 0; k < x.K; k++ {
					s += float64(a[(x.ia[t]*x.M+i)*x.K+k]) * float64(b[(x.ib[t]*x.K+k)*x.N+j])
				}
				out[(t*x.M+i)*x.N+j] = float32(s)
			}
		}
	}
	return out
}

// RefMatMulBackward returns da (shape of a) and db (shape of b) for dc:
// da[ia(t)] += dc[t] @ b[ib(t)]^T and db[ib(t)] += a[ia(t)]^T @ dc[t].
func RefMatMulBackward(dc, a []float32, as kernels.Shape, b []float32, bs kernels.Shape) (da, db []float32) {
	x := newMatmulRefIndex(as, bs)
	da64 := make([]float64, len(a))
	db64 := make([]float64, len(b))
	for t := range x.ia {
		for i := 0; i < x.M; i++ {
			for j := 0; j < x.N; j++ {
				d := float64(dc[(t*x.M+i)*x.N+j])
				for k := 0; k < x.K; k++ {
					ai := (x.ia[t]*x.M+i)*x.K + k
					bi := (x.ib[t]*x.K+k)*x.N + j
					da64[ai] += d * float64(b[bi])
					db64[bi] += d * float64(a[ai])
				}
			}
		}
	}
	return linconvTo32(da64), linconvTo32(db64)
}
