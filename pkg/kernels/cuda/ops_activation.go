//go:build cuda

package cuda

import (
	"fmt"

	"vireo/pkg/kernels"
)

// sameSize checks that every tensor is non-nil and has as many elements
// as the first (names[i] names ts[i] in errors).
func sameSize(op string, names []string, ts ...*kernels.Tensor) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("%w: %s: %s is nil", kernels.ErrShape, op, names[i])
		}
		if i > 0 && t.Numel() != ts[0].Numel() {
			return fmt.Errorf("%w: %s: %s is %v (want %d elements like %s %v)", kernels.ErrShape, op, names[i], t.Shape, ts[0].Numel(), names[0], ts[0].Shape)
		}
	}
	return nil
}

// addrs returns the device addresses of ts (see addr); it runs on the
// owner goroutine.
func (b *Backend) addrs(op string, names []string, ts ...*kernels.Tensor) ([]any, error) {
	out := make([]any, len(ts))
	for i, t := range ts {
		p, err := b.addr(op+": "+names[i], t)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Activation implements kernels.ActivationOps (y may be x).
func (b *Backend) Activation(y, x *kernels.Tensor, a kernels.Act) error {
	names := []string{"x", "y"}
	if err := sameSize("activation", names, x, y); err != nil {
		return err
	}
	if a.Kind < kernels.ActIdentity || a.Kind > kernels.ActAbs {
		return fmt.Errorf("%w: activation kind %d", kernels.ErrUnsupported, a.Kind)
	}
	if a.Affine {
		return fmt.Errorf("%w: activation: the affine after an activation is for Conv2DFused only", kernels.ErrUnsupported)
	}
	return b.do(func() error {
		p, err := b.addrs("activation", names, x, y)
		if err != nil {
			return err
		}
		return b.launch("act_fwd", int64(x.Numel()), p[1], p[0], int64(x.Numel()), int64(a.Kind), a.Alpha, a.Beta)
	})
}

// ActivationBackward implements kernels.ActivationOps: dx = dy * f'(x),
// with the CPU backend's (PyTorch's) conventions at kinks.
func (b *Backend) ActivationBackward(dx, dy, x, y *kernels.Tensor, a kernels.Act) error {
	names := []string{"dy", "dx", "x", "y"}
	if err := sameSize("activation backward", names, dy, dx, x, y); err != nil {
		return err
	}
	if a.Kind < kernels.ActIdentity || a.Kind > kernels.ActAbs {
		return fmt.Errorf("%w: activation kind %d", kernels.ErrUnsupported, a.Kind)
	}
	return b.do(func() error {
		p, err := b.addrs("activation backward", names, dy, dx, x, y)
		if err != nil {
			return err
		}
		return b.launch("act_bwd", int64(x.Numel()), p[1], p[0], p[2], p[3], int64(x.Numel()), int64(a.Kind), a.Alpha, a.Beta)
	})
}

// Dropout implements kernels.ActivationOps with the CPU backend's
// per-element SplitMix64 hash of (seed, index): both backends draw the
// same mask for the same seed.
func (b *Backend) Dropout(y, mask, x *kernels.Tensor, ratio float32, seed uint64) error {
	names := []string{"x", "y", "mask"}
	if err := sameSize("dropout", names, x, y, mask); err != nil {
		return err
	}
	if !(ratio >= 0 && ratio < 1) {
		return fmt.Errorf("%w: dropout ratio %v (want 0 <= ratio < 1)", kernels.ErrParam, ratio)
	}
	keep := 1 / (1 - ratio)
	thresh := uint64(float64(ratio) * (1 << 53))
	return b.do(func() error {
		p, err := b.addrs("dropout", names, x, y, mask)
		if err != nil {
			return err
		}
		return b.launch("dropout_fwd", int64(x.Numel()), p[1], p[2], p[0], int64(x.Numel()), seed, thresh, keep)
	})
}

// DropoutBackward implements kernels.ActivationOps: dx = dy*mask/(1-ratio).
func (b *Backend) DropoutBackward(dx, dy, mask *kernels.Tensor, ratio float32) error {
	names := []string{"dy", "dx", "mask"}
	if err := sameSize("dropout backward", names, dy, dx, mask); err != nil {
		return err
	}
	if !(ratio >= 0 && ratio < 1) {
		return fmt.Errorf("%w: dropout ratio %v (want 0 <= ratio < 1)", kernels.ErrParam, ratio)
	}
	keep := 1 / (1 - ratio)
	return b.do(func() error {
		p, err := b.addrs("dropout backward", names, dy, dx, mask)
		if err != nil {
			return err
		}
		return b.launch("dropout_bwd", int64(dy.Numel()), p[1], p[0], p[2], int64(dy.Numel()), keep)
	})
}
