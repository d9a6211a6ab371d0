package graph

import (
	"vireo/pkg/kernels"
)

// spatial2D reads the common 2-D window attributes of Conv, ConvTranspose
// and the pools: kernel_shape (checked against k when given), strides,
// dilations, pads, auto_pad.
type window struct {
	kernel, strides, dils [2]int
	pads                  [4]int
	autoPad               string
}

func readWindow(n *Node, at *attrs, k []int, needKernel bool) (window, error) {
	w := window{strides: [2]int{1, 1}, dils: [2]int{1, 1}}
	if ks, ok := at.ints("kernel_shape"); ok {
		if len(ks) != 2 {
			at.unsupported("kernel_shape", "%v (only 2-D windows)", ks)
		} else {
			w.kernel = [2]int{int(ks[0]), int(ks[1])}
			if k != nil && (w.kernel[0] != k[0] || w.kernel[1] != k[1]) {
				return w, nodeErr(n, kernels.ErrShape, "kernel_shape %v does not match the weight's %v", ks, k)
			}
		}
	} else if k != nil {
		w.kernel = [2]int{k[0], k[1]}
	} else if needKernel {
		return w, nodeErr(n, ErrInvalid, "attribute \"kernel_shape\" is required")
	}
	for _, f := range []struct {
		name string
		dst  []int
	}{{"strides", w.strides[:]}, {"dilations", w.dils[:]}, {"pads", w.pads[:]}} {
		if v, ok := at.ints(f.name); ok {
			if len(v) != len(f.dst) {
				at.unsupported(f.name, "%v (want %d values for 2-D)", v, len(f.dst))
				continue
			}
			for i, x := range v {
				f.dst[i] = int(x)
			}
		}
	}
	for i := 0; i < 2; i++ {
		if w.strides[i] <= 0 || w.dils[i] <= 0 || w.kernel[i] <= 0 && needKernel {
			return w, nodeErr(n, ErrInvalid, "kernel %v strides %v dilations %v (want > 0)", w.kernel, w.strides, w.dils)
		}
	}
	for _, p := range w.pads {
		if p < 0 {
			return w, nodeErr(n, ErrUnsupported, "attribute \"pads\": negative pads %v", w.pads)
		}
	}
	w.autoPad = at.str("auto_pad", "NOTSET")
	switch w.autoPad {
	case "NOTSET", "":
	case "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		at.unsupported("auto_pad", "%q", w.autoPad)
	}
	return w, at.err
}

// resolve applies auto_pad for input extents hw.
func (w *window) resolve(hw []int) {
	for i := 0; i < 2; i++ {
		if b, e, ok := autoPads(w.autoPad, hw[i], w.kernel[i], w.strides[i], w.dils[i]); ok {
			w.pads[i], w.pads[i+2] = b, e
		}
	}
}

func opConv(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	plan, _, err := convPlanOf(n, ins, at)
	return plan, err
}

// convPlanOf is opConv's plan and the resolved convolution params.
func convPlanOf(n *Node, ins []*value, at *attrs) (*opPlan, kernels.ConvParams, error) {
	var p kernels.ConvParams
	if err := wantInputs(n, ins, 2, 3); err != nil {
		return nil, p, err
	}
	x, w := ins[0], ins[1]
	if err := want2D(n, x); err != nil {
		return nil, p, err
	}
	if err := wantRank(n, w, "weight", 4); err != nil {
		return nil, p, err
	}
	win, err := readWindow(n, at, w.shape[2:], true)
	if err != nil {
		return nil, p, err
	}
	group := int(at.int("group", 1))
	if group <= 0 || x.shape[1]%group != 0 || w.shape[0]%group != 0 {
		return nil, p, nodeErr(n, ErrInvalid, "group %d for %d input and %d output channels", group, x.shape[1], w.shape[0])
	}
	if w.shape[1]*group != x.shape[1] {
		return nil, p, nodeErr(n, kernels.ErrShape, "weight %v: got %d input channels per group, want %d (input %v, group %d)", w.shape, w.shape[1], x.shape[1]/group, x.shape, group)
	}
	if len(ins) > 2 && ins[2] != nil && !equalInts(ins[2].shape, []int{w.shape[0]}) {
		return nil, p, nodeErr(n, kernels.ErrShape, "bias %v (want [%d])", ins[2].shape, w.shape[0])
	}
	win.resolve(x.shape[2:])
	p = kernels.ConvParams{Strides: win.strides, Pads: win.pads, Dilations: win.dils, Group: group}
	out, err := kernels.Conv2DOutShape(x.shape, w.shape, p)
	if err != nil {
		return nil, p, nodeWrap(n, err)
	}
	plan := convPlan(out,
		func(b kernels.Backend, y, x, w, bias *kernels.Tensor) error { return b.Conv2D(y, x, w, bias, p) },
		func(b kernels.Backend, dx, dw, db, dy, x, w *kernels.Tensor) error {
			return b.Conv2DBackward(dx, dw, db, dy, x, w, p)
		})
	return plan, p, nil
}

// convPlan is the plan of a convolution-like op: inputs x, w and an
// optional bias, all three differentiable.
func convPlan(out []int, fwd func(b kernels.Backend, y, x, w, bias *kernels.Tensor) error,
	bwd func(b kernels.Backend, dx, dw, db, dy, x, w *kernels.Tensor) error) *opPlan {
	plan := simple(out)
	plan.diff = []int{0, 1, 2}
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xt, wt, bt, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		return func() error { return fwd(b, y, xt, wt, bt) }, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		xt, wt, _, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		dx, dw, db, dy, b := gin[0], gin[1], ginAt(gin, 2), gout[0], c.b
		return func() error { return bwd(b, dx, dw, db, dy, xt, wt) }, nil
	}
	return plan
}

func ginAt(gin []*kernels.Tensor, i int) *kernels.Tensor {
	if i < len(gin) {
		return gin[i]
	}
	return nil
}

func in3(c *buildCtx, s *step) (x, w, b *kernels.Tensor, err error) {
	if x, err = c.in(s, 0); err != nil {
		return
	}
	if w, err = c.in(s, 1); err != nil {
		return
	}
	b, err = c.in(s, 2)
	return
}

func opConvTranspose(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 2, 3); err != nil {
		return nil, err
	}
	x, w := ins[0], ins[1]
	if err := want2D(n, x); err != nil {
		return nil, err
	}
	if err := wantRank(n, w, "weight", 4); err != nil {
		return nil, err
	}
	win, err := readWindow(n, at, w.shape[2:], true)
	if err != nil {
		return nil, err
	}
	group := int(at.int("group", 1))
	if group <= 0 || x.shape[1]%group != 0 {
		return nil, nodeErr(n, ErrInvalid, "group %d for %d input channels", group, x.shape[1])
	}
	if w.shape[0] != x.shape[1] {
		return nil, nodeErr(n, kernels.ErrShape, "weight %v: got %d input channels, want %d (input %v)", w.shape, w.shape[0], x.shape[1], x.shape)
	}
	m := w.shape[1] * group
	if len(ins) > 2 && ins[2] != nil && !equalInts(ins[2].shape, []int{m}) {
		return nil, nodeErr(n, kernels.ErrShape, "bias %v (want [%d])", ins[2].shape, m)
	}
	var opad [2]int
	if v, ok := at.ints("output_padding"); ok {
		if len(v) != 2 {
			at.unsupported("output_padding", "%v (want 2 values)", v)
		} else {
			opad = [2]int{int(v[0]), int(v[1])}
		}
	}
	full := func(i int) int {
		return win.strides[i]*(x.shape[2+i]-1) + opad[i] + (win.kernel[i]-1)*win.dils[i] + 1
	}
	if os, ok := at.ints("output_shape"); ok {
		if len(os) != 2 {
			at.unsupported("output_shape", "%v (want 2 values)", os)
		} else {
			for i := 0; i < 2; i++ {
				total := full(i) - int(os[i])
				if total < 0 {
					at.unsupported("output_shape", "%v larger than the full output", os)
					break
				}
				if win.autoPad == "SAME_UPPER" {
					win.pads[i], win.pads[i+2] = total/2, total-total/2
				} else {
					win.pads[i], win.pads[i+2] = total-total/2, total/2
				}
			}
		}
	} else if win.autoPad == "SAME_UPPER" || win.autoPad == "SAME_LOWER" {
		for i := 0; i < 2; i++ {
			total := max(0, full(i)-x.shape[2+i]*win.strides[i])
			if win.autoPad == "SAME_UPPER" {
				win.pads[i], win.pads[i+2] = total/2, total-total/2
			} else {
				win.pads[i], win.pads[i+2] = total-total/2, total/2
			}
		}
	} else if win.autoPad == "VALID" {
		win.pads = [4]int{}
	}
	if at.err != nil {
		return nil, at.err
	}
	p := kernels.ConvTransposeParams{Strides: win.strides, Pads: win.pads, Dilations: win.dils, OutputPadding: opad, Group: group}
	out, err := kernels.ConvTranspose2DOutShape(x.shape, w.shape, p)
	if err != nil {
		return nil, nodeWrap(n, err)
	}
	plan := convPlan(out,
		func(b kernels.Backend, y, x, w, bias *kernels.Tensor) error {
			return b.ConvTranspose2D(y, x, w, bias, p)
		},
		func(b kernels.Backend, dx, dw, db, dy, x, w *kernels.Tensor) error {
			return b.ConvTranspose2DBackward(dx, dw, db, dy, x, w, p)
		})
	return plan, nil
}

func opGemm(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 2, 3); err != nil {
		return nil, err
	}
	at.ignore("broadcast")
	ta, tb := at.int("transA", 0) != 0, at.int("transB", 0) != 0
	alpha, beta := at.float("alpha", 1), at.float("beta", 1)
	if at.err != nil {
		return nil, at.err
	}
	A, B := ins[0], ins[1]
	if err := wantRank(n, A, "A", 2); err != nil {
		return nil, err
	}
	if err := wantRank(n, B, "B", 2); err != nil {
		return nil, err
	}
	out, err := kernels.GemmOutShape(A.shape, B.shape, kernels.GemmParams{TransA: ta, TransB: tb})
	if err != nil {
		return nil, nodeWrap(n, err)
	}
	hasC := len(ins) > 2 && ins[2] != nil
	if hasC {
		if s, err := kernels.BroadcastShape(out, ins[2].shape); err != nil || !equalInts(s, out) {
			return nil, nodeErr(n, kernels.ErrShape, "C %v does not broadcast to %v", ins[2].shape, out)
		}
	}
	plan := simple(out)
	plan.diff = []int{0, 1, 2}
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		at, bt, ct, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		if ct == nil || beta == 0 {
			p := kernels.GemmParams{TransA: ta, TransB: tb, Alpha: alpha, Beta: 0}
			return func() error { return b.Gemm(y, at, bt, p) }, nil
		}
		p := kernels.GemmParams{TransA: ta, TransB: tb, Alpha: alpha, Beta: beta}
		return func() error {
			if err := b.BroadcastTo(y, ct); err != nil {
				return err
			}
			return b.Gemm(y, at, bt, p)
		}, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		at, bt, ct, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		da, db, dc, dy, y, b := gin[0], gin[1], ginAt(gin, 2), gout[0], s.outs[0].t, c.b
		// dA = alpha * dY op(B)^T, laid out like A; dB likewise.
		var pa, pb kernels.GemmParams
		var la, ra, lb, rb *kernels.Tensor
		switch {
		case !ta && !tb: // A(M,K) B(K,N): dA = dY B^T, dB = A^T dY
			la, ra, pa = dy, bt, kernels.GemmParams{TransB: true}
			lb, rb, pb = at, dy, kernels.GemmParams{TransA: true}
		case !ta && tb: // A(M,K) B(N,K): dA = dY B, dB = dY^T A
			la, ra, pa = dy, bt, kernels.GemmParams{}
			lb, rb, pb = dy, at, kernels.GemmParams{TransA: true}
		case ta && !tb: // A(K,M) B(K,N): dA = B dY^T, dB = A dY
			la, ra, pa = bt, dy, kernels.GemmParams{TransB: true}
			lb, rb, pb = at, dy, kernels.GemmParams{}
		default: // A(K,M) B(N,K): dA = B^T dY^T, dB = dY^T A^T
			la, ra, pa = bt, dy, kernels.GemmParams{TransA: true, TransB: true}
			lb, rb, pb = dy, at, kernels.GemmParams{TransA: true, TransB: true}
		}
		pa.Alpha, pb.Alpha = alpha, alpha
		return func() error {
			if da != nil {
				if err := b.Gemm(da, la, ra, pa); err != nil {
					return err
				}
			}
			if db != nil {
				if err := b.Gemm(db, lb, rb, pb); err != nil {
					return err
				}
			}
			if dc != nil {
				// Sum dY over the dims C was broadcast along.
				if err := b.BinaryBackward(nil, dc, dy, y, ct, kernels.OpAdd); err != nil {
					return err
				}
				if beta != 1 {
					return b.Scale(dc, beta)
				}
			}
			return nil
		}, nil
	}
	return plan, nil
}

func opMatMul(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 2, 2); err != nil {
		return nil, err
	}
	A, B := ins[0], ins[1]
	out, err := kernels.MatMulOutShape(A.shape, B.shape)
	if err != nil {
		return nil, nodeWrap(n, err)
	}
	plan := simple(out)
	plan.diff = []int{0, 1}
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		at, bt, _, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		return func() error { return b.MatMul(y, at, bt) }, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		at, bt, _, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		da, db, dy, b := gin[0], gin[1], gout[0], c.b
		return func() error { return b.MatMulBackward(da, db, dy, at, bt) }, nil
	}
	return plan, nil
}

func opBatchNorm(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	return batchNormPlan(a, n, ins, at, false)
}

// opFusedBNRelu is a training-mode BatchNormalization followed by Relu
// (FuseBatchNormRelu): BatchNormalization's inputs and attributes, Relu's
// output, run by kernels.FusedBNReluOps.
func opFusedBNRelu(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if !a.opt.Training {
		return nil, nodeErr(n, ErrUnsupported, "fused BatchNormalization+Relu outside training")
	}
	return batchNormPlan(a, n, ins, at, true)
}

// batchNormPlan plans BatchNormalization, followed by Relu when relu (the
// fused training node; the backend is then a kernels.FusedBNReluOps).
func batchNormPlan(a *analysis, n *Node, ins []*value, at *attrs, relu bool) (*opPlan, error) {
	if err := wantInputs(n, ins, 5, 5); err != nil {
		return nil, err
	}
	eps := at.float("epsilon", 1e-5)
	momentum := at.float("momentum", 0.9)
	at.ignore("training_mode", "is_test", "consumed_inputs")
	if at.int("spatial", 1) != 1 {
		at.unsupported("spatial", "0 (per-activation statistics)")
	}
	if at.err != nil {
		return nil, at.err
	}
	x := ins[0]
	if len(x.shape) < 2 {
		return nil, nodeErr(n, kernels.ErrShape, "input %v (want rank >= 2)", x.shape)
	}
	ch := x.shape[1]
	for i, what := range []string{"", "scale", "bias", "mean", "var"} {
		if i == 0 {
			continue
		}
		if !equalInts(ins[i].shape, []int{ch}) {
			return nil, nodeErr(n, kernels.ErrShape, "%s %q has shape %v (want [%d])", what, ins[i].name, ins[i].shape, ch)
		}
	}
	for _, o := range n.Outputs[min(1, len(n.Outputs)):] {
		if o != "" {
			return nil, nodeErr(n, ErrUnsupported, "optional output %q (running statistics are updated in place)", o)
		}
	}
	plan := simple(cloneInts(x.shape))
	plan.diff = []int{0, 1, 2}
	if !a.opt.Training {
		plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
			t := make([]*kernels.Tensor, 5)
			for i := range t {
				var err error
				if t[i], err = c.in(s, i); err != nil {
					return nil, err
				}
			}
			y, b := s.outs[0].t, c.b
			return func() error { return b.BatchNormInference(y, t[0], t[1], t[2], t[3], t[4], eps) }, nil
		}
		plan.diff = nil
		return plan, nil
	}
	for i := 3; i < 5; i++ {
		if !ins[i].isInit {
			return nil, nodeErr(n, ErrUnsupported, "training with running statistic %q that is not an initializer", ins[i].name)
		}
	}
	plan.extras = []kernels.Shape{{ch}, {ch}}
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		t := make([]*kernels.Tensor, 5)
		for i := range t {
			var err error
			if t[i], err = c.in(s, i); err != nil {
				return nil, err
			}
		}
		y, sm, si, b := s.outs[0].t, s.extra[0], s.extra[1], c.b
		if relu {
			fb, ok := b.(kernels.FusedBNReluOps)
			if !ok {
				return nil, nodeErr(n, kernels.ErrUnsupported, "fused BatchNormalization+Relu on a backend without it")
			}
			return func() error {
				return fb.BatchNormTrainingRelu(y, t[0], t[1], t[2], t[3], t[4], sm, si, eps, momentum)
			}, nil
		}
		return func() error {
			return b.BatchNormTraining(y, t[0], t[1], t[2], t[3], t[4], sm, si, eps, momentum)
		}, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		xt, scale, _, err := in3(c, s)
		if err != nil {
			return nil, err
		}
		dx, ds, db, dy, sm, si, b := gin[0], gin[1], gin[2], gout[0], s.extra[0], s.extra[1], c.b
		if relu {
			fb, ok := b.(kernels.FusedBNReluOps)
			if !ok {
				return nil, nodeErr(n, kernels.ErrUnsupported, "fused BatchNormalization+Relu on a backend without it")
			}
			y := s.outs[0].t
			return func() error { return fb.BatchNormBackwardRelu(dx, ds, db, dy, y, xt, scale, sm, si) }, nil
		}
		return func() error { return b.BatchNormBackward(dx, ds, db, dy, xt, scale, sm, si) }, nil
	}
	return plan, nil
}

func opPool(kind kernels.PoolKind) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		if err := wantInputs(n, ins, 1, 1); err != nil {
			return nil, err
		}
		x := ins[0]
		if err := want2D(n, x); err != nil {
			return nil, err
		}
		win, err := readWindow(n, at, nil, true)
		if err != nil {
			return nil, err
		}
		p := kernels.PoolParams{Kind: kind, Kernel: win.kernel, Strides: win.strides, Dilations: win.dils}
		p.CeilMode = at.int("ceil_mode", 0) != 0
		if kind == kernels.PoolAvg {
			p.CountIncludePad = at.int("count_include_pad", 0) != 0
		} else if at.int("storage_order", 0) != 0 {
			at.unsupported("storage_order", "1 (column-major indices)")
		}
		if len(n.Outputs) > 1 && n.Outputs[1] != "" {
			return nil, nodeErr(n, ErrUnsupported, "optional output Indices %q", n.Outputs[1])
		}
		if at.err != nil {
			return nil, at.err
		}
		win.resolve(x.shape[2:])
		p.Pads = win.pads
		out := []int{x.shape[0], x.shape[1], 0, 0}
		for i := 0; i < 2; i++ {
			if win.autoPad == "SAME_UPPER" || win.autoPad == "SAME_LOWER" {
				out[2+i] = (x.shape[2+i] + p.Strides[i] - 1) / p.Strides[i]
				continue
			}
			out[2+i] = windowOut(x.shape[2+i], p.Kernel[i], p.Strides[i], p.Dilations[i], p.Pads[i], p.Pads[i+2], p.CeilMode)
		}
		plan := simple(out)
		plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.Pool2D(y, x, p) })
		plan.bwd = bwdXY(func(b kernels.Backend, dx, dy, x, y *kernels.Tensor) error { return b.Pool2DBackward(dx, dy, x, y, p) })
		return plan, nil
	}
}

func opGlobalPool(kind kernels.PoolKind) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		if err := wantInputs(n, ins, 1, 1); err != nil {
			return nil, err
		}
		x := ins[0]
		if err := want2D(n, x); err != nil {
			return nil, err
		}
		plan := simple([]int{x.shape[0], x.shape[1], 1, 1})
		plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.GlobalPool(y, x, kind) })
		plan.bwd = bwdXY(func(b kernels.Backend, dx, dy, x, y *kernels.Tensor) error {
			return b.GlobalPoolBackward(dx, dy, x, y, kind)
		})
		return plan, nil
	}
}

// want2D checks that a convolution or pooling input is (N,C,H,W): 1-D and
// 3-D windows (rank 3 and 5) are valid ONNX the executor does not
// implement.
func want2D(n *Node, x *value) error {
	if r := len(x.shape); r == 3 || r == 5 {
		return nodeErr(n, ErrUnsupported, "%d-D window on input %q of shape %v (only 2-D: rank-4 NCHW inputs)", r-2, x.name, x.shape)
	}
	return wantRank(n, x, "input", 4)
}
