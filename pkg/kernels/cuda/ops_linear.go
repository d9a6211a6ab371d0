//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

const gemmTile = 64 // BM and BN of gemm.cu

// sgemm queues C[z] = alpha*A[z]*B[z] + beta*C[z] for z < batch (see
// gemm.cu for the strides and offsets): gemm.cu's FP32 kernel, or in the
// fp16 and bf16 math modes tensorcore.cu's with the same arguments. It
// runs on the owner goroutine.
func (b *Backend) sgemm(c, a, bb any, m, n, k, sam, sak, sbk, sbn int, alpha, beta float32, offs []int64, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	var po any = uint64(0)
	if offs != nil {
		p, err := b.stageInts(offs)
		if err != nil {
			return err
		}
		po = p
	}
	if batch > 65535 {
		return fmt.Errorf("%w: cuda: gemm batch of %d (want <= 65535)", kernels.ErrUnsupported, batch)
	}
	name, tm, tn := "sgemm", gemmTile, gemmTile
	if mode := b.math.Load(); mode != mathFP32 {
		tm, tn = tcTileM(m), tcTileN
		name = tcKernel("gemm", mode, tm)
	}
	grid := [3]int{(n + tn - 1) / tn, (m + tm - 1) / tm, batch}
	if grid[1] > 65535 {
		return fmt.Errorf("%w: cuda: gemm with M=%d (want <= %d)", kernels.ErrUnsupported, m, 65535*tm)
	}
	return b.launchGrid(name, grid, 256, c, a, bb, int64(m), int64(n), int64(k),
		int64(sam), int64(sak), int64(sbk), int64(sbn), alpha, beta, po)
}

// Gemm implements kernels.LinearOps: c = alpha*op(a)*op(b) + beta*c (c is
// not read when beta is 0).
func (b *Backend) Gemm(c, x, y *kernels.Tensor, p kernels.GemmParams) error {
	if x == nil || y == nil {
		return fmt.Errorf("%w: gemm: nil operand", kernels.ErrShape)
	}
	out, err := kernels.GemmOutShape(x.Shape, y.Shape, p)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("gemm: c", c, out); err != nil {
		return err
	}
	m, n := out[0], out[1]
	k := x.Shape[1]
	sam, sak := x.Shape[1], 1
	if p.TransA {
		k = x.Shape[0]
		sam, sak = 1, x.Shape[1]
	}
	sbk, sbn := y.Shape[1], 1
	if p.TransB {
		sbk, sbn = 1, y.Shape[1]
	}
	return b.do(func() error {
		ps, err := b.addrs("gemm", []string{"c", "a", "b"}, c, x, y)
		if err != nil {
			return err
		}
		return b.sgemm(ps[0], ps[1], ps[2], m, n, k, sam, sak, sbk, sbn, p.Alpha, p.Beta, nil, 1)
	})
}

// MatMul implements kernels.LinearOps (ONNX MatMul): one batched SGEMM
// launch, a z-block per broadcast batch index, with the element offsets
// of each batch's A and B staged; an unbatched b folds the batch into M.
func (b *Backend) MatMul(c, x, y *kernels.Tensor) error {
	if x == nil || y == nil {
		return fmt.Errorf("%w: matmul: nil operand", kernels.ErrShape)
	}
	p, err := kernels.PlanMatMul(x.Shape, y.Shape)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("matmul: c", c, p.Out); err != nil {
		return err
	}
	nb := p.Batch.Numel()
	var offs []int64
	m, batch := p.M, nb
	if p.BBatch.Numel() == 1 {
		m, batch = nb*p.M, 1
	} else {
		ia, ib := batchIndex(p.Batch, p.ABatch), batchIndex(p.Batch, p.BBatch)
		offs = make([]int64, 2*nb)
		for i := range nb {
			offs[2*i] = int64(ia[i] * p.M * p.K)
			offs[2*i+1] = int64(ib[i] * p.K * p.N)
		}
	}
	return b.do(func() error {
		ps, err := b.addrs("matmul", []string{"c", "a", "b"}, c, x, y)
		if err != nil {
			return err
		}
		// K == 0 writes zeros: the kernel's loop over K is empty.
		return b.sgemm(ps[0], ps[1], ps[2], m, p.N, p.K, p.K, 1, p.N, 1, 1, 0, offs, batch)
	})
}

// batchIndex maps each index of the broadcast batch shape to the flat
// index of the operand's batch shape (same rank, extents equal or 1).
func batchIndex(batch, op kernels.Shape) []int {
	n := batch.Numel()
	idx := make([]int, n)
	st := op.Strides()
	for i := range n {
		r, o := i, 0
		for d := len(batch) - 1; d >= 0; d-- {
			q := r % batch[d]
			r /= batch[d]
			if op[d] != 1 {
				o += q * st[d]
			}
		}
		idx[i] = o
	}
	return idx
}
