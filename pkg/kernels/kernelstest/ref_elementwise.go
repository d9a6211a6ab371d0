package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain reference loops for the element-wise family, in float64, one output
// element at a time, with NumPy broadcasting spelled out index by index.

// ewIndex returns the multi-index of flat index i in shape s.
func ewIndex(i int, s kernels.Shape) []int {
	idx := make([]int, len(s))
	for k := len(s) - 1; k >= 0; k-- {
		idx[k] = i % s[k]
		i /= s[k]
	}
	return idx
}

// ewSource is the flat index into x (shape xs, aligned at the last axis)
// that output multi-index idx reads: 0 on the axes where x has extent 1.
func ewSource(idx []int, xs kernels.Shape) int {
	off := len(idx) - len(xs)
	f := 0
	for k, d := range xs {
		v := 0
		if d != 1 {
			v = idx[off+k]
		}
		f = f*d + v
	}
	return f
}

// refBinaryOp is one element of a op b.
func refBinaryOp(op kernels.BinaryOp, x, y float64) float64 {
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
		return math.Pow(x, y)
	case kernels.OpMax:
		return math.Max(x, y)
	}
	return math.Min(x, y)
}

// refBinaryGrad is (dc/da, dc/db) at (x, y): Max and Min split a tie
// evenly (PyTorch's maximum/minimum); Pow uses y*x^(y-1) and x^y*log(x).
func refBinaryGrad(op kernels.BinaryOp, x, y float64) (float64, float64) {
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
		return y * math.Pow(x, y-1), math.Pow(x, y) * math.Log(x)
	}
	bigger := x > y
	if op == kernels.OpMin {
		bigger = x < y
	}
	switch {
	case x == y:
		return 0.5, 0.5
	case bigger:
		return 1, 0
	}
	return 0, 1
}

// refBinary is c = a op b; cs is the broadcast shape.
func refBinary(op kernels.BinaryOp, a []float32, as kernels.Shape, b []float32, bs kernels.Shape, cs kernels.Shape) []float32 {
	c := make([]float32, cs.Numel())
	for i := range c {
		idx := ewIndex(i, cs)
		c[i] = float32(refBinaryOp(op, float64(a[ewSource(idx, as)]), float64(b[ewSource(idx, bs)])))
	}
	return c
}

// refBinaryBackward is (da, db): dc times the local derivative, summed
// into the element of each operand that the output element read.
func refBinaryBackward(op kernels.BinaryOp, dc, a []float32, as kernels.Shape, b []float32, bs kernels.Shape, cs kernels.Shape) ([]float32, []float32) {
	ga, gb := make([]float64, len(a)), make([]float64, len(b))
	for i, g := range dc {
		idx := ewIndex(i, cs)
		ia, ib := ewSource(idx, as), ewSource(idx, bs)
		dx, dy := refBinaryGrad(op, float64(a[ia]), float64(b[ib]))
		ga[ia] += float64(g) * dx
		gb[ib] += float64(g) * dy
	}
	da, db := make([]float32, len(a)), make([]float32, len(b))
	for i, v := range ga {
		da[i] = float32(v)
	}
	for i, v := range gb {
		db[i] = float32(v)
	}
	return da, db
}
