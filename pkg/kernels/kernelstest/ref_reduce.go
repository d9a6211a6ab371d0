package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain reference loops for the reduce family, in float64, one element at a
// time. axis and axes are already normalised (non-negative).

// rdFlat is the flat index of idx in shape s.
func rdFlat(idx []int, s kernels.Shape) int {
	f := 0
	for k, v := range idx {
		f = f*s[k] + v
	}
	return f
}

// refSoftmax is Softmax (or LogSoftmax) of x along axis: for every slice
// through axis, exp(x)/sum exp(x), or x - log(sum exp(x)), with the max
// subtracted first.
func refSoftmax(x []float32, s kernels.Shape, axis int, log bool) []float32 {
	y := make([]float32, len(x))
	n, stride := s[axis], s[axis+1:].Numel()
	for i := range x {
		idx := ewIndex(i, s)
		if idx[axis] != 0 {
			continue
		}
		m := math.Inf(-1)
		for k := 0; k < n; k++ {
			m = math.Max(m, float64(x[i+k*stride]))
		}
		var sum float64
		for k := 0; k < n; k++ {
			sum += math.Exp(float64(x[i+k*stride]) - m)
		}
		for k := 0; k < n; k++ {
			v := float64(x[i+k*stride]) - m
			if log {
				y[i+k*stride] = float32(v - math.Log(sum))
			} else {
				y[i+k*stride] = float32(math.Exp(v) / sum)
			}
		}
	}
	return y
}

// refSoftmaxBackward is dx from dy and the forward output y:
// softmax dx = y*(dy - sum dy*y), logsoftmax dx = dy - exp(y)*sum dy.
func refSoftmaxBackward(dy, y []float32, s kernels.Shape, axis int, log bool) []float32 {
	dx := make([]float32, len(y))
	n, stride := s[axis], s[axis+1:].Numel()
	for i := range y {
		if ewIndex(i, s)[axis] != 0 {
			continue
		}
		var acc float64
		for k := 0; k < n; k++ {
			j := i + k*stride
			if log {
				acc += float64(dy[j])
			} else {
				acc += float64(dy[j]) * float64(y[j])
			}
		}
		for k := 0; k < n; k++ {
			j := i + k*stride
			if log {
				dx[j] = float32(float64(dy[j]) - math.Exp(float64(y[j]))*acc)
			} else {
				dx[j] = float32(float64(y[j]) * (float64(dy[j]) - acc))
			}
		}
	}
	return dx
}

// refReduce sums (or averages) x over axes; the result is in the order of
// the kept axes.
func refReduce(x []float32, s kernels.Shape, axes []int, mean bool) []float32 {
	ys := s.Clone()
	count := 1
	for _, a := range axes {
		count *= s[a]
		ys[a] = 1
	}
	acc := make([]float64, ys.Numel())
	for i, v := range x {
		idx := ewIndex(i, s)
		for _, a := range axes {
			idx[a] = 0
		}
		acc[rdFlat(idx, ys)] += float64(v)
	}
	y := make([]float32, len(acc))
	for i, v := range acc {
		if mean {
			v /= float64(count)
		}
		y[i] = float32(v)
	}
	return y
}

// refArgMax is the index of the first maximum along axis (the first NaN if
// a slice has one), as float32.
func refArgMax(x []float32, s kernels.Shape, axis int) []float32 {
	ys := s.Clone()
	ys[axis] = 1
	y := make([]float32, ys.Numel())
	best := make([]float64, ys.Numel())
	for i := range best {
		best[i] = math.Inf(-1)
	}
	seen := make([]bool, ys.Numel())
	for i, v := range x {
		idx := ewIndex(i, s)
		k := idx[axis]
		idx[axis] = 0
		o := rdFlat(idx, ys)
		f := float64(v)
		switch {
		case math.IsNaN(best[o]):
		case math.IsNaN(f) || !seen[o] || f > best[o]:
			best[o], y[o] = f, float32(k)
		}
		seen[o] = true
	}
	return y
}
