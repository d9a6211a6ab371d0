package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// Binary implements kernels.ElementwiseOps. It equals the plain loop
//
//	for every index i of c: c[i] = a[bcast_a(i)] op b[bcast_b(i)]
//
// with NumPy broadcasting; axes are merged so the inner loop runs over a
// contiguous row where each operand is either contiguous or one value
// (same shapes: one long row split across threads; a scalar: a row against
// one value; (1,C,1,1) against (N,C,H,W): rows of H*W against one value;
// a bias (K) against (N,K): rows of K against the same row). c may be the
// same tensor as a or b when that operand has c's shape.
func (c *CPU) Binary(cc, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	cd, ad, bd, p, err := c.binaryArgs("binary", cc, a, b, op)
	if err != nil {
		return err
	}
	forEachRowFor(c, p, binaryRows{op: op, c: cd, a: ad, b: bd, la: p.sa[len(p.sa)-1], lb: p.sb[len(p.sb)-1]})
	return nil
}

// binaryRows is Binary's row body.
type binaryRows struct {
	op      kernels.BinaryOp
	c, a, b []float32
	la, lb  int
}

func (r *binaryRows) row(lo, hi, oa, ob int) {
	n := hi - lo
	binRow(r.op, r.c[lo:hi], r.a[oa:oa+(n-1)*r.la+1], r.b[ob:ob+(n-1)*r.lb+1], r.la, r.lb)
}

func (c *CPU) binaryArgs(op string, cc, a, b *kernels.Tensor, bop kernels.BinaryOp) (cd, ad, bd []float32, p *bplan, err error) {
	if bop < kernels.OpAdd || bop > kernels.OpMin {
		return nil, nil, nil, p, fmt.Errorf("%w: %s: op %d (want OpAdd..OpMin)", kernels.ErrParam, op, bop)
	}
	if ad, err = hostOp(op, "a", a); err != nil {
		return
	}
	if bd, err = hostOp(op, "b", b); err != nil {
		return
	}
	if cd, err = hostOp(op, "c", cc); err != nil {
		return
	}
	p, err = c.broadcastPlan(op, cc.Shape, a.Shape, b.Shape)
	return
}

// binRow computes c[i] = a[i*la] op b[i*lb] for i < len(c); la, lb are 0 or 1.
func binRow(op kernels.BinaryOp, c, a, b []float32, la, lb int) {
	if binRowC(op, c, a, b, la, lb) { // vectorised (fast_c.go)
		return
	}
	switch {
	case la == 1 && lb == 1:
		a, b = a[:len(c)], b[:len(c)]
		switch op {
		case kernels.OpAdd:
			for i := range c {
				c[i] = a[i] + b[i]
			}
		case kernels.OpSub:
			for i := range c {
				c[i] = a[i] - b[i]
			}
		case kernels.OpMul:
			for i := range c {
				c[i] = a[i] * b[i]
			}
		case kernels.OpDiv:
			for i := range c {
				c[i] = a[i] / b[i]
			}
		default:
			for i := range c {
				c[i] = binScalar(op, a[i], b[i])
			}
		}
	case la == 1:
		a = a[:len(c)]
		v := b[0]
		switch op {
		case kernels.OpAdd:
			for i := range c {
				c[i] = a[i] + v
			}
		case kernels.OpSub:
			for i := range c {
				c[i] = a[i] - v
			}
		case kernels.OpMul:
			for i := range c {
				c[i] = a[i] * v
			}
		case kernels.OpDiv:
			for i := range c {
				c[i] = a[i] / v
			}
		default:
			for i := range c {
				c[i] = binScalar(op, a[i], v)
			}
		}
	case lb == 1:
		b = b[:len(c)]
		v := a[0]
		switch op {
		case kernels.OpAdd:
			for i := range c {
				c[i] = v + b[i]
			}
		case kernels.OpSub:
			for i := range c {
				c[i] = v - b[i]
			}
		case kernels.OpMul:
			for i := range c {
				c[i] = v * b[i]
			}
		case kernels.OpDiv:
			for i := range c {
				c[i] = v / b[i]
			}
		default:
			for i := range c {
				c[i] = binScalar(op, v, b[i])
			}
		}
	default:
		v := binScalar(op, a[0], b[0])
		for i := range c {
			c[i] = v
		}
	}
}

func binScalar(op kernels.BinaryOp, x, y float32) float32 {
	switch op {
	case kernels.OpAdd:
		return x + y
	case kernels.OpSub:
		return x - y
	case kernels.OpMul:
		return x * y
	case kernels.OpDiv:
		return x / y
	case kernels.OpPow:
		return float32(math.Pow(float64(x), float64(y)))
	case kernels.OpMax:
		return max(x, y)
	default:
		return min(x, y)
	}
}

// binGrads returns the local derivatives (dc/da, dc/db) at (x, y) with
// output z. Max and Min route the gradient to the larger (smaller) operand
// and split it evenly on a tie, as PyTorch's maximum/minimum do.
func binGrads(op kernels.BinaryOp, x, y, z float32) (float32, float32) {
	switch op {
	case kernels.OpAdd:
		return 1, 1
	case kernels.OpSub:
		return 1, -1
	case kernels.OpMul:
		return y, x
	case kernels.OpDiv:
		return 1 / y, -x / (y * y)
	case kernels.OpPow:
		// PyTorch's pow backward: 0 for a zero exponent (not 0*x^-1), and
		// for the exponent z*log(x), 0 where x == 0 (and y >= 0).
		var ga, gb float32
		if y != 0 {
			ga = y * float32(math.Pow(float64(x), float64(y-1)))
		}
		if x != 0 || y < 0 {
			gb = z * float32(math.Log(float64(x)))
		}
		return ga, gb
	case kernels.OpMax:
		switch {
		case x > y:
			return 1, 0
		case y > x:
			return 0, 1
		}
		return 0.5, 0.5
	default:
		switch {
		case x < y:
			return 1, 0
		case y < x:
			return 0, 1
		}
		return 0.5, 0.5
	}
}

// BinaryBackward implements kernels.ElementwiseOps: da (a's shape) is the
// sum over a's broadcast axes of dc * dc/da, and likewise db:
//
//	for every index i of c: da[bcast_a(i)] += dc[i] * dc/da(a[..], b[..])
//
// (da and db are overwritten, not accumulated into). Add and Sub sum dc
// directly, and so do Mul (of dc*other) and Div's db (of dc*a, then times
// -1/b^2) when only the operand was broadcast; otherwise the full-size
// local gradient goes in place when the operand was not broadcast, else
// into scratch that is then summed.
func (c *CPU) BinaryBackward(da, db, dc, a, b *kernels.Tensor, op kernels.BinaryOp) error {
	dcd, ad, bd, p, err := c.binaryArgs("binary backward", dc, a, b, op)
	if err != nil {
		return err
	}
	for _, g := range []struct {
		name string
		d, x *kernels.Tensor
	}{{"da", da, a}, {"db", db, b}} {
		if g.d == nil {
			continue
		}
		if err := kernels.CheckShape("binary backward: "+g.name, g.d, g.x.Shape); err != nil {
			return err
		}
		if _, err := hostOp("binary backward", g.name, g.d); err != nil {
			return err
		}
	}
	la, lb := p.sa[len(p.sa)-1], p.sb[len(p.sb)-1]
	for k, d := range []*kernels.Tensor{da, db} {
		if d == nil {
			continue
		}
		red := broadcastAxes(d.Shape, dc.Shape)
		if op == kernels.OpAdd || op == kernels.OpSub {
			scale := 1.0
			if op == kernels.OpSub && k == 1 {
				scale = -1
			}
			c.sumAxes(d.Data, dcd, nil, dc.Shape, red, scale)
			continue
		}
		other := bd
		if k == 1 {
			other = ad
		}
		if len(d.Data) != len(dcd) && len(other) == len(dcd) && (op == kernels.OpMul || (op == kernels.OpDiv && k == 1)) {
			// Fused: d = sum over the broadcast axes of dc*other; for Div's
			// db = -sum(dc*a)/b^2, b being constant over each sum.
			c.sumAxes(d.Data, dcd, other, dc.Shape, red, 1)
			if op == kernels.OpDiv {
				for j, v := range bd {
					d.Data[j] = -d.Data[j] / (v * v)
				}
			}
			continue
		}
		g := d.Data
		if len(g) != len(dcd) {
			g = make([]float32, len(dcd))
		}
		c.forEachRow(p, func(lo, hi, oa, ob int) {
			n := hi - lo
			gradRow(op, k, g[lo:hi], dcd[lo:hi], ad[oa:oa+(n-1)*la+1], bd[ob:ob+(n-1)*lb+1], la, lb)
		})
		if len(g) != len(d.Data) {
			c.sumAxes(d.Data, g, nil, dc.Shape, red, 1)
		}
	}
	return nil
}

// gradRow writes g[i] = dc[i] * (dc/da if which is 0, else dc/db) at
// (a[i*la], b[i*lb]); la, lb are 0 or 1. Mul and Div have their own loops.
func gradRow(op kernels.BinaryOp, which int, g, dc, a, b []float32, la, lb int) {
	dc = dc[:len(g)]
	switch {
	case op == kernels.OpMul && which == 0 && lb == 1:
		b = b[:len(g)]
		for i, v := range dc {
			g[i] = v * b[i]
		}
	case op == kernels.OpMul && which == 1 && la == 1:
		a = a[:len(g)]
		for i, v := range dc {
			g[i] = v * a[i]
		}
	case op == kernels.OpDiv && which == 0 && lb == 1:
		b = b[:len(g)]
		for i, v := range dc {
			g[i] = v / b[i]
		}
	default:
		for i, v := range dc {
			x, y := a[i*la], b[i*lb]
			var z float32
			if op == kernels.OpPow {
				z = binScalar(op, x, y)
			}
			gx, gy := binGrads(op, x, y, z)
			if which == 0 {
				g[i] = v * gx
			} else {
				g[i] = v * gy
			}
		}
	}
}

// Axpy implements kernels.ElementwiseOps: y += alpha*x.
func (c *CPU) Axpy(y *kernels.Tensor, alpha float32, x *kernels.Tensor) error {
	yd, err := host("axpy: y", y)
	if err != nil {
		return err
	}
	xd, err := host("axpy: x", x)
	if err != nil {
		return err
	}
	if len(xd) != len(yd) {
		return fmt.Errorf("%w: axpy: x %v and y %v differ in size", kernels.ErrShape, x.Shape, y.Shape)
	}
	c.parallel(len(yd), 32768, func(lo, hi int) {
		xs, ys := xd[lo:hi], yd[lo:hi]
		for i := range ys {
			ys[i] += alpha * xs[i]
		}
	})
	return nil
}

// Scale implements kernels.ElementwiseOps: y *= alpha.
func (c *CPU) Scale(y *kernels.Tensor, alpha float32) error {
	yd, err := host("scale: y", y)
	if err != nil {
		return err
	}
	c.parallel(len(yd), 32768, func(lo, hi int) {
		ys := yd[lo:hi]
		for i := range ys {
			ys[i] *= alpha
		}
	})
	return nil
}
