//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

// Binary implements kernels.ElementwiseOps. Operands of c's shape take
// the plain kernel; otherwise the extents of c and the broadcast strides
// of a and b (0 along broadcast axes) are staged and each thread maps its
// index of c to a and b.
func (b *Backend) Binary(c, x, y *kernels.Tensor, op kernels.BinaryOp) error {
	if op < kernels.OpAdd || op > kernels.OpMin {
		return fmt.Errorf("%w: binary: op %d (want OpAdd..OpMin)", kernels.ErrParam, op)
	}
	if c == nil || x == nil || y == nil {
		return fmt.Errorf("%w: binary: nil operand", kernels.ErrShape)
	}
	want, err := kernels.BroadcastShape(x.Shape, y.Shape)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	if err := kernels.CheckShape("binary: c", c, want); err != nil {
		return err
	}
	n := int64(c.Numel())
	var meta []int64
	if !x.Shape.Equal(want) || !y.Shape.Equal(want) {
		meta = broadcastMeta(want, x.Shape, y.Shape)
	}
	return b.do(func() error {
		p, err := b.addrs("binary", []string{"c", "a", "b"}, c, x, y)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if meta == nil {
			return b.launch("binary_same", n, p[0], p[1], p[2], n, int64(op))
		}
		pm, err := b.stageInts(meta)
		if err != nil {
			return err
		}
		return b.launch("binary_bcast", n, p[0], p[1], p[2], n, int64(op), pm, int64(len(want)))
	})
}

// broadcastMeta is c's extents followed by the element strides of a and
// b aligned to c's axes (0 where an operand has extent 1 or lacks the axis).
func broadcastMeta(c, a, b kernels.Shape) []int64 {
	r := len(c)
	meta := make([]int64, 3*r)
	for i, d := range c {
		meta[i] = int64(d)
	}
	for k, s := range []kernels.Shape{a, b} {
		st := s.Strides()
		for i := range s {
			ci := i + r - len(s)
			if s[i] != 1 {
				meta[(k+1)*r+ci] = int64(st[i])
			}
		}
	}
	return meta
}

// Axpy implements kernels.ElementwiseOps: y += alpha*x.
func (b *Backend) Axpy(y *kernels.Tensor, alpha float32, x *kernels.Tensor) error {
	if x == nil || y == nil {
		return fmt.Errorf("%w: axpy: nil operand", kernels.ErrShape)
	}
	if x.Numel() != y.Numel() {
		return fmt.Errorf("%w: axpy: x %v and y %v differ in size", kernels.ErrShape, x.Shape, y.Shape)
	}
	return b.do(func() error {
		p, err := b.addrs("axpy", []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		return b.launch("axpy", int64(y.Numel()), p[0], p[1], int64(y.Numel()), alpha)
	})
}

// Scale implements kernels.ElementwiseOps: y *= alpha.
func (b *Backend) Scale(y *kernels.Tensor, alpha float32) error {
	return b.do(func() error {
		p, err := b.addr("scale: y", y)
		if err != nil {
			return err
		}
		return b.launch("scale", int64(y.Numel()), p, int64(y.Numel()), alpha)
	})
}
