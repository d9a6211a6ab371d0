//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

// BatchNormInference implements kernels.NormOps: one block per (n,c)
// plane with that channel's coefficients.
func (b *Backend) BatchNormInference(y, x, scale, bias, mean, variance *kernels.Tensor, eps float32) error {
	names := []string{"x", "y"}
	if err := sameSize("batchnorm", names, x, y); err != nil {
		return err
	}
	if len(x.Shape) < 2 {
		return fmt.Errorf("%w: batchnorm: x is %v (want rank >= 2, (N,C,...))", kernels.ErrShape, x.Shape)
	}
	if scale == nil || bias == nil || mean == nil || variance == nil {
		return fmt.Errorf("%w: batchnorm: scale, bias, mean and variance are required", kernels.ErrShape)
	}
	n, ch := x.Shape[0], x.Shape[1]
	s := x.Numel() / max(1, n*ch)
	for _, t := range []*kernels.Tensor{scale, bias, mean, variance} {
		if t.Numel() != ch {
			return fmt.Errorf("%w: batchnorm: per-channel tensor is %v (want (%d))", kernels.ErrShape, t.Shape, ch)
		}
	}
	planes := int64(n * ch)
	return b.do(func() error {
		p, err := b.addrs("batchnorm", []string{"y", "x", "scale", "bias", "mean", "variance"}, y, x, scale, bias, mean, variance)
		if err != nil {
			return err
		}
		if planes == 0 || s == 0 {
			return nil
		}
		grid := int(min(planes, int64(1<<20)))
		return b.launchGrid("bn_infer", [3]int{grid, 1, 1}, blockSize, p[0], p[1], p[2], p[3], p[4], p[5], eps, planes, int64(ch), int64(s))
	})
}

// Softmax implements kernels.ReduceOps (y may be x): one thread per
// (outer, inner) column of the axis.
func (b *Backend) Softmax(y, x *kernels.Tensor, axis int, log bool) error {
	op := map[bool]string{false: "softmax", true: "logsoftmax"}[log]
	if x == nil {
		return fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	outer, n, inner, err := kernels.SplitAxis(x.Shape, axis)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": y", y, x.Shape); err != nil {
		return err
	}
	return b.do(func() error {
		p, err := b.addrs(op, []string{"y", "x"}, y, x)
		if err != nil || n == 0 {
			return err
		}
		return b.launch("softmax_fwd", int64(outer*inner), p[0], p[1], int64(outer), int64(n), int64(inner), boolInt(log))
	})
}

// SoftmaxBackward implements kernels.ReduceOps from the forward output y.
func (b *Backend) SoftmaxBackward(dx, dy, y *kernels.Tensor, axis int, log bool) error {
	if dx == nil {
		return nil
	}
	op := map[bool]string{false: "softmax backward", true: "logsoftmax backward"}[log]
	if y == nil {
		return fmt.Errorf("%w: %s: y is nil", kernels.ErrShape, op)
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
	return b.do(func() error {
		p, err := b.addrs(op, []string{"dx", "dy", "y"}, dx, dy, y)
		if err != nil || n == 0 {
			return err
		}
		return b.launch("softmax_bwd", int64(outer*inner), p[0], p[1], p[2], int64(outer), int64(n), int64(inner), boolInt(log))
	})
}

// ArgMax implements kernels.ReduceOps: the index (as float32) of the
// first maximum along axis, a NaN counting as the largest (NumPy).
func (b *Backend) ArgMax(y, x *kernels.Tensor, axis int) error {
	if x == nil || y == nil {
		return fmt.Errorf("%w: argmax: nil operand", kernels.ErrShape)
	}
	ys, err := kernels.ArgMaxOutShape(x.Shape, axis, true)
	if err != nil {
		return err
	}
	if y.Numel() != ys.Numel() {
		return fmt.Errorf("%w: argmax: y has shape %v (want %d elements, x %v without axis %d)", kernels.ErrShape, y.Shape, ys.Numel(), x.Shape, axis)
	}
	outer, n, inner, _ := kernels.SplitAxis(x.Shape, axis)
	return b.do(func() error {
		p, err := b.addrs("argmax", []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		return b.launch("argmax", int64(outer*inner), p[0], p[1], int64(outer), int64(n), int64(inner))
	})
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}
