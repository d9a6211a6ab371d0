//go:build cuda

package cuda

import (
	"fmt"
	"math"

	"vireo/pkg/kernels"
)

var _ kernels.FusedConvOps = (*Backend)(nil)
var _ kernels.FusedAffineOps = (*Backend)(nil)

// overlaps reports whether tensors a and b share device storage (the same
// allocation with intersecting element ranges).
func overlaps(a, b *kernels.Tensor) bool {
	if a == nil || b == nil || a.Dev == nil || a.Dev != b.Dev {
		return false
	}
	return a.Offset < b.Offset+b.Numel() && b.Offset < a.Offset+a.Numel()
}

// optAddr is addr for an optional operand: 0 (a null pointer in the
// kernel) when t is nil.
func (b *Backend) optAddr(name string, t *kernels.Tensor) (any, error) {
	if t == nil {
		return uint64(0), nil
	}
	p, err := b.addr(name, t)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// convCheck checks Conv2D's operands as the CPU backend does (same
// errors, before any launch) and returns y's shape.
func convCheck(op string, y, x, w, bias, res *kernels.Tensor, p kernels.ConvParams) (kernels.Shape, error) {
	if x == nil || w == nil {
		return nil, fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.Conv2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": y", y, out); err != nil {
		return nil, err
	}
	if bias != nil {
		if err := kernels.CheckShape(op+": b", bias, kernels.Shape{out[1]}); err != nil {
			return nil, err
		}
	}
	if res != nil {
		if err := kernels.CheckShape(op+": res", res, out); err != nil {
			return nil, err
		}
	}
	if overlaps(y, x) || overlaps(y, res) {
		return nil, fmt.Errorf("%w: %s: y shares storage with x or res", kernels.ErrParam, op)
	}
	return out, nil
}

// fusedAct reports whether the conv epilogue (conv.cu's conv_epi) takes
// activation kind k: the CPU backend's fused set.
func fusedAct(k kernels.ActKind) bool {
	switch k {
	case kernels.ActIdentity, kernels.ActRelu, kernels.ActLeakyRelu, kernels.ActSigmoid,
		kernels.ActHardSigmoid, kernels.ActHardSwish, kernels.ActClip:
		return true
	}
	return false
}

// FusedActOK implements kernels.FusedConvOps.
func (b *Backend) FusedActOK(k kernels.ActKind) bool { return fusedAct(k) }

// FusedAffineOK implements kernels.FusedAffineOps: the epilogue applies
// Act.Affine's scale and shift after the activation.
func (b *Backend) FusedAffineOK() bool { return true }

// Conv2D implements kernels.ConvOps (see conv.cu for the loop it equals):
// an implicit-GEMM kernel, or a direct one for convolutions with at most
// convDirectOuter output channels per group (depthwise). In the fp16 and
// bf16 math modes (SetMath) the implicit GEMM runs on the tensor cores
// (tensorcore.cu); the direct kernel and the backward stay FP32. y must
// not share storage with x (ErrParam).
func (b *Backend) Conv2D(y, x, w, bias *kernels.Tensor, p kernels.ConvParams) error {
	return b.conv("conv2d", y, x, w, bias, nil, p, kernels.Act{})
}

// Conv2DFused implements kernels.FusedConvOps:
//
//	y = act((conv(x, w) + b) + res)          (then *act.Scale + act.Shift if act.Affine)
//
// computed in the convolution kernel's epilogue.
func (b *Backend) Conv2DFused(y, x, w, bias, res *kernels.Tensor, p kernels.ConvParams, act kernels.Act) error {
	const op = "conv2d_fused"
	if !fusedAct(act.Kind) {
		return fmt.Errorf("%w: %s: activation kind %d", kernels.ErrUnsupported, op, act.Kind)
	}
	return b.conv(op, y, x, w, bias, res, p, act)
}

// convDirectOuter is the most output channels per group that take the
// direct kernel: below it most of the implicit GEMM's 64-row tile is idle.
const convDirectOuter = 8

func (b *Backend) conv(op string, y, x, w, bias, res *kernels.Tensor, p kernels.ConvParams, act kernels.Act) error {
	out, err := convCheck(op, y, x, w, bias, res, p)
	if err != nil {
		return err
	}
	p = p.WithDefaults()
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	m, kh, kw := w.Shape[0], w.Shape[2], w.Shape[3]
	oh, ow := out[2], out[3]
	outer, k := m/p.Group, w.Shape[1]*kh*kw
	affine := int64(0)
	if act.Affine {
		affine = 1
	}
	// The math mode as issued; the tensor-core kernel's tiles are at
	// least gemmTile, so the grid limits below hold for both.
	mode := b.math.Load()
	igemm := outer > convDirectOuter && n*p.Group <= 65535 && (outer+gemmTile-1)/gemmTile <= 65535 &&
		int64(c)*int64(h)*int64(wd) < math.MaxInt32 && int64(outer)*int64(k) < math.MaxInt32 &&
		int64(oh)*int64(ow) < math.MaxInt32
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"y", "x", "w"}, y, x, w)
		if err != nil {
			return err
		}
		pb, err := b.optAddr(op+": b", bias)
		if err != nil {
			return err
		}
		pr, err := b.optAddr(op+": res", res)
		if err != nil {
			return err
		}
		if out.Numel() == 0 {
			return nil
		}
		geo := []any{int64(c), int64(h), int64(wd), int64(m), int64(oh), int64(ow), int64(p.Group),
			int64(kh), int64(kw), int64(p.Strides[0]), int64(p.Strides[1]), int64(p.Pads[0]), int64(p.Pads[1]),
			int64(p.Dilations[0]), int64(p.Dilations[1]),
			int64(act.Kind), act.Alpha, act.Beta, affine, act.Scale, act.Shift}
		if igemm {
			name, tm, tn := "conv2d_igemm", gemmTile, gemmTile
			if mode != mathFP32 {
				tm, tn = tcTileM(outer), tcTileN
				name = tcKernel("conv", mode, tm)
			}
			grid := [3]int{(oh*ow + tn - 1) / tn, (outer + tm - 1) / tm, n * p.Group}
			return b.launchGrid(name, grid, 256, append([]any{ps[0], ps[1], ps[2], pb, pr}, geo...)...)
		}
		return b.launch("conv2d_direct", int64(out.Numel()), append([]any{ps[0], ps[1], ps[2], pb, pr, int64(n)}, geo...)...)
	})
}

// ConvTranspose2D implements kernels.ConvOps: one thread per output
// element gathers the taps that reach it (conv.cu's convt2d_direct, which
// equals the CPU's scatter loop). y must not share storage with x.
func (b *Backend) ConvTranspose2D(y, x, w, bias *kernels.Tensor, p kernels.ConvTransposeParams) error {
	const op = "conv_transpose2d"
	if x == nil || w == nil {
		return fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.ConvTranspose2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": y", y, out); err != nil {
		return err
	}
	if bias != nil {
		if err := kernels.CheckShape(op+": b", bias, kernels.Shape{out[1]}); err != nil {
			return err
		}
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: %s: y shares storage with x", kernels.ErrParam, op)
	}
	p = p.WithDefaults()
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"y", "x", "w"}, y, x, w)
		if err != nil {
			return err
		}
		pb, err := b.optAddr(op+": b", bias)
		if err != nil {
			return err
		}
		return b.launch("convt2d_direct", int64(out.Numel()), ps[0], ps[1], ps[2], pb,
			int64(x.Shape[0]), int64(x.Shape[1]), int64(x.Shape[2]), int64(x.Shape[3]),
			int64(out[1]), int64(out[2]), int64(out[3]), int64(p.Group), int64(w.Shape[2]), int64(w.Shape[3]),
			int64(p.Strides[0]), int64(p.Strides[1]), int64(p.Pads[0]), int64(p.Pads[1]),
			int64(p.Dilations[0]), int64(p.Dilations[1]))
	})
}

// checkGrads checks the shapes of the non-nil gradients (as the CPU
// backend).
func checkGrads(op string, dx *kernels.Tensor, xs kernels.Shape, dw *kernels.Tensor, ws kernels.Shape, db *kernels.Tensor, bs kernels.Shape) error {
	for _, g := range []struct {
		name string
		t    *kernels.Tensor
		s    kernels.Shape
	}{{"dx", dx, xs}, {"dw", dw, ws}, {"db", db, bs}} {
		if g.t != nil {
			if err := kernels.CheckShape(op+": "+g.name, g.t, g.s); err != nil {
				return err
			}
		}
	}
	return nil
}

// filterGrad queues conv.cu's conv_filter_grad (see there for gr, img and
// the dimensions); it runs on the owner goroutine.
func (b *Backend) filterGrad(dw, gr, img any, n int, ws kernels.Shape, groups int, grs, imgs kernels.Shape, strides, dil [2]int, pads [4]int) error {
	total := ws.Numel()
	return b.launchGrid("conv_filter_grad", [3]int{max(1, min(total, 1<<16)), 1, 1}, 256, dw, gr, img,
		int64(n), int64(ws[0]), int64(ws[1]), int64(ws[2]), int64(ws[3]), int64(groups),
		int64(grs[2]), int64(grs[3]), int64(imgs[1]), int64(imgs[2]), int64(imgs[3]),
		int64(strides[0]), int64(strides[1]), int64(pads[0]), int64(pads[1]), int64(dil[0]), int64(dil[1]))
}

// biasGrad queues db[m] = sum over n and positions of dy[n][m].
func (b *Backend) biasGrad(db, dy any, ds kernels.Shape) error {
	m := ds[1]
	return b.launchGrid("conv_bias_grad", [3]int{max(1, min(m, 65535)), 1, 1}, 256, db, dy,
		int64(ds[0]), int64(m), int64(ds[2]*ds[3]))
}

// Conv2DBackward implements kernels.ConvOps with direct kernels:
//
//	dx = ConvTranspose2D(dy, w) cut to x's size (convt2d_direct)
//	dw[m][ci][ki][kj] = sum_{n,oy,ox} dy[n][m][oy][ox] * x[n][g*C/G+ci][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw]
//	db[m] = sum_{n,oy,ox} dy[n][m][oy][ox]
//
// Nil gradients are skipped.
func (b *Backend) Conv2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvParams) error {
	const op = "conv2d_backward"
	if x == nil || w == nil {
		return fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.Conv2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p = p.WithDefaults()
	xs, ws := x.Shape, w.Shape
	return b.convGrads(op, dx, dw, db, dy, x, w, out,
		func(pdw, pdy, px any) error {
			return b.filterGrad(pdw, pdy, px, xs[0], ws, p.Group, out, xs, p.Strides, p.Dilations, p.Pads)
		},
		func(pdx, pdy, pw any) error {
			return b.launch("convt2d_direct", int64(xs.Numel()), pdx, pdy, pw, uint64(0),
				int64(out[0]), int64(out[1]), int64(out[2]), int64(out[3]),
				int64(xs[1]), int64(xs[2]), int64(xs[3]), int64(p.Group), int64(ws[2]), int64(ws[3]),
				int64(p.Strides[0]), int64(p.Strides[1]), int64(p.Pads[0]), int64(p.Pads[1]),
				int64(p.Dilations[0]), int64(p.Dilations[1]))
		})
}

// ConvTranspose2DBackward implements kernels.ConvOps with direct kernels:
//
//	dx = Conv2D(dy, w) (conv2d_direct; w (C,M/G,kH,kW) read as Conv2D weights)
//	dw[c][mm][ki][kj] = sum_{n,iy,ix} x[n][c][iy][ix] * dy[n][g*M/G+mm][iy*sh-pt+ki*dh][ix*sw-pl+kj*dw]
//	db[m] = sum_{n,oy,ox} dy[n][m][oy][ox]
//
// Nil gradients are skipped.
func (b *Backend) ConvTranspose2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvTransposeParams) error {
	const op = "conv_transpose2d_backward"
	if x == nil || w == nil {
		return fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.ConvTranspose2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p = p.WithDefaults()
	xs, ws := x.Shape, w.Shape
	return b.convGrads(op, dx, dw, db, dy, x, w, out,
		func(pdw, pdy, px any) error {
			return b.filterGrad(pdw, px, pdy, xs[0], ws, p.Group, xs, out, p.Strides, p.Dilations, p.Pads)
		},
		func(pdx, pdy, pw any) error {
			return b.launch("conv2d_direct", int64(xs.Numel()), pdx, pdy, pw, uint64(0), uint64(0),
				int64(out[0]), int64(out[1]), int64(out[2]), int64(out[3]),
				int64(xs[1]), int64(xs[2]), int64(xs[3]), int64(p.Group), int64(ws[2]), int64(ws[3]),
				int64(p.Strides[0]), int64(p.Strides[1]), int64(p.Pads[0]), int64(p.Pads[1]),
				int64(p.Dilations[0]), int64(p.Dilations[1]),
				int64(kernels.ActIdentity), float32(0), float32(0), int64(0), float32(0), float32(0))
		})
}

// convGrads is the backward of either convolution direction once the
// output shape out is known: it checks dy and the gradients' shapes, then
// on the owner goroutine computes db from dy, dw with filter(dw, dy, x)
// and dx with data(dx, dy, w), skipping nil gradients.
func (b *Backend) convGrads(op string, dx, dw, db, dy, x, w *kernels.Tensor, out kernels.Shape,
	filter func(pdw, pdy, px any) error, data func(pdx, pdy, pw any) error) error {
	if err := kernels.CheckShape(op+": dy", dy, out); err != nil {
		return err
	}
	if err := checkGrads(op, dx, x.Shape, dw, w.Shape, db, kernels.Shape{out[1]}); err != nil {
		return err
	}
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dy", "x", "w"}, dy, x, w)
		if err != nil {
			return err
		}
		for _, g := range []struct {
			name string
			t    *kernels.Tensor
			run  func(any) error
		}{
			{"db", db, func(p any) error { return b.biasGrad(p, ps[0], out) }},
			{"dw", dw, func(p any) error { return filter(p, ps[0], ps[1]) }},
			{"dx", dx, func(p any) error { return data(p, ps[0], ps[2]) }},
		} {
			if g.t == nil {
				continue
			}
			pg, err := b.addr(op+": "+g.name, g.t)
			if err != nil {
				return err
			}
			if err := g.run(pg); err != nil {
				return err
			}
		}
		return nil
	})
}
