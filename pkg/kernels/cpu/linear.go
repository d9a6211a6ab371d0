package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// Gemm implements kernels.LinearOps: c = alpha*op(a)*op(b) + beta*c, split
// across threads by rows or columns (see gemm).
func (c *CPU) Gemm(cc, a, b *kernels.Tensor, p kernels.GemmParams) error {
	ad, err := host("gemm: a", a)
	if err != nil {
		return err
	}
	bd, err := host("gemm: b", b)
	if err != nil {
		return err
	}
	cd, err := host("gemm: c", cc)
	if err != nil {
		return err
	}
	var key gemmKey
	cacheable := len(a.Shape) == 2 && len(b.Shape) == 2
	if cacheable {
		key.p = p
		copy(key.a[:], a.Shape)
		copy(key.b[:], b.Shape)
	}
	out, hit := c.plans.gemm.get(key)
	if !cacheable || !hit {
		if out, err = kernels.GemmOutShape(a.Shape, b.Shape, p); err != nil {
			return err
		}
		if cacheable {
			c.plans.gemm.put(key, out)
		}
	}
	if err := kernels.CheckShape("gemm: c", cc, out); err != nil {
		return err
	}
	m, n := out[0], out[1]
	k := a.Shape[1]
	if p.TransA {
		k = a.Shape[0]
	}
	if k == 0 {
		// sgemm needs operands to point at; c = beta*c.
		for i := range cd {
			cd[i] *= p.Beta
			if p.Beta == 0 {
				cd[i] = 0
			}
		}
		return nil
	}
	c.gemm(p.TransA, p.TransB, m, n, k, p.Alpha, ad, a.Shape[1], bd, b.Shape[1], p.Beta, cd, n)
	return nil
}

// gemmKey identifies a Gemm's shapes in the backend's plan cache.
type gemmKey struct {
	a, b [2]int
	p    kernels.GemmParams
}

// gemmBatch is a set of same-shaped products out[s] = sum over (i,j) in
// groups[s] of op(A_i)*op(B_j), with A_i = a[i*aStride:], B_j = b[j*bStride:]
// and out[s] = out[s*outStride:].
type gemmBatch struct {
	transA, transB bool
	m, n, k        int
	a              []float32
	lda, aStride   int
	b              []float32
	ldb, bStride   int
	out            []float32
	ldc, outStride int
	groups         [][][2]int
}

// run computes every group. With enough groups to keep the threads busy it
// runs groups in parallel, each a chain of single-threaded sgemm calls;
// otherwise it runs groups one after the other with the product split
// across threads. Each group is written by exactly one chunk, so no two
// threads touch the same output.
func (c *CPU) runGemmBatch(g *gemmBatch) {
	one := func(s int, mm func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int)) {
		beta := float32(0)
		for _, ij := range g.groups[s] {
			mm(g.transA, g.transB, g.m, g.n, g.k, 1, g.a[ij[0]*g.aStride:], g.lda, g.b[ij[1]*g.bStride:], g.ldb, beta, g.out[s*g.outStride:], g.ldc)
			beta = 1
		}
	}
	ns := len(g.groups)
	if c.threads > 1 && (ns >= 2*c.threads || (ns >= c.threads && ns%c.threads == 0)) {
		c.parallel(ns, 1, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				one(s, sgemm)
			}
		})
		return
	}
	for s := 0; s < ns; s++ {
		one(s, c.gemm)
	}
}

// batchIndex returns, for each flat index of the broadcast batch shape, the
// flat index into the operand's own batch shape sub (same rank, dims 1 or
// equal to batch's).
func batchIndex(batch, sub kernels.Shape) []int {
	nb := batch.Numel()
	idx := make([]int, nb)
	bst := batch.Strides()
	sst := sub.Strides()
	for i := 0; i < nb; i++ {
		r, off := i, 0
		for d := range batch {
			q := r / bst[d]
			r -= q * bst[d]
			if sub[d] != 1 {
				off += q * sst[d]
			}
		}
		idx[i] = off
	}
	return idx
}

// MatMul implements kernels.LinearOps (ONNX MatMul). For a of shape
// (B...,M,K) and b of (B...,K,N) it equals, per broadcast batch index i,
//
//	for m, n: c[i][m][n] = sum_k a[ia(i)][m][k] * b[ib(i)][k][n]
//
// An unbatched b folds the batch into M (one GEMM of (B*M,K) x (K,N)).
func (c *CPU) MatMul(cc, a, b *kernels.Tensor) error {
	ad, err := host("matmul: a", a)
	if err != nil {
		return err
	}
	bd, err := host("matmul: b", b)
	if err != nil {
		return err
	}
	cd, err := host("matmul: c", cc)
	if err != nil {
		return err
	}
	p, err := kernels.PlanMatMul(a.Shape, b.Shape)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("matmul: c", cc, p.Out); err != nil {
		return err
	}
	if p.K == 0 {
		clear(cd)
		return nil
	}
	if len(cd) == 0 {
		return nil
	}
	nb := p.Batch.Numel()
	if p.BBatch.Numel() == 1 {
		// a is (nb*M, K) contiguous: one GEMM.
		c.gemm(false, false, nb*p.M, p.N, p.K, 1, ad, p.K, bd, p.N, 0, cd, p.N)
		return nil
	}
	ia, ib := batchIndex(p.Batch, p.ABatch), batchIndex(p.Batch, p.BBatch)
	g := &gemmBatch{m: p.M, n: p.N, k: p.K,
		a: ad, lda: p.K, aStride: p.M * p.K,
		b: bd, ldb: p.N, bStride: p.K * p.N,
		out: cd, ldc: p.N, outStride: p.M * p.N,
		groups: make([][][2]int, nb)}
	for i := range nb {
		g.groups[i] = [][2]int{{ia[i], ib[i]}}
	}
	c.runGemmBatch(g)
	return nil
}

// MatMulBackward implements kernels.LinearOps. With the notation of MatMul:
//
//	da[j] = sum over i with ia(i)==j of dc[i] @ b[ib(i)]^T
//	db[j] = sum over i with ib(i)==j of a[ia(i)]^T @ dc[i]
//
// When the other operand is unbatched the sum folds into one GEMM.
func (c *CPU) MatMulBackward(da, db, dc, a, b *kernels.Tensor) error {
	ad, err := host("matmul_backward: a", a)
	if err != nil {
		return err
	}
	bd, err := host("matmul_backward: b", b)
	if err != nil {
		return err
	}
	dcd, err := host("matmul_backward: dc", dc)
	if err != nil {
		return err
	}
	p, err := kernels.PlanMatMul(a.Shape, b.Shape)
	if err != nil {
		return fmt.Errorf("matmul_backward: %w", err)
	}
	if err := kernels.CheckShape("matmul_backward: dc", dc, p.Out); err != nil {
		return err
	}
	var dad, dbd []float32
	if da != nil {
		if err := kernels.CheckShape("matmul_backward: da", da, a.Shape); err != nil {
			return err
		}
		if dad, err = host("matmul_backward: da", da); err != nil {
			return err
		}
	}
	if db != nil {
		if err := kernels.CheckShape("matmul_backward: db", db, b.Shape); err != nil {
			return err
		}
		if dbd, err = host("matmul_backward: db", db); err != nil {
			return err
		}
	}
	nb := p.Batch.Numel()
	if nb == 0 || p.M == 0 || p.N == 0 || p.K == 0 {
		clear(dad)
		clear(dbd)
		return nil
	}
	ia, ib := batchIndex(p.Batch, p.ABatch), batchIndex(p.Batch, p.BBatch)
	na, nbb := p.ABatch.Numel(), p.BBatch.Numel()
	if dad != nil {
		if nbb == 1 {
			// da (nb*M,K) = dc (nb*M,N) @ b^T.
			c.gemm(false, true, nb*p.M, p.K, p.N, 1, dcd, p.N, bd, p.N, 0, dad, p.K)
		} else {
			// da[j] = sum dc[i] @ b[ib(i)]^T: "a" is dc, "b" is b.
			g := &gemmBatch{transB: true, m: p.M, n: p.K, k: p.N,
				a: dcd, lda: p.N, aStride: p.M * p.N,
				b: bd, ldb: p.N, bStride: p.K * p.N,
				out: dad, ldc: p.K, outStride: p.M * p.K,
				groups: make([][][2]int, na)}
			for i := range nb {
				g.groups[ia[i]] = append(g.groups[ia[i]], [2]int{i, ib[i]})
			}
			c.runGemmBatch(g)
		}
	}
	if dbd != nil {
		if nbb == 1 {
			// b is unbatched, so a's batch is the full batch and a is
			// (nb*M,K) contiguous: db (K,N) = a_flat^T @ dc_flat.
			c.gemm(true, false, p.K, p.N, nb*p.M, 1, ad, p.K, dcd, p.N, 0, dbd, p.N)
			return nil
		}
		g := &gemmBatch{transA: true, m: p.K, n: p.N, k: p.M,
			a: ad, lda: p.K, aStride: p.M * p.K,
			b: dcd, ldb: p.N, bStride: p.M * p.N,
			out: dbd, ldc: p.N, outStride: p.K * p.N,
			groups: make([][][2]int, nbb)}
		for i := range nb {
			g.groups[ib[i]] = append(g.groups[ib[i]], [2]int{ia[i], i})
		}
		c.runGemmBatch(g)
	}
	return nil
}
