//go:build cuda

package cuda

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

var _ kernels.FusedBNReluOps = (*Backend)(nil)

// sumThreads is backward.cu's SUM_THREADS: the block size of every kernel
// that sums with block_sum.
const sumThreads = 256

// serialBelow is the reduced length under which sum_axes gives each output
// one thread instead of one block.
const serialBelow = 64

// sumPlan is the metadata of backward.cu's sum_axes: the kept and the
// reduced axes of the source index space (extent-1 axes dropped,
// neighbours merged where every operand's strides allow), each with its
// element strides into the three sources.
type sumPlan struct {
	kext, rext []int
	ks, rs     [3][]int
}

// newSumPlan plans dst = sum over the axes of shape where red is true;
// strides[k] are source k's element strides over shape's axes (0 along an
// axis the source is broadcast along).
func newSumPlan(shape kernels.Shape, red []bool, strides [3][]int) sumPlan {
	var p sumPlan
	lastRed := -1 // kind of the last axis appended: 0 kept, 1 reduced
	for i, d := range shape {
		if d == 1 {
			continue
		}
		kind := 0
		if red[i] {
			kind = 1
		}
		ext, st := &p.kext, &p.ks
		if kind == 1 {
			ext, st = &p.rext, &p.rs
		}
		if lastRed == kind && len(*ext) > 0 {
			j := len(*ext) - 1
			merge := true
			for k := range 3 {
				if st[k][j] != strides[k][i]*d {
					merge = false
				}
			}
			if merge {
				(*ext)[j] *= d
				for k := range 3 {
					st[k][j] = strides[k][i]
				}
				continue
			}
		}
		*ext = append(*ext, d)
		for k := range 3 {
			st[k] = append(st[k], strides[k][i])
		}
		lastRed = kind
	}
	return p
}

func (p sumPlan) meta() []int64 {
	var m []int64
	for _, v := range [][]int{p.kext, p.ks[0], p.ks[1], p.ks[2], p.rext, p.rs[0], p.rs[1], p.rs[2]} {
		for _, x := range v {
			m = append(m, int64(x))
		}
	}
	return m
}

// sumAxes queues sum_axes with plan p: dst[o] = scale * sum_r term(o, r)
// (op < 0: the sum of s0; else BinaryBackward's dc * d(a op b)/d(which)).
// It runs on the owner goroutine.
func (b *Backend) sumAxes(dst, s0, s1, s2 any, p sumPlan, op, which int64, scale float64) error {
	nout := kernels.Shape(p.kext).Numel()
	R := kernels.Shape(p.rext).Numel()
	if nout == 0 {
		return nil
	}
	meta := p.meta()
	pm := any(uint64(0))
	if len(meta) > 0 {
		m, err := b.stageInts(meta)
		if err != nil {
			return err
		}
		pm = m
	}
	args := []any{dst, s0, s1, s2, int64(nout), int64(R), pm, int64(len(p.kext)), int64(len(p.rext)), op, which, math.Float64bits(scale)}
	if R < serialBelow {
		return b.launch("sum_axes", int64(nout), append(args, int64(1))...)
	}
	grid := int(min(int64(nout), 1<<20))
	return b.launchGrid("sum_axes", [3]int{grid, 1, 1}, sumThreads, append(args, int64(0))...)
}

// ReduceSum implements kernels.ReduceOps: y[I] = sum over the reduced axes
// J of x[I, J], in double per output (as the CPU backend).
func (b *Backend) ReduceSum(y, x *kernels.Tensor, axes []int) error {
	return b.reduce("reducesum", y, x, axes, false)
}

// ReduceMean implements kernels.ReduceOps: ReduceSum divided by the number
// of elements summed per output (NaN when that number is 0).
func (b *Backend) ReduceMean(y, x *kernels.Tensor, axes []int) error {
	return b.reduce("reducemean", y, x, axes, true)
}

func (b *Backend) reduce(op string, y, x *kernels.Tensor, axes []int, mean bool) error {
	if x == nil {
		return fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	ys, err := kernels.ReduceOutShape(x.Shape, axes, true)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if y == nil {
		return fmt.Errorf("%w: %s: y is nil", kernels.ErrShape, op)
	}
	if y.Numel() != ys.Numel() {
		return fmt.Errorf("%w: %s: y has shape %v (want %d elements, x %v reduced over axes %v)", kernels.ErrShape, op, y.Shape, ys.Numel(), x.Shape, axes)
	}
	red, scale := kernels.ReduceAxes(x.Shape, axes, mean)
	zeros := make([]int, len(x.Shape))
	plan := newSumPlan(x.Shape, red, [3][]int{x.Shape.Strides(), zeros, zeros})
	return b.do(func() error {
		p, err := b.addrs(op, []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		return b.sumAxes(p[0], p[1], p[1], p[1], plan, -1, 0, scale)
	})
}

// BinaryBackward implements kernels.ElementwiseOps: da (a's shape) is the
// sum over a's broadcast axes of dc * dc/da, and likewise db, each output
// summed in double (sum_axes: one thread, or one block, per element of da
// or db; no atomics). da and db are overwritten.
func (b *Backend) BinaryBackward(da, db, dc, x, y *kernels.Tensor, op kernels.BinaryOp) error {
	const name = "binary backward"
	if op < kernels.OpAdd || op > kernels.OpMin {
		return fmt.Errorf("%w: %s: op %d (want OpAdd..OpMin)", kernels.ErrParam, name, op)
	}
	if dc == nil || x == nil || y == nil {
		return fmt.Errorf("%w: %s: nil operand", kernels.ErrShape, name)
	}
	want, err := kernels.BroadcastShape(x.Shape, y.Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := kernels.CheckShape(name+": c", dc, want); err != nil {
		return err
	}
	if da != nil {
		if err := kernels.CheckShape(name+": da", da, x.Shape); err != nil {
			return err
		}
	}
	if db != nil {
		if err := kernels.CheckShape(name+": db", db, y.Shape); err != nil {
			return err
		}
	}
	r := len(want)
	bm := broadcastMeta(want, x.Shape, y.Shape)
	strides := [3][]int{want.Strides(), make([]int, r), make([]int, r)}
	for i := range r {
		strides[1][i], strides[2][i] = int(bm[r+i]), int(bm[2*r+i])
	}
	var plans [2]sumPlan
	for k, s := range []kernels.Shape{x.Shape, y.Shape} {
		red := make([]bool, r)
		off := r - len(s)
		for i, d := range want {
			red[i] = d != 1 && (i < off || s[i-off] == 1)
		}
		plans[k] = newSumPlan(want, red, strides)
	}
	return b.do(func() error {
		p, err := b.addrs(name, []string{"dc", "a", "b"}, dc, x, y)
		if err != nil {
			return err
		}
		for k, d := range []*kernels.Tensor{da, db} {
			if d == nil {
				continue
			}
			pd, err := b.addr(name+": "+[]string{"da", "db"}[k], d)
			if err != nil {
				return err
			}
			if dc.Numel() == 0 { // an empty reduced axis: the sums are 0
				if err := zero(pd, d.Numel()); err != nil {
					return err
				}
				continue
			}
			if err := b.sumAxes(pd, p[0], p[1], p[2], plans[k], int64(op), int64(k), 1); err != nil {
				return err
			}
		}
		return nil
	})
}

// bnCheck checks batch normalisation's x (N,C,...) and the per-channel
// tensors (nil ones skipped) and returns N, C and the spatial size S.
func bnCheck(op string, x *kernels.Tensor, ch ...*kernels.Tensor) (n, c, s int, err error) {
	if x == nil {
		return 0, 0, 0, fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	if len(x.Shape) < 2 {
		return 0, 0, 0, fmt.Errorf("%w: %s: x is %v (want rank >= 2, (N,C,...))", kernels.ErrShape, op, x.Shape)
	}
	n, c = x.Shape[0], x.Shape[1]
	s = x.Numel() / max(1, n*c)
	for _, t := range ch {
		if t != nil && t.Numel() != c {
			return 0, 0, 0, fmt.Errorf("%w: %s: per-channel tensor is %v (want (%d))", kernels.ErrShape, op, t.Shape, c)
		}
	}
	return n, c, s, nil
}

// bnGrid is the block count of the per-channel kernels.
func bnGrid(c int) int { return max(1, min(c, 1<<20)) }

// BatchNormTraining implements kernels.NormOps (backward.cu's bn_train,
// one block per channel): normalise with the batch mean and biased
// variance (double, two passes), save mean and 1/sqrt(var+eps), and update
// the running statistics with the unbiased variance.
func (b *Backend) BatchNormTraining(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return b.bnTraining("batchnorm training", y, x, scale, bias, runMean, runVar, saveMean, saveInvStd, eps, momentum, false)
}

// BatchNormTrainingRelu implements kernels.FusedBNReluOps:
// BatchNormTraining with y = Relu(y) applied as y is written.
func (b *Backend) BatchNormTrainingRelu(y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32) error {
	return b.bnTraining("batchnorm+relu training", y, x, scale, bias, runMean, runVar, saveMean, saveInvStd, eps, momentum, true)
}

func (b *Backend) bnTraining(op string, y, x, scale, bias, runMean, runVar, saveMean, saveInvStd *kernels.Tensor, eps, momentum float32, relu bool) error {
	if err := sameSize(op, []string{"x", "y"}, x, y); err != nil {
		return err
	}
	n, ch, s, err := bnCheck(op, x, scale, bias, runMean, runVar, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || bias == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: %s: scale, bias, saveMean and saveInvStd are required", kernels.ErrShape, op)
	}
	if n*s < 2 {
		return fmt.Errorf("%w: %s: %d values per channel in x %v (want >= 2)", kernels.ErrShape, op, n*s, x.Shape)
	}
	return b.do(func() error {
		p, err := b.addrs(op, []string{"y", "x", "scale", "bias", "saveMean", "saveInvStd"}, y, x, scale, bias, saveMean, saveInvStd)
		if err != nil {
			return err
		}
		rm, err := b.optAddr(op+": runMean", runMean)
		if err != nil {
			return err
		}
		rv, err := b.optAddr(op+": runVar", runVar)
		if err != nil {
			return err
		}
		if ch == 0 {
			return nil
		}
		return b.launchGrid("bn_train", [3]int{bnGrid(ch), 1, 1}, sumThreads, p[0], p[1], p[2], p[3], rm, rv, p[4], p[5],
			eps, momentum, int64(n), int64(ch), int64(s), boolArg(relu))
	})
}

// BatchNormBackward implements kernels.NormOps for the training-mode
// forward (backward.cu's bn_backward, one block per channel, sums in
// double).
func (b *Backend) BatchNormBackward(dx, dscale, dbias, dy, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	return b.bnBackward("batchnorm backward", dx, dscale, dbias, dy, nil, x, scale, saveMean, saveInvStd)
}

// BatchNormBackwardRelu implements kernels.FusedBNReluOps:
// BatchNormBackward of dy read as (y > 0 ? dy : 0).
func (b *Backend) BatchNormBackwardRelu(dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	if y == nil {
		return fmt.Errorf("%w: batchnorm+relu backward: y is required", kernels.ErrShape)
	}
	return b.bnBackward("batchnorm+relu backward", dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd)
}

func (b *Backend) bnBackward(op string, dx, dscale, dbias, dy, y, x, scale, saveMean, saveInvStd *kernels.Tensor) error {
	if err := sameSize(op, []string{"x", "dy"}, x, dy); err != nil {
		return err
	}
	n, ch, s, err := bnCheck(op, x, dscale, dbias, scale, saveMean, saveInvStd)
	if err != nil {
		return err
	}
	if scale == nil || saveMean == nil || saveInvStd == nil {
		return fmt.Errorf("%w: %s: scale, saveMean and saveInvStd are required", kernels.ErrShape, op)
	}
	if dx != nil {
		if err := sameSize(op, []string{"x", "dx"}, x, dx); err != nil {
			return err
		}
	}
	if y != nil {
		if err := sameSize(op, []string{"x", "y"}, x, y); err != nil {
			return err
		}
	}
	if dx == nil && dscale == nil && dbias == nil {
		return nil
	}
	return b.do(func() error {
		p, err := b.addrs(op, []string{"dy", "x", "scale", "saveMean", "saveInvStd"}, dy, x, scale, saveMean, saveInvStd)
		if err != nil {
			return err
		}
		var opt [4]any
		for i, t := range []*kernels.Tensor{dx, dscale, dbias, y} {
			if opt[i], err = b.optAddr(op+": "+[]string{"dx", "dscale", "dbias", "y"}[i], t); err != nil {
				return err
			}
		}
		if ch == 0 {
			return nil
		}
		return b.launchGrid("bn_backward", [3]int{bnGrid(ch), 1, 1}, sumThreads, opt[0], opt[1], opt[2], p[0], opt[3], p[1], p[2], p[3], p[4],
			int64(n), int64(ch), int64(s))
	})
}

// MatMulBackward implements kernels.LinearOps with the SGEMM kernel. With
// the notation of MatMul:
//
//	da[j] = sum over i with ia(i)==j of dc[i] @ b[ib(i)]^T
//	db[j] = sum over i with ib(i)==j of a[ia(i)]^T @ dc[i]
//
// When the other operand is unbatched the sum folds into one GEMM;
// otherwise every j has the same number G of terms (broadcasting is a
// regular product), and G batched launches add them in i order (beta 0,
// then 1).
func (b *Backend) MatMulBackward(da, db, dc, x, y *kernels.Tensor) error {
	const op = "matmul_backward"
	if x == nil || y == nil || dc == nil {
		return fmt.Errorf("%w: %s: nil operand", kernels.ErrShape, op)
	}
	p, err := kernels.PlanMatMul(x.Shape, y.Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": dc", dc, p.Out); err != nil {
		return err
	}
	if da != nil {
		if err := kernels.CheckShape(op+": da", da, x.Shape); err != nil {
			return err
		}
	}
	if db != nil {
		if err := kernels.CheckShape(op+": db", db, y.Shape); err != nil {
			return err
		}
	}
	nb := p.Batch.Numel()
	M, K, N := p.M, p.K, p.N
	ia, ib := batchIndex(p.Batch, p.ABatch), batchIndex(p.Batch, p.BBatch)
	na, nbb := p.ABatch.Numel(), p.BBatch.Numel()
	// groups[j] lists the i with index(i) == j, in i order.
	groups := func(idx []int, n int) [][]int {
		g := make([][]int, n)
		for i := range nb {
			g[idx[i]] = append(g[idx[i]], i)
		}
		return g
	}
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dc", "a", "b"}, dc, x, y)
		if err != nil {
			return err
		}
		pa, err := b.optAddr(op+": da", da)
		if err != nil {
			return err
		}
		pb, err := b.optAddr(op+": db", db)
		if err != nil {
			return err
		}
		if nb == 0 || M == 0 || N == 0 || K == 0 {
			for _, t := range []*kernels.Tensor{da, db} {
				if t != nil {
					pt, _ := b.addr(op, t)
					if err := zero(pt, t.Numel()); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if da != nil {
			if nbb == 1 {
				// da (nb*M,K) = dc (nb*M,N) @ b^T.
				if err := b.sgemm(pa, ps[0], ps[2], nb*M, K, N, N, 1, 1, N, 1, 0, nil, 1); err != nil {
					return err
				}
			} else {
				g := groups(ia, na)
				for t := range len(g[0]) {
					offs := make([]int64, 2*na)
					for j := range na {
						i := g[j][t]
						offs[2*j], offs[2*j+1] = int64(i*M*N), int64(ib[i]*K*N)
					}
					if err := b.sgemm(pa, ps[0], ps[2], M, K, N, N, 1, 1, N, 1, float32(min(t, 1)), offs, na); err != nil {
						return err
					}
				}
			}
		}
		if db != nil {
			if nbb == 1 {
				// db (K,N) = a_flat^T (K, nb*M) @ dc_flat (nb*M, N).
				return b.sgemm(pb, ps[1], ps[0], K, N, nb*M, 1, K, N, 1, 1, 0, nil, 1)
			}
			g := groups(ib, nbb)
			for t := range len(g[0]) {
				offs := make([]int64, 2*nbb)
				for j := range nbb {
					i := g[j][t]
					offs[2*j], offs[2*j+1] = int64(ia[i]*M*K), int64(i*M*N)
				}
				if err := b.sgemm(pb, ps[1], ps[0], K, N, M, 1, K, N, 1, 1, float32(min(t, 1)), offs, nbb); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
