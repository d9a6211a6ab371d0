package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

// Reduce kernels. Softmax and ArgMax view x as (outer, n, inner) around
// their axis (kernels.SplitAxis): with inner == 1 (the last axis) each
// outer index is one contiguous row; otherwise the n values of one output
// are inner apart, and the kernels walk blocks of up to colBlock adjacent
// columns together so the inner loops stay contiguous. Parallel units are
// rows, or (outer, column block) pairs; every output element is computed by
// the same loop whatever the thread count, so results do not depend on it.

// axisPlan is the (outer, n, inner) view of a tensor around one axis.
type axisPlan struct{ outer, n, inner int }

// units is the number of parallel tasks: rows when inner is 1, else
// (outer, column block) pairs.
func (p axisPlan) units() int {
	if p.inner == 1 {
		return p.outer
	}
	return p.outer * ((p.inner + colBlock - 1) / colBlock)
}

// grain is how many units make a chunk worth handing to another thread.
func (p axisPlan) grain() int {
	per := p.n * min(p.inner, colBlock)
	return max(1, 16384/max(1, per))
}

// unit returns the offset of unit u's first element in the (outer, n,
// inner) array and its number of columns (1 for a row).
func (p axisPlan) unit(u int) (base, cols int) {
	if p.inner == 1 {
		return u * p.n, 1
	}
	nb := (p.inner + colBlock - 1) / colBlock
	o, j0 := u/nb, (u%nb)*colBlock
	return o*p.n*p.inner + j0, min(colBlock, p.inner-j0)
}

func expf(v float32) float32 { return float32(math.Exp(float64(v))) }

// Softmax implements kernels.ReduceOps along axis (negative counts from
// the end); y and x may be the same tensor. Per slice along axis, with
// m = max_k x[k] (subtracted first, for stability):
//
//	softmax:    y[k] = exp(x[k]-m) / sum_j exp(x[j]-m)
//	logsoftmax: y[k] = (x[k]-m) - log(sum_j exp(x[j]-m))
func (c *CPU) Softmax(y, x *kernels.Tensor, axis int, log bool) error {
	op := map[bool]string{false: "softmax", true: "logsoftmax"}[log]
	xd, err := hostOp(op, "x", x)
	if err != nil {
		return err
	}
	outer, n, inner, err := kernels.SplitAxis(x.Shape, axis)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": y", y, x.Shape); err != nil {
		return err
	}
	yd, err := hostOp(op, "y", y)
	if err != nil {
		return err
	}
	p := axisPlan{outer, n, inner}
	if n == 0 {
		return nil
	}
	c.parallel(p.units(), p.grain(), func(lo, hi int) {
		var m, s []float32
		if inner > 1 {
			m, s = make([]float32, colBlock), make([]float32, colBlock)
		}
		for u := lo; u < hi; u++ {
			base, cols := p.unit(u)
			if inner == 1 {
				softmaxRow(yd[base:base+n], xd[base:base+n], log)
				continue
			}
			softmaxCols(yd[base:], xd[base:], n, inner, m[:cols], s[:cols], log)
		}
	})
	return nil
}

// softmaxRow is Softmax of one contiguous row.
func softmaxRow(y, x []float32, log bool) {
	y = y[:len(x)]
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	if log {
		var s float32
		for _, v := range x {
			s += expf(v - m)
		}
		ls := float32(math.Log(float64(s)))
		for i, v := range x {
			y[i] = (v - m) - ls
		}
		return
	}
	var s float32
	for i, v := range x {
		e := expf(v - m)
		y[i] = e
		s += e
	}
	inv := 1 / s
	for i := range y {
		y[i] *= inv
	}
}

// softmaxCols is Softmax of len(m) adjacent columns: column j holds
// x[k*stride+j] for k < n. m and s are scratch of the block's width.
func softmaxCols(y, x []float32, n, stride int, m, s []float32, log bool) {
	w := len(m)
	copy(m, x[:w])
	for k := 1; k < n; k++ {
		row := x[k*stride : k*stride+w]
		for j, v := range row {
			m[j] = max(m[j], v)
		}
	}
	clear(s)
	for k := range n {
		row := x[k*stride : k*stride+w]
		if log {
			for j, v := range row {
				s[j] += expf(v - m[j])
			}
			continue
		}
		yr := y[k*stride : k*stride+w]
		for j, v := range row {
			e := expf(v - m[j])
			yr[j] = e
			s[j] += e
		}
	}
	for j := range s {
		if log {
			s[j] = float32(math.Log(float64(s[j])))
		} else {
			s[j] = 1 / s[j]
		}
	}
	for k := range n {
		yr := y[k*stride : k*stride+w]
		if log {
			xr := x[k*stride : k*stride+w]
			for j, v := range xr {
				yr[j] = (v - m[j]) - s[j]
			}
			continue
		}
		for j := range yr {
			yr[j] *= s[j]
		}
	}
}

// SoftmaxBackward implements kernels.ReduceOps from the forward output y;
// dx may be the same tensor as dy. Per slice along axis:
//
//	softmax:    dx[k] = y[k] * (dy[k] - sum_j dy[j]*y[j])
//	logsoftmax: dx[k] = dy[k] - exp(y[k]) * sum_j dy[j]
func (c *CPU) SoftmaxBackward(dx, dy, y *kernels.Tensor, axis int, log bool) error {
	if dx == nil {
		return nil
	}
	op := map[bool]string{false: "softmax backward", true: "logsoftmax backward"}[log]
	yd, err := hostOp(op, "y", y)
	if err != nil {
		return err
	}
	outer, n, inner, err := kernels.SplitAxis(y.Shape, axis)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": dy", dy, y.Shape); err != nil {
		return err
	}
	if err := kernels.CheckShape(op+": dx", dx, y.Shape); err != nil {
		return err
	}
	dyd, err := hostOp(op, "dy", dy)
	if err != nil {
		return err
	}
	dxd, err := hostOp(op, "dx", dx)
	if err != nil {
		return err
	}
	p := axisPlan{outer, n, inner}
	if n == 0 {
		return nil
	}
	c.parallel(p.units(), p.grain(), func(lo, hi int) {
		s := make([]float32, min(inner, colBlock))
		for u := lo; u < hi; u++ {
			base, cols := p.unit(u)
			softmaxBackCols(dxd[base:], dyd[base:], yd[base:], n, inner, s[:cols], log)
		}
	})
	return nil
}

// softmaxBackCols is SoftmaxBackward of len(s) adjacent columns (a row
// when stride is 1 and len(s) is 1); s is scratch.
func softmaxBackCols(dx, dy, y []float32, n, stride int, s []float32, log bool) {
	w := len(s)
	clear(s)
	if stride == 1 { // one contiguous row
		y, dy, dx = y[:n], dy[:n], dx[:n]
		var acc float32
		if log {
			for _, g := range dy {
				acc += g
			}
			for k, g := range dy {
				dx[k] = g - expf(y[k])*acc
			}
			return
		}
		for k, g := range dy {
			acc += g * y[k]
		}
		for k, g := range dy {
			dx[k] = y[k] * (g - acc)
		}
		return
	}
	for k := range n {
		g := dy[k*stride : k*stride+w]
		if log {
			for j, v := range g {
				s[j] += v
			}
			continue
		}
		yr := y[k*stride : k*stride+w]
		for j, v := range g {
			s[j] += v * yr[j]
		}
	}
	for k := range n {
		g, yr, d := dy[k*stride:k*stride+w], y[k*stride:k*stride+w], dx[k*stride:k*stride+w]
		if log {
			for j, v := range g {
				d[j] = v - expf(yr[j])*s[j]
			}
			continue
		}
		for j, v := range g {
			d[j] = yr[j] * (v - s[j])
		}
	}
}

// ReduceSum implements kernels.ReduceOps: y[I] = sum over the reduced
// axes J of x[I, J] (I the kept axes, in order), accumulated in float64.
// axes follow kernels.NormalizeAxes (negative from the end; none means all).
func (c *CPU) ReduceSum(y, x *kernels.Tensor, axes []int) error {
	return c.reduce("reducesum", y, x, axes, false)
}

// ReduceMean implements kernels.ReduceOps: ReduceSum divided by the number
// of elements summed per output (NaN when that number is 0).
func (c *CPU) ReduceMean(y, x *kernels.Tensor, axes []int) error {
	return c.reduce("reducemean", y, x, axes, true)
}

func (c *CPU) reduce(op string, y, x *kernels.Tensor, axes []int, mean bool) error {
	xd, err := hostOp(op, "x", x)
	if err != nil {
		return err
	}
	ys, err := kernels.ReduceOutShape(x.Shape, axes, true)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	yd, err := hostOp(op, "y", y)
	if err != nil {
		return err
	}
	if len(yd) != ys.Numel() {
		return fmt.Errorf("%w: %s: y has shape %v (want %d elements, x %v reduced over axes %v)", kernels.ErrShape, op, y.Shape, ys.Numel(), x.Shape, axes)
	}
	red, scale := kernels.ReduceAxes(x.Shape, axes, mean)
	c.sumAxes(yd, xd, nil, x.Shape, red, scale)
	return nil
}

// ArgMax implements kernels.ReduceOps: y (x's shape without axis, or with
// it set to 1) holds, as float32, the index of the first maximum along
// axis; a NaN counts as larger than any number (NumPy's argmax).
//
//	for o, j: y[o,j] = min { k : x[o,k,j] >= x[o,k',j] for all k' }
func (c *CPU) ArgMax(y, x *kernels.Tensor, axis int) error {
	xd, err := host("argmax: x", x)
	if err != nil {
		return err
	}
	ys, err := kernels.ArgMaxOutShape(x.Shape, axis, true)
	if err != nil {
		return err
	}
	yd, err := host("argmax: y", y)
	if err != nil {
		return err
	}
	if len(yd) != ys.Numel() {
		return fmt.Errorf("%w: argmax: y has shape %v (want %d elements, x %v without axis %d)", kernels.ErrShape, y.Shape, ys.Numel(), x.Shape, axis)
	}
	outer, n, inner, _ := kernels.SplitAxis(x.Shape, axis)
	p := axisPlan{outer, n, inner}
	c.parallel(p.units(), p.grain(), func(lo, hi int) {
		best := make([]float32, min(inner, colBlock))
		for u := lo; u < hi; u++ {
			base, cols := p.unit(u)
			if inner == 1 {
				yd[u] = float32(argmaxRow(xd[base : base+n]))
				continue
			}
			o, j0 := base/(n*inner), base%(n*inner)
			b, idx := best[:cols], yd[o*inner+j0:o*inner+j0+cols]
			copy(b, xd[base:base+cols])
			clear(idx)
			for k := 1; k < n; k++ {
				row := xd[base+k*inner : base+k*inner+cols]
				for j, v := range row {
					if v > b[j] || (v != v && b[j] == b[j]) {
						b[j], idx[j] = v, float32(k)
					}
				}
			}
		}
	})
	return nil
}

// argmaxRow is the index of the first maximum of x (the first NaN if any).
func argmaxRow(x []float32) int {
	bi, b := 0, x[0]
	for k, v := range x {
		if v > b || (v != v && b == b) {
			bi, b = k, v
		}
	}
	return bi
}
