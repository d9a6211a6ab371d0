package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// convOperands fetches the host data of the tensors an op reads and
// writes (at most 6); nil tensors give nil slices.
func convOperands(op string, names []string, ts ...*kernels.Tensor) ([6][]float32, error) {
	var out [6][]float32
	for i, t := range ts {
		if t == nil {
			continue
		}
		d, ok := hostData(t)
		if !ok {
			_, err := host(op+": "+names[i], t) // the error says why
			return out, err
		}
		out[i] = d
	}
	return out, nil
}

// conv2DPlan checks x and w and returns y's shape and the GEMM plan:
// x is the image, y's grid the positions, outer = M/group.
func conv2DPlan(op string, x, w *kernels.Tensor, p kernels.ConvParams) (kernels.Shape, *convPlan, error) {
	if x == nil || w == nil {
		return nil, nil, fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.Conv2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	p = p.WithDefaults()
	q := &convPlan{n: x.Shape[0], groups: p.Group, outer: w.Shape[0] / p.Group, geo: convGeom{
		c: w.Shape[1], h: x.Shape[2], w: x.Shape[3], kh: w.Shape[2], kw: w.Shape[3],
		sh: p.Strides[0], sw: p.Strides[1], dh: p.Dilations[0], dw: p.Dilations[1],
		pt: p.Pads[0], pl: p.Pads[1], oh: out[2], ow: out[3],
	}}
	return out, q.withTaps(), nil
}

// convKey identifies a convolution's geometry in the backend's plan cache.
type convKey struct {
	x, w      [4]int
	p         kernels.ConvParams
	tp        kernels.ConvTransposeParams
	transpose bool
}

// convEntry is a cached convolution plan: y's and the bias's shapes and
// the GEMM plan, all read-only once cached.
type convEntry struct {
	out, bias kernels.Shape
	q         *convPlan
}

// convKeyOf is the cache key of x and w's shapes (ok=false for a nil or
// non-4-D operand, which the plan functions reject with an error).
func convKeyOf(x, w *kernels.Tensor) (k convKey, ok bool) {
	if x == nil || w == nil || len(x.Shape) != 4 || len(w.Shape) != 4 {
		return k, false
	}
	copy(k.x[:], x.Shape)
	copy(k.w[:], w.Shape)
	return k, true
}

// conv2DEntry is conv2DPlan computed once per geometry and cached.
func (c *CPU) conv2DEntry(op string, x, w *kernels.Tensor, p kernels.ConvParams) (*convEntry, error) {
	k, ok := convKeyOf(x, w)
	k.p = p
	if ok {
		if e, hit := c.plans.conv.get(k); hit {
			return e, nil
		}
	}
	out, q, err := conv2DPlan(op, x, w, p)
	if err != nil {
		return nil, err
	}
	e := &convEntry{out: out, bias: kernels.Shape{out[1]}, q: q}
	if ok {
		c.plans.conv.put(k, e)
	}
	return e, nil
}

// convTranspose2DEntry is convTranspose2DPlan computed once per geometry
// and cached.
func (c *CPU) convTranspose2DEntry(op string, x, w *kernels.Tensor, p kernels.ConvTransposeParams) (*convEntry, error) {
	k, ok := convKeyOf(x, w)
	k.tp, k.transpose = p, true
	if ok {
		if e, hit := c.plans.conv.get(k); hit {
			return e, nil
		}
	}
	out, q, err := convTranspose2DPlan(op, x, w, p)
	if err != nil {
		return nil, err
	}
	e := &convEntry{out: out, bias: kernels.Shape{out[1]}, q: q}
	if ok {
		c.plans.conv.put(k, e)
	}
	return e, nil
}

// depthwise reports whether the plan is a depthwise convolution (one input
// channel per group, several groups), done by the direct kernels.
func (q *convPlan) depthwise() bool { return q.geo.c == 1 && q.groups > 1 }

// Conv2D implements kernels.ConvOps. It equals the plain loop (see
// kernelstest's reference)
//
//	y[n][m][oy][ox] = b[m] + sum_{ci<C/G, ki, kj} w[m][ci][ki][kj] *
//	    x[n][g*C/G+ci][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw]   (g = m/(M/G))
//
// computed per image and group as GEMMs on the backend's threads: a
// stride-1 3x3 kernel over wide enough rows by Winograd's F(2x2, 3x3)
// (winograd.go: 16 GEMMs on transformed tiles, 2.25x fewer multiplies);
// otherwise with C/G >= 32 as kH*kW accumulating GEMMs on shifted views of a zero-padded
// (and, for strides, phase-split) copy of the image (conv_shift.go), else
// as W_g (M/G x K) times im2col columns in L2-sized chunks; a 1x1
// stride-1 unpadded kernel is plain GEMMs on x (in column chunks);
// depthwise convolutions use a direct kernel. The forward GEMMs are
// gemmNN (AVX-512 when the CPU has it, else OpenBLAS); see convForward.
func (c *CPU) Conv2D(y, x, w, b *kernels.Tensor, p kernels.ConvParams) error {
	const op = "conv2d"
	e, err := c.conv2DEntry(op, x, w, p)
	if err != nil {
		return err
	}
	q := e.q
	if err := kernels.CheckShape(op+": y", y, e.out); err != nil {
		return err
	}
	if b != nil {
		if err := kernels.CheckShape(op+": b", b, e.bias); err != nil {
			return err
		}
	}
	d, err := convOperands(op, []string{"y", "x", "w", "b"}, y, x, w, b)
	if err != nil {
		return err
	}
	c.convForward(q, d[0], d[1], d[2], d[3], convEpi{}) // conv_fused.go
	return nil
}

// Conv2DBackward implements kernels.ConvOps:
//
//	dw_g = sum_n dY[n,g] * im2col(x[n,g])^T
//	dx[n,g] = col2im(W_g^T * dY[n,g])
//	db[m] = sum_{n,oy,ox} dy[n][m][oy][ox]
//
// over blocks of images side by side (conv_backward.go: few large GEMMs,
// and a weight gradient that does not depend on thread timing), dx of a
// stride-1 conv with a grid of >= 16 positions as Conv2D of dy with the
// flipped weights (no col2im); depthwise convolutions by the direct
// kernel. Nil gradients are skipped.
func (c *CPU) Conv2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvParams) error {
	const op = "conv2d_backward"
	out, q, err := conv2DPlan(op, x, w, p)
	if err != nil {
		return err
	}
	d, err := convBackwardOperands(op, out, dx, dw, db, dy, x, w)
	if err != nil {
		return err
	}
	if d[2] != nil {
		c.biasGrad(d[2], d[3], q.n, out[1], q.p())
	}
	if q.depthwise() {
		if d[0] != nil || d[1] != nil {
			c.depthwiseBackward(q, d[0], d[1], d[3], d[4], d[5])
		}
		return nil
	}
	if d[1] != nil {
		c.weightGradCols(q, d[1], d[3], d[4])
	}
	if d[0] != nil {
		if q.flipOK() {
			return c.backwardImageFlip(q, d[0], d[3], d[5])
		}
		c.backwardImageCols(q, d[0], d[3], d[5], nil)
	}
	return nil
}

// checkGrads checks the shapes of the non-nil gradients.
// convBackwardOperands checks a convolution backward's dy against the
// output shape out and its gradients against x and w (db: one per output
// channel), then fetches dx, dw, db, dy, x, w in that order.
func convBackwardOperands(op string, out kernels.Shape, dx, dw, db, dy, x, w *kernels.Tensor) ([6][]float32, error) {
	if err := kernels.CheckShape(op+": dy", dy, out); err != nil {
		return [6][]float32{}, err
	}
	if err := checkGrads(op, dx, x.Shape, dw, w.Shape, db, kernels.Shape{out[1]}); err != nil {
		return [6][]float32{}, err
	}
	return convOperands(op, []string{"dx", "dw", "db", "dy", "x", "w"}, dx, dw, db, dy, x, w)
}

func checkGrads(op string, dx *kernels.Tensor, xs kernels.Shape, dw *kernels.Tensor, ws kernels.Shape, db *kernels.Tensor, bs kernels.Shape) error {
	if dx != nil {
		if err := kernels.CheckShape(op+": dx", dx, xs); err != nil {
			return err
		}
	}
	if dw != nil {
		if err := kernels.CheckShape(op+": dw", dw, ws); err != nil {
			return err
		}
	}
	if db != nil {
		if err := kernels.CheckShape(op+": db", db, bs); err != nil {
			return err
		}
	}
	return nil
}

// convTranspose2DPlan checks x and w and returns y's shape and the GEMM
// plan: y is the image, x's grid the positions, outer = C/group.
func convTranspose2DPlan(op string, x, w *kernels.Tensor, p kernels.ConvTransposeParams) (kernels.Shape, *convPlan, error) {
	if x == nil || w == nil {
		return nil, nil, fmt.Errorf("%w: %s: x and w must not be nil", kernels.ErrShape, op)
	}
	out, err := kernels.ConvTranspose2DOutShape(x.Shape, w.Shape, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	p = p.WithDefaults()
	q := &convPlan{n: x.Shape[0], groups: p.Group, outer: x.Shape[1] / p.Group, geo: convGeom{
		c: w.Shape[1], h: out[2], w: out[3], kh: w.Shape[2], kw: w.Shape[3],
		sh: p.Strides[0], sw: p.Strides[1], dh: p.Dilations[0], dw: p.Dilations[1],
		pt: p.Pads[0], pl: p.Pads[1], oh: x.Shape[2], ow: x.Shape[3],
	}}
	return out, q.withTaps(), nil
}

// ConvTranspose2D implements kernels.ConvOps. It equals the plain scatter
// loop (see kernelstest's reference)
//
//	y[n][m][oy*sh-pt+ki*dh][ox*sw-pl+kj*dw] += x[n][c][oy][ox] * w[c][m-g*M/G][ki][kj]
//
// over c in group g = m/(M/G) (then + b[m]), computed as col2im of
// W_g^T * x[n,g]: Conv2D's input gradient with y as the image.
func (c *CPU) ConvTranspose2D(y, x, w, b *kernels.Tensor, p kernels.ConvTransposeParams) error {
	const op = "conv_transpose2d"
	e, err := c.convTranspose2DEntry(op, x, w, p)
	if err != nil {
		return err
	}
	q := e.q
	if err := kernels.CheckShape(op+": y", y, e.out); err != nil {
		return err
	}
	if b != nil {
		if err := kernels.CheckShape(op+": b", b, e.bias); err != nil {
			return err
		}
	}
	d, err := convOperands(op, []string{"y", "x", "w", "b"}, y, x, w, b)
	if err != nil {
		return err
	}
	if q.disjointOK() {
		c.convTransposeDisjoint(q, d[0], d[1], d[2], d[3])
		return nil
	}
	c.backwardImage(q, d[0], d[1], d[2], d[3])
	return nil
}

// ConvTranspose2DBackward implements kernels.ConvOps:
//
//	dx[n,g] = W_g * im2col(dy[n,g])          (a Conv2D of dy)
//	dw_g = sum_n x[n,g] * im2col(dy[n,g])^T
//	db[m] = sum_{n,oy,ox} dy[n][m][oy][ox]
//
// Nil gradients are skipped.
func (c *CPU) ConvTranspose2DBackward(dx, dw, db, dy, x, w *kernels.Tensor, p kernels.ConvTransposeParams) error {
	const op = "conv_transpose2d_backward"
	out, q, err := convTranspose2DPlan(op, x, w, p)
	if err != nil {
		return err
	}
	d, err := convBackwardOperands(op, out, dx, dw, db, dy, x, w)
	if err != nil {
		return err
	}
	if d[2] != nil {
		c.biasGrad(d[2], d[3], q.n, out[1], out[2]*out[3])
	}
	if d[1] != nil {
		c.weightGradCols(q, d[1], d[4], d[3])
	}
	if d[0] != nil {
		c.forwardCols(q, d[0], d[3], d[5], nil)
	}
	return nil
}
