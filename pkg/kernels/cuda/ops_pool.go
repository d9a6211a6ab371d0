//go:build cuda

package cuda

import (
	"fmt"

	"gorgonia.org/cu"

	"vireo/pkg/kernels"
)

// poolArgs are pool.cu's geometry arguments after the plane count: H, W,
// oH, oW, kH, kW, sH, sW, dH, dW, pads top, left, bottom, right, max, and
// count_include_pad.
func poolArgs(xs, ys kernels.Shape, p kernels.PoolParams) []any {
	return []any{int64(xs[2]), int64(xs[3]), int64(ys[2]), int64(ys[3]),
		int64(p.Kernel[0]), int64(p.Kernel[1]), int64(p.Strides[0]), int64(p.Strides[1]),
		int64(p.Dilations[0]), int64(p.Dilations[1]),
		int64(p.Pads[0]), int64(p.Pads[1]), int64(p.Pads[2]), int64(p.Pads[3]),
		boolArg(p.Kind == kernels.PoolMax), boolArg(p.CountIncludePad)}
}

func boolArg(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// zero clears n floats at p; it runs on the owner goroutine (queued on
// the default stream like a kernel).
func zero(p cu.DevicePtr, n int) error {
	if n == 0 {
		return nil
	}
	if err := cu.MemsetD32(p, 0, int64(n)); err != nil {
		return fmt.Errorf("cuda: zero %d floats: %w", n, err)
	}
	return nil
}

// Pool2D implements kernels.PoolOps: ONNX MaxPool / AveragePool, one
// thread per output (pool.cu's pool2d_fwd, the CPU backend's loop).
func (b *Backend) Pool2D(y, x *kernels.Tensor, p kernels.PoolParams) error {
	if x == nil {
		return fmt.Errorf("%w: pool2d: x is nil", kernels.ErrShape)
	}
	p = p.WithDefaults()
	ys, err := kernels.Pool2DOutShape(x.Shape, p)
	if err != nil {
		return fmt.Errorf("pool2d: %w", err)
	}
	if err := kernels.CheckShape("pool2d: y", y, ys); err != nil {
		return err
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: pool2d: y shares storage with x", kernels.ErrParam)
	}
	planes := int64(ys[0] * ys[1])
	return b.do(func() error {
		ps, err := b.addrs("pool2d", []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		return b.launch("pool2d_fwd", int64(ys.Numel()), append([]any{ps[0], ps[1], planes}, poolArgs(x.Shape, ys, p)...)...)
	})
}

// Pool2DBackward implements kernels.PoolOps: dx is cleared, then each
// output adds its gradient to the first maximum of its window (max) or
// dy/divisor to each of its taps inside x (average), with atomic adds.
// y is not needed and may be nil; x may be nil for average pooling.
func (b *Backend) Pool2DBackward(dx, dy, x, y *kernels.Tensor, p kernels.PoolParams) error {
	const op = "pool2d backward"
	if dx == nil {
		return nil
	}
	p = p.WithDefaults()
	ys, err := kernels.Pool2DOutShape(dx.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": dy", dy, ys); err != nil {
		return err
	}
	if y != nil {
		if err := kernels.CheckShape(op+": y", y, ys); err != nil {
			return err
		}
	}
	if x != nil || p.Kind == kernels.PoolMax {
		if err := kernels.CheckShape(op+": x", x, dx.Shape); err != nil {
			return err
		}
	}
	planes := int64(ys[0] * ys[1])
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dx", "dy"}, dx, dy)
		if err != nil {
			return err
		}
		px, err := b.optAddr(op+": x", x)
		if err != nil {
			return err
		}
		if err := zero(ps[0].(cu.DevicePtr), dx.Numel()); err != nil {
			return err
		}
		return b.launch("pool2d_bwd", int64(ys.Numel()), append([]any{ps[0], ps[1], px, planes}, poolArgs(dx.Shape, ys, p)...)...)
	})
}

// globalCheck checks x (N,C,...) against y (or dy) and returns the plane
// count and the plane size.
func globalCheck(op string, x, y *kernels.Tensor, yName string) (int, int, error) {
	if x == nil {
		return 0, 0, fmt.Errorf("%w: %s: x is nil", kernels.ErrShape, op)
	}
	ys, err := kernels.GlobalPoolOutShape(x.Shape)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+yName, y, ys); err != nil {
		return 0, 0, err
	}
	return ys.Numel(), x.Numel() / ys.Numel(), nil
}

// globalGrid is the block count of a block-per-plane launch.
func globalGrid(planes int) int { return max(1, min(planes, 1<<20)) }

// GlobalPool implements kernels.PoolOps: one block per (n,c) plane; the
// max is the CPU's first-element scan, the mean a float64 sum.
func (b *Backend) GlobalPool(y, x *kernels.Tensor, kind kernels.PoolKind) error {
	if kind != kernels.PoolMax && kind != kernels.PoolAvg {
		return fmt.Errorf("%w: globalpool: kind %d", kernels.ErrParam, kind)
	}
	planes, size, err := globalCheck("globalpool", x, y, "y")
	if err != nil {
		return err
	}
	return b.do(func() error {
		ps, err := b.addrs("globalpool", []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		return b.launchGrid("global_pool_fwd", [3]int{globalGrid(planes), 1, 1}, 256, ps[0], ps[1],
			int64(planes), int64(size), boolArg(kind == kernels.PoolMax))
	})
}

// GlobalPoolBackward implements kernels.PoolOps: max sends dy to the
// first maximum of each plane, average spreads dy/size over it. dx is
// overwritten.
func (b *Backend) GlobalPoolBackward(dx, dy, x, y *kernels.Tensor, kind kernels.PoolKind) error {
	const op = "globalpool backward"
	if kind != kernels.PoolMax && kind != kernels.PoolAvg {
		return fmt.Errorf("%w: %s: kind %d", kernels.ErrParam, op, kind)
	}
	if dx == nil {
		return nil
	}
	planes, size, err := globalCheck(op, dx, dy, "dy")
	if err != nil {
		return err
	}
	if kind == kernels.PoolMax {
		if err := kernels.CheckShape(op+": x", x, dx.Shape); err != nil {
			return err
		}
	}
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dx", "dy"}, dx, dy)
		if err != nil {
			return err
		}
		var px any = uint64(0)
		if kind == kernels.PoolMax {
			if px, err = b.addr(op+": x", x); err != nil {
				return err
			}
		}
		return b.launchGrid("global_pool_bwd", [3]int{globalGrid(planes), 1, 1}, 256, ps[0], ps[1], px,
			int64(planes), int64(size), boolArg(kind == kernels.PoolMax))
	})
}
