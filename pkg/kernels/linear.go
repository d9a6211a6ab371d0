package kernels

import "fmt"

// GemmOutShape is the shape of c in c = alpha*op(a)*op(b) + beta*c: a is
// (M,K) or, with p.TransA, (K,M); b is (K,N) or, with p.TransB, (N,K); the
// result is (M,N).
func GemmOutShape(a, b Shape, p GemmParams) (Shape, error) {
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("%w: gemm: a %v, b %v (want rank 2 for both)", ErrShape, a, b)
	}
	m, ka := a[0], a[1]
	if p.TransA {
		m, ka = ka, m
	}
	kb, n := b[0], b[1]
	if p.TransB {
		kb, n = n, kb
	}
	if ka != kb {
		return nil, fmt.Errorf("%w: gemm: inner dimensions of a %v (transA=%v) and b %v (transB=%v) got=%d,%d (want equal)",
			ErrShape, a, p.TransA, b, p.TransB, ka, kb)
	}
	return Shape{m, n}, nil
}

// MatMulPlan is how ONNX MatMul (NumPy matmul) reads its operands after
// rank-1 promotion: a is (ABatch..., M, K), b is (BBatch..., K, N), the
// product is (Batch..., M, N) with Batch the broadcast of ABatch and BBatch
// (all three padded on the left with 1s to the same rank), and Out is the
// output shape with the promoted unit dimensions removed again.
type MatMulPlan struct {
	M, K, N        int
	ABatch, BBatch Shape
	Batch          Shape
	Out            Shape
	ARank1, BRank1 bool
}

// PlanMatMul checks the operand shapes of MatMul and returns its plan.
func PlanMatMul(a, b Shape) (MatMulPlan, error) {
	var p MatMulPlan
	if len(a) == 0 || len(b) == 0 {
		return p, fmt.Errorf("%w: matmul: a %v, b %v (want rank >= 1 for both)", ErrShape, a, b)
	}
	pa, pb := a.Clone(), b.Clone()
	if len(pa) == 1 {
		p.ARank1 = true
		pa = Shape{1, pa[0]}
	}
	if len(pb) == 1 {
		p.BRank1 = true
		pb = Shape{pb[0], 1}
	}
	p.M, p.K = pa[len(pa)-2], pa[len(pa)-1]
	kb := pb[len(pb)-2]
	p.N = pb[len(pb)-1]
	if p.K != kb {
		return p, fmt.Errorf("%w: matmul: a %v and b %v: inner dimensions got=%d,%d (want equal)", ErrShape, a, b, p.K, kb)
	}
	ab, bb := pa[:len(pa)-2], pb[:len(pb)-2]
	r := max(len(ab), len(bb))
	p.ABatch, p.BBatch, p.Batch = make(Shape, r), make(Shape, r), make(Shape, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := i - (r - len(ab)); j >= 0 {
			da = ab[j]
		}
		if j := i - (r - len(bb)); j >= 0 {
			db = bb[j]
		}
		p.ABatch[i], p.BBatch[i] = da, db
		switch {
		case da == db || db == 1:
			p.Batch[i] = da
		case da == 1:
			p.Batch[i] = db
		default:
			return p, fmt.Errorf("%w: matmul: batch dimensions of a %v and b %v do not broadcast (got %d and %d at batch axis %d)", ErrShape, a, b, da, db, i)
		}
	}
	p.Out = p.Batch.Clone()
	if !p.ARank1 {
		p.Out = append(p.Out, p.M)
	}
	if !p.BRank1 {
		p.Out = append(p.Out, p.N)
	}
	return p, nil
}

// MatMulOutShape is the output shape of ONNX MatMul on a and b.
func MatMulOutShape(a, b Shape) (Shape, error) {
	p, err := PlanMatMul(a, b)
	if err != nil {
		return nil, err
	}
	return p.Out, nil
}
