package cpu

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

const actGrain = 16384

// Activation implements kernels.ActivationOps: y[i] = f(x[i]) with f from
// a.Kind (see kernels.ActKind); y may be x. Relu and Sigmoid run in C
// (activation_c.go) so they vectorise; Sigmoid there is within 2e-7
// relative of the exact value (TestSigmoidAccuracy) and never overflows.
func (c *CPU) Activation(y, x *kernels.Tensor, a kernels.Act) error {
	d, err := sameSize("activation", []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	xd, yd := d[0], d[1]
	if a.Kind < kernels.ActIdentity || a.Kind > kernels.ActAbs {
		return fmt.Errorf("%w: activation kind %d", kernels.ErrUnsupported, a.Kind)
	}
	if a.Affine {
		return fmt.Errorf("%w: activation: the affine after an activation is for Conv2DFused only", kernels.ErrUnsupported)
	}
	parallelFor(c, len(xd), actGrain, actForward{x: xd, y: yd, a: a})
	return nil
}

// actForward is Activation's loop over elements [lo,hi).
type actForward struct {
	x, y []float32
	a    kernels.Act
}

func (b *actForward) run(lo, hi int) {
	xs, ys, a := b.x[lo:hi], b.y[lo:hi], b.a
	if actC(ys, xs, a) { // the piecewise-linear ones, vectorised (fast_c.go)
		return
	}
	switch a.Kind {
	case kernels.ActIdentity:
		copy(ys, xs)
	case kernels.ActRelu:
		reluC(ys, xs)
	case kernels.ActLeakyRelu:
		for i, v := range xs {
			if v < 0 {
				v *= a.Alpha
			}
			ys[i] = v
		}
	case kernels.ActSigmoid:
		sigmoidC(ys, xs)
	case kernels.ActHardSigmoid:
		for i, v := range xs {
			ys[i] = max(0, min(1, a.Alpha*v+a.Beta))
		}
	case kernels.ActHardSwish:
		for i, v := range xs {
			ys[i] = v * max(0, min(1, v/6+0.5))
		}
	case kernels.ActTanh:
		for i, v := range xs {
			ys[i] = float32(math.Tanh(float64(v)))
		}
	case kernels.ActClip:
		for i, v := range xs {
			ys[i] = min(max(v, a.Alpha), a.Beta)
		}
	case kernels.ActExp:
		for i, v := range xs {
			ys[i] = float32(math.Exp(float64(v)))
		}
	case kernels.ActLog:
		for i, v := range xs {
			ys[i] = float32(math.Log(float64(v)))
		}
	case kernels.ActSqrt:
		for i, v := range xs {
			ys[i] = float32(math.Sqrt(float64(v)))
		}
	case kernels.ActNeg:
		for i, v := range xs {
			ys[i] = -v
		}
	case kernels.ActAbs:
		for i, v := range xs {
			ys[i] = float32(math.Abs(float64(v)))
		}
	}
}

// ActivationBackward implements kernels.ActivationOps: dx = dy * f'(x).
// Sigmoid, Tanh, Exp and Sqrt use y = f(x); the others use x. At kinks it
// follows PyTorch's autograd: Relu'(0) = 0 (threshold_backward), LeakyRelu'
// is 1 for x > 0 and Alpha otherwise (so Alpha at 0), HardSigmoid' = Alpha
// strictly inside (0,1) of Alpha*x+Beta and 0 at and beyond its ends,
// HardSwish'(x) = 0 for x < -3, x/3+0.5 for -3 <= x <= 3 (so -0.5 at -3 and
// 1.5 at 3) and 1 above (hardswish_backward), Clip passes the gradient where
// min <= x <= max, bounds included (clamp_backward), Abs'(0) = 0 (sgn).
// dx may be dy.
func (c *CPU) ActivationBackward(dx, dy, x, y *kernels.Tensor, a kernels.Act) error {
	d, err := sameSize("activation backward", []string{"dy", "dx", "x", "y"}, dy, dx, x, y)
	if err != nil {
		return err
	}
	dyd, dxd, xd, yd := d[0], d[1], d[2], d[3]
	if a.Kind < kernels.ActIdentity || a.Kind > kernels.ActAbs {
		return fmt.Errorf("%w: activation kind %d", kernels.ErrUnsupported, a.Kind)
	}
	c.parallel(len(xd), actGrain, func(lo, hi int) {
		g, o, xs, ys := dyd[lo:hi], dxd[lo:hi], xd[lo:hi], yd[lo:hi]
		switch a.Kind {
		case kernels.ActIdentity:
			copy(o, g)
		case kernels.ActRelu:
			reluBackwardC(o, g, xs)
		case kernels.ActLeakyRelu:
			for i, v := range xs {
				if v > 0 {
					o[i] = g[i]
				} else {
					o[i] = a.Alpha * g[i]
				}
			}
		case kernels.ActSigmoid:
			for i, s := range ys {
				o[i] = g[i] * s * (1 - s)
			}
		case kernels.ActHardSigmoid:
			for i, v := range xs {
				if u := a.Alpha*v + a.Beta; u > 0 && u < 1 {
					o[i] = g[i] * a.Alpha
				} else {
					o[i] = 0
				}
			}
		case kernels.ActHardSwish:
			for i, v := range xs {
				switch {
				case v < -3:
					o[i] = 0
				case v <= 3:
					o[i] = g[i] * (v/3 + 0.5)
				default:
					o[i] = g[i]
				}
			}
		case kernels.ActTanh:
			for i, t := range ys {
				o[i] = g[i] * (1 - t*t)
			}
		case kernels.ActClip:
			for i, v := range xs {
				if v >= a.Alpha && v <= a.Beta {
					o[i] = g[i]
				} else {
					o[i] = 0
				}
			}
		case kernels.ActExp:
			for i, e := range ys {
				o[i] = g[i] * e
			}
		case kernels.ActLog:
			for i, v := range xs {
				o[i] = g[i] / v
			}
		case kernels.ActSqrt:
			for i, s := range ys {
				o[i] = g[i] * 0.5 / s
			}
		case kernels.ActNeg:
			for i := range g {
				o[i] = -g[i]
			}
		case kernels.ActAbs:
			for i, v := range xs {
				switch {
				case v > 0:
					o[i] = g[i]
				case v < 0:
					o[i] = -g[i]
				default:
					o[i] = 0
				}
			}
		}
	})
	return nil
}

// Dropout implements kernels.ActivationOps. The mask of element i is a
// pure function of (seed, i) (a SplitMix64 hash), so it does not depend on
// how the work is split across threads.
func (c *CPU) Dropout(y, mask, x *kernels.Tensor, ratio float32, seed uint64) error {
	d, err := sameSize("dropout", []string{"x", "y", "mask"}, x, y, mask)
	if err != nil {
		return err
	}
	if !(ratio >= 0 && ratio < 1) {
		return fmt.Errorf("%w: dropout ratio %v (want 0 <= ratio < 1)", kernels.ErrParam, ratio)
	}
	xd, yd, md := d[0], d[1], d[2]
	keep := 1 / (1 - ratio)
	thresh := uint64(float64(ratio) * (1 << 53))
	c.parallel(len(xd), actGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ratio > 0 && mix64(seed+uint64(i)*0x9E3779B97F4A7C15)>>11 < thresh {
				md[i], yd[i] = 0, 0
				continue
			}
			md[i] = 1
			yd[i] = xd[i] * keep
		}
	})
	return nil
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// DropoutBackward implements kernels.ActivationOps: dx = dy*mask/(1-ratio).
func (c *CPU) DropoutBackward(dx, dy, mask *kernels.Tensor, ratio float32) error {
	d, err := sameSize("dropout backward", []string{"dy", "dx", "mask"}, dy, dx, mask)
	if err != nil {
		return err
	}
	if !(ratio >= 0 && ratio < 1) {
		return fmt.Errorf("%w: dropout ratio %v (want 0 <= ratio < 1)", kernels.ErrParam, ratio)
	}
	dyd, dxd, md := d[0], d[1], d[2]
	keep := 1 / (1 - ratio)
	c.parallel(len(dyd), actGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dxd[i] = dyd[i] * md[i] * keep
		}
	})
	return nil
}
