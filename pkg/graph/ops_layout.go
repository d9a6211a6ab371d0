package graph

import (
	"math"

	"vireo/pkg/kernels"
)

func opConcat(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if len(ins) == 0 {
		return nil, nodeErr(n, ErrInvalid, "no inputs")
	}
	for i, v := range ins {
		if v == nil {
			return nil, nodeErr(n, ErrInvalid, "input %d is empty", i)
		}
	}
	if !at.has("axis") {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\" is required")
	}
	r := len(ins[0].shape)
	axis, err := kernels.NormalizeAxis(int(at.int("axis", 0)), r)
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\": %v", err)
	}
	out := cloneInts(ins[0].shape)
	out[axis] = 0
	allConst := true
	for _, v := range ins {
		if len(v.shape) != r {
			return nil, nodeErr(n, kernels.ErrShape, "input %q has shape %v (want rank %d like %v)", v.name, v.shape, r, ins[0].shape)
		}
		for d := range v.shape {
			if d != axis && v.shape[d] != ins[0].shape[d] {
				return nil, nodeErr(n, kernels.ErrShape, "input %q has shape %v (got dim %d = %d, want %d)", v.name, v.shape, d, v.shape[d], ins[0].shape[d])
			}
		}
		out[axis] += v.shape[axis]
		allConst = allConst && isConst(v)
	}
	if allConst {
		ts := make([]*Tensor, len(ins))
		for i, v := range ins {
			ts[i] = v.konst
		}
		return &opPlan{consts: []*Tensor{hostConcat(ts, axis, out)}}, nil
	}
	for _, v := range ins {
		if err := wantFloat(n, v, "input"); err != nil {
			return nil, err
		}
	}
	if len(ins) == 1 {
		return identityPlan(ins[0]), nil
	}
	plan := simple(out)
	plan.diff = diffSlots(n)
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xs := make([]*kernels.Tensor, len(s.ins))
		for i := range xs {
			var err error
			if xs[i], err = c.in(s, i); err != nil {
				return nil, err
			}
		}
		y, b := s.outs[0].t, c.b
		return func() error { return b.Concat(y, xs, axis) }, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		ys := make([]*kernels.Tensor, len(gin))
		for i := range ys {
			ys[i] = gin[i]
			if ys[i] == nil {
				var err error
				if ys[i], err = c.alloc(s.ins[i].shape); err != nil {
					return nil, err
				}
			}
		}
		dy, b := gout[0], c.b
		return func() error { return b.Split(ys, dy, axis) }, nil
	}
	return plan, nil
}

func hostConcat(ts []*Tensor, axis int, out []int) *Tensor {
	res := &Tensor{DType: ts[0].DType, Shape: cloneInts(out)}
	outer := numel(out[:axis])
	inner := numel(out[axis+1:])
	for o := 0; o < outer; o++ {
		for _, t := range ts {
			chunk := t.Shape[axis] * inner
			if t.DType == Int64 {
				res.Int = append(res.Int, t.Int[o*chunk:(o+1)*chunk]...)
			} else {
				res.Float = append(res.Float, t.Float[o*chunk:(o+1)*chunk]...)
			}
		}
	}
	if res.DType == Int64 && res.Int == nil {
		res.Int = []int64{}
	}
	return res
}

func opSplit(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 2); err != nil {
		return nil, err
	}
	x := ins[0]
	axis, err := kernels.NormalizeAxis(int(at.int("axis", 0)), len(x.shape))
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\": %v", err)
	}
	nOut := len(n.Outputs)
	if no := at.int("num_outputs", 0); no > 0 {
		nOut = int(no)
	}
	var sizes []int
	if s, ok := at.ints("split"); ok {
		sizes = toInts(s)
	} else if len(ins) > 1 && ins[1] != nil {
		if sizes, err = constInts(n, ins[1], "split"); err != nil {
			return nil, err
		}
	} else {
		if nOut <= 0 {
			return nil, nodeErr(n, ErrInvalid, "no outputs")
		}
		d := x.shape[axis]
		chunk := (d + nOut - 1) / nOut
		for rest := d; rest > 0; rest -= chunk {
			sizes = append(sizes, min(chunk, rest))
		}
	}
	if at.err != nil {
		return nil, at.err
	}
	total := 0
	for _, s := range sizes {
		if s <= 0 {
			return nil, nodeErr(n, kernels.ErrShape, "split sizes %v (want > 0)", sizes)
		}
		total += s
	}
	if total != x.shape[axis] || len(sizes) != len(n.Outputs) {
		return nil, nodeErr(n, kernels.ErrShape, "split sizes %v of axis %d of %v: got sum %d for %d outputs, want sum %d for %d outputs", sizes, axis, x.shape, total, len(sizes), x.shape[axis], len(n.Outputs))
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	plan := &opPlan{diff: []int{0}}
	for _, s := range sizes {
		o := cloneInts(x.shape)
		o[axis] = s
		plan.outShapes = append(plan.outShapes, o)
		plan.outDTypes = append(plan.outDTypes, Float32)
	}
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xt, err := c.in(s, 0)
		if err != nil {
			return nil, err
		}
		ys := make([]*kernels.Tensor, len(sizes))
		for i := range ys {
			if ys[i], err = c.out(s, i); err != nil {
				return nil, err
			}
		}
		b := c.b
		return func() error { return b.Split(ys, xt, axis) }, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		dys := make([]*kernels.Tensor, len(gout))
		for i := range dys {
			dys[i] = gout[i]
			if dys[i] == nil { // an output nobody reads: zero gradient
				t, err := c.alloc(plan.outShapes[i])
				if err != nil {
					return nil, err
				}
				dys[i] = t
			}
		}
		dx, b := gin[0], c.b
		return func() error { return b.Concat(dx, dys, axis) }, nil
	}
	return plan, nil
}

// normSlice resolves ONNX Slice arguments against shape into one
// (start, end, step) per axis and the output shape. Starts are clamped into
// range; for negative steps an end of -1 means "through index 0".
func normSlice(shape, starts, ends, axes, steps []int) (kernels.SliceParams, []int, error) {
	r := len(shape)
	p := kernels.SliceParams{Starts: make([]int, r), Ends: cloneInts(shape), Steps: make([]int, r)}
	for i := range p.Steps {
		p.Steps[i] = 1
	}
	if len(ends) != len(starts) {
		return p, nil, errorf("%d starts and %d ends (want equal)", len(starts), len(ends))
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, i)
		}
	}
	if len(axes) != len(starts) || (steps != nil && len(steps) != len(starts)) {
		return p, nil, errorf("%d starts, %d axes, %d steps (want equal)", len(starts), len(axes), len(steps))
	}
	seen := make([]bool, r)
	for i, ax := range axes {
		a, err := kernels.NormalizeAxis(ax, r)
		if err != nil {
			return p, nil, err
		}
		if seen[a] {
			return p, nil, errorf("axis %d repeated", a)
		}
		seen[a] = true
		d := shape[a]
		st := 1
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return p, nil, errorf("step 0 on axis %d", a)
		}
		s, e := starts[i], ends[i]
		if s < 0 {
			s += d
		}
		if e < 0 && e > math.MinInt32 {
			e += d
		} else if e <= math.MinInt32 {
			e = -1
		}
		if st > 0 {
			s, e = min(max(s, 0), d), min(max(e, 0), d)
		} else {
			s, e = min(max(s, 0), d-1), min(max(e, -1), d-1)
		}
		p.Starts[a], p.Ends[a], p.Steps[a] = s, e, st
	}
	out := make([]int, r)
	for a := range out {
		s, e, st := p.Starts[a], p.Ends[a], p.Steps[a]
		if st > 0 {
			out[a] = max(0, (e-s+st-1)/st)
		} else {
			out[a] = max(0, (s-e-st-1)/(-st))
		}
	}
	return p, out, nil
}

func hostSlice(t *Tensor, p kernels.SliceParams, out []int) *Tensor {
	res := &Tensor{DType: t.DType, Shape: cloneInts(out)}
	strides := kernels.Shape(t.Shape).Strides()
	num := numel(out)
	for i := 0; i < num; i++ {
		flat, src := i, 0
		for d := len(out) - 1; d >= 0; d-- {
			k := flat % out[d]
			flat /= out[d]
			src += (p.Starts[d] + k*p.Steps[d]) * strides[d]
		}
		if t.DType == Int64 {
			res.Int = append(res.Int, t.Int[src])
		} else {
			res.Float = append(res.Float, t.Float[src])
		}
	}
	if res.DType == Int64 && res.Int == nil {
		res.Int = []int64{}
	}
	if res.DType == Float32 && res.Float == nil {
		res.Float = []float32{}
	}
	return res
}

func opSlice(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 5); err != nil {
		return nil, err
	}
	x := ins[0]
	var starts, ends, axes, steps []int
	if len(ins) == 1 { // opset 1: attributes
		s, ok1 := at.ints("starts")
		e, ok2 := at.ints("ends")
		if !ok1 || !ok2 {
			return nil, nodeErr(n, ErrInvalid, "attributes \"starts\" and \"ends\" are required")
		}
		starts, ends = toInts(s), toInts(e)
		if ax, ok := at.ints("axes"); ok {
			axes = toInts(ax)
		}
	} else {
		if len(ins) < 3 || ins[1] == nil || ins[2] == nil {
			return nil, nodeErr(n, ErrInvalid, "inputs starts and ends are required")
		}
		var err error
		if starts, err = constInts(n, ins[1], "starts"); err != nil {
			return nil, err
		}
		if ends, err = constInts(n, ins[2], "ends"); err != nil {
			return nil, err
		}
		if len(ins) > 3 && ins[3] != nil {
			if axes, err = constInts(n, ins[3], "axes"); err != nil {
				return nil, err
			}
		}
		if len(ins) > 4 && ins[4] != nil {
			if steps, err = constInts(n, ins[4], "steps"); err != nil {
				return nil, err
			}
		}
	}
	if at.err != nil {
		return nil, at.err
	}
	p, out, err := normSlice(x.shape, starts, ends, axes, steps)
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "%v (input %v)", err, x.shape)
	}
	if isConst(x) {
		return &opPlan{consts: []*Tensor{hostSlice(x.konst, p, out)}}, nil
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	return slicePlan(p, out), nil
}

func slicePlan(p kernels.SliceParams, out []int) *opPlan {
	plan := simple(out)
	plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xt, err := c.in(s, 0)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		// y may carry fewer dims than x (Gather): the kernel sees x's rank.
		yv, err := y.Reshaped(sliceShape(p)...)
		if err != nil {
			return nil, err
		}
		return func() error { return b.Slice(yv, xt, p) }, nil
	}
	plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		dyv, err := gout[0].Reshaped(sliceShape(p)...)
		if err != nil {
			return nil, err
		}
		dx, b := gin[0], c.b
		return func() error { return b.SliceBackward(dx, dyv, p) }, nil
	}
	return plan
}

func sliceShape(p kernels.SliceParams) []int {
	out := make([]int, len(p.Starts))
	for a := range out {
		s, e, st := p.Starts[a], p.Ends[a], p.Steps[a]
		if st > 0 {
			out[a] = max(0, (e-s+st-1)/st)
		} else {
			out[a] = max(0, (s-e-st-1)/(-st))
		}
	}
	return out
}

func opPad(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 4); err != nil {
		return nil, err
	}
	x := ins[0]
	r := len(x.shape)
	p := kernels.PadParams{}
	switch mode := at.str("mode", "constant"); mode {
	case "constant":
		p.Mode = kernels.PadConstant
	case "reflect":
		p.Mode = kernels.PadReflect
	case "edge":
		p.Mode = kernels.PadEdge
	default:
		at.unsupported("mode", "%q", mode)
	}
	var pads []int
	var err error
	if v, ok := at.ints("pads"); ok {
		pads = toInts(v)
		p.Value = at.float("value", 0)
	} else if len(ins) > 1 && ins[1] != nil {
		if pads, err = constInts(n, ins[1], "pads"); err != nil {
			return nil, err
		}
		if len(ins) > 2 && ins[2] != nil {
			v, err := constFloats(n, ins[2], "constant_value")
			if err != nil {
				return nil, err
			}
			if len(v) != 1 {
				return nil, nodeErr(n, kernels.ErrShape, "constant_value has %d values (want 1)", len(v))
			}
			p.Value = v[0]
		}
	} else {
		return nil, nodeErr(n, ErrInvalid, "no pads")
	}
	if at.err != nil {
		return nil, at.err
	}
	if len(ins) > 3 && ins[3] != nil { // opset 18 axes
		axes, err := constInts(n, ins[3], "axes")
		if err != nil {
			return nil, err
		}
		if len(pads) != 2*len(axes) {
			return nil, nodeErr(n, kernels.ErrShape, "%d pads for %d axes (want %d)", len(pads), len(axes), 2*len(axes))
		}
		full := make([]int, 2*r)
		for i, ax := range axes {
			a, err := kernels.NormalizeAxis(ax, r)
			if err != nil {
				return nil, nodeErr(n, ErrInvalid, "axes: %v", err)
			}
			full[a], full[a+r] = pads[i], pads[i+len(axes)]
		}
		pads = full
	}
	if len(pads) != 2*r {
		return nil, nodeErr(n, kernels.ErrShape, "%d pads for input %v (want %d)", len(pads), x.shape, 2*r)
	}
	p.Pads = pads
	out := make([]int, r)
	for i := range out {
		out[i] = x.shape[i] + pads[i] + pads[i+r]
		if p.Mode == kernels.PadReflect && (pads[i] >= x.shape[i] || pads[i+r] >= x.shape[i]) {
			return nil, nodeErr(n, kernels.ErrShape, "reflect pads %v for input %v (want < dim)", pads, x.shape)
		}
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	plan := simple(out)
	plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.Pad(y, x, p) })
	plan.bwd = bwdDY(func(b kernels.Backend, dx, dy *kernels.Tensor) error { return b.PadBackward(dx, dy, p) })
	return plan, nil
}

func opResize(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 4); err != nil {
		return nil, err
	}
	x := ins[0]
	r := len(x.shape)
	upsample := n.Op == "Upsample"
	p := kernels.ResizeParams{Coord: kernels.CoordHalfPixel, Nearest: kernels.NearestRoundPreferFloor}
	if upsample || a.opset < 11 {
		p.Coord, p.Nearest = kernels.CoordAsymmetric, kernels.NearestFloor
	}
	switch mode := at.str("mode", "nearest"); mode {
	case "nearest":
		p.Mode = kernels.ResizeNearest
	case "linear", "bilinear":
		p.Mode = kernels.ResizeLinear
	default:
		at.unsupported("mode", "%q", mode)
	}
	if !upsample && a.opset >= 11 {
		switch cm := at.str("coordinate_transformation_mode", "half_pixel"); cm {
		case "half_pixel":
			p.Coord = kernels.CoordHalfPixel
		case "asymmetric":
			p.Coord = kernels.CoordAsymmetric
		case "align_corners":
			p.Coord = kernels.CoordAlignCorners
		case "pytorch_half_pixel":
			p.Coord = kernels.CoordPytorchHalfPixel
		case "tf_half_pixel_for_nn":
			p.Coord = kernels.CoordTFHalfPixelForNN
		default:
			at.unsupported("coordinate_transformation_mode", "%q", cm)
		}
		switch nm := at.str("nearest_mode", "round_prefer_floor"); nm {
		case "round_prefer_floor":
			p.Nearest = kernels.NearestRoundPreferFloor
		case "round_prefer_ceil":
			p.Nearest = kernels.NearestRoundPreferCeil
		case "floor":
			p.Nearest = kernels.NearestFloor
		case "ceil":
			p.Nearest = kernels.NearestCeil
		default:
			at.unsupported("nearest_mode", "%q", nm)
		}
	}
	at.ignore("cubic_coeff_a", "extrapolation_value")
	if at.int("exclude_outside", 0) != 0 {
		at.unsupported("exclude_outside", "1")
	}
	if at.int("antialias", 0) != 0 {
		at.unsupported("antialias", "1")
	}
	if pol := at.str("keep_aspect_ratio_policy", "stretch"); pol != "stretch" {
		at.unsupported("keep_aspect_ratio_policy", "%q", pol)
	}
	if _, ok := at.ints("axes"); ok {
		at.unsupported("axes", "a subset of axes")
	}
	var scales []float32
	var sizes []int
	var err error
	if s, ok := at.floats("scales"); ok { // Upsample-7
		scales = s
	}
	if at.err != nil {
		return nil, at.err
	}
	scaleIdx, sizeIdx := 2, 3
	if upsample || a.opset < 11 {
		scaleIdx, sizeIdx = 1, -1
	}
	if scaleIdx < len(ins) && ins[scaleIdx] != nil && numel(ins[scaleIdx].shape) > 0 {
		if scales, err = constFloats(n, ins[scaleIdx], "scales"); err != nil {
			return nil, err
		}
	}
	if sizeIdx > 0 && sizeIdx < len(ins) && ins[sizeIdx] != nil && numel(ins[sizeIdx].shape) > 0 {
		if sizes, err = constInts(n, ins[sizeIdx], "sizes"); err != nil {
			return nil, err
		}
	}
	out := make([]int, r)
	p.Scales = make([]float32, r)
	switch {
	case sizes != nil:
		if len(sizes) != r {
			return nil, nodeErr(n, kernels.ErrShape, "sizes %v for input %v (want %d values)", sizes, x.shape, r)
		}
		for i := range out {
			out[i] = sizes[i]
			p.Scales[i] = float32(sizes[i]) / float32(x.shape[i])
		}
	case scales != nil:
		if len(scales) != r {
			return nil, nodeErr(n, kernels.ErrShape, "scales %v for input %v (want %d values)", scales, x.shape, r)
		}
		for i := range out {
			if scales[i] <= 0 {
				return nil, nodeErr(n, ErrInvalid, "scales %v (want > 0)", scales)
			}
			out[i] = int(math.Floor(float64(x.shape[i]) * float64(scales[i])))
			p.Scales[i] = scales[i]
		}
	default:
		return nil, nodeErr(n, ErrInvalid, "neither scales nor sizes given")
	}
	if p.Mode == kernels.ResizeLinear && r == 4 && (out[0] != x.shape[0] || out[1] != x.shape[1]) {
		return nil, nodeErr(n, ErrUnsupported, "linear resize of the batch or channel axis (scales %v)", p.Scales)
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	plan := simple(out)
	plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.Resize(y, x, p) })
	plan.bwd = bwdDY(func(b kernels.Backend, dx, dy *kernels.Tensor) error { return b.ResizeBackward(dx, dy, p) })
	return plan, nil
}

func opDepthToSpace(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	x := ins[0]
	if err := wantRank(n, x, "input", 4); err != nil {
		return nil, err
	}
	bs := int(at.int("blocksize", 0))
	p := kernels.DepthToSpaceParams{Blocksize: bs}
	switch m := at.str("mode", "DCR"); m {
	case "DCR":
	case "CRD":
		p.CRD = true
	default:
		at.unsupported("mode", "%q", m)
	}
	if at.err != nil {
		return nil, at.err
	}
	if bs <= 0 || x.shape[1]%(bs*bs) != 0 {
		return nil, nodeErr(n, kernels.ErrShape, "blocksize %d for input %v (want channels divisible by %d)", bs, x.shape, bs*bs)
	}
	plan := simple([]int{x.shape[0], x.shape[1] / (bs * bs), x.shape[2] * bs, x.shape[3] * bs})
	plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.DepthToSpace(y, x, p) })
	plan.bwd = bwdDY(func(b kernels.Backend, dx, dy *kernels.Tensor) error { return b.DepthToSpaceBackward(dx, dy, p) })
	return plan, nil
}

// reshapeOrFold is a view of x with shape s, folded when x is constant.
func reshapeOrFold(x *value, s []int) *opPlan {
	if isConst(x) {
		return &opPlan{consts: []*Tensor{foldedView(x.konst, s)}}
	}
	return viewPlan(x, s)
}

func opReshape(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 2); err != nil {
		return nil, err
	}
	x := ins[0]
	var shape []int
	var err error
	if s, ok := at.ints("shape"); ok { // opset 1-4
		shape = toInts(s)
	} else if len(ins) == 2 {
		if shape, err = constInts(n, ins[1], "shape"); err != nil {
			return nil, err
		}
	} else {
		return nil, nodeErr(n, ErrInvalid, "no shape")
	}
	allowzero := at.int("allowzero", 0) != 0
	if at.err != nil {
		return nil, at.err
	}
	out := make([]int, len(shape))
	infer := -1
	known := 1
	for i, d := range shape {
		switch {
		case d == 0 && !allowzero:
			if i >= len(x.shape) {
				return nil, nodeErr(n, kernels.ErrShape, "shape %v copies dim %d of input %v", shape, i, x.shape)
			}
			out[i] = x.shape[i]
		case d == -1:
			if infer >= 0 {
				return nil, nodeErr(n, kernels.ErrShape, "shape %v has two -1", shape)
			}
			infer = i
			continue
		case d < 0:
			return nil, nodeErr(n, kernels.ErrShape, "shape %v has dim %d", shape, d)
		default:
			out[i] = d
		}
		known *= out[i]
	}
	total := numel(x.shape)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, nodeErr(n, kernels.ErrShape, "cannot reshape %v (%d values) to %v", x.shape, total, shape)
		}
		out[infer] = total / known
	}
	if numel(out) != total {
		return nil, nodeErr(n, kernels.ErrShape, "reshape %v to %v: got %d values, want %d", x.shape, out, numel(out), total)
	}
	return reshapeOrFold(x, out), nil
}

func opFlatten(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	x := ins[0]
	axis := int(at.int("axis", 1))
	if axis < 0 {
		axis += len(x.shape)
	}
	if axis < 0 || axis > len(x.shape) {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\" %d for rank %d", axis, len(x.shape))
	}
	return reshapeOrFold(x, []int{numel(x.shape[:axis]), numel(x.shape[axis:])}), nil
}

// axesArg reads axes from an attribute (older opsets) or input 1.
func axesArg(n *Node, ins []*value, at *attrs) ([]int, bool, error) {
	if v, ok := at.ints("axes"); ok {
		return toInts(v), true, nil
	}
	if len(ins) > 1 && ins[1] != nil {
		ax, err := constInts(n, ins[1], "axes")
		return ax, true, err
	}
	return nil, false, at.err
}

func opSqueeze(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 2); err != nil {
		return nil, err
	}
	x := ins[0]
	axes, given, err := axesArg(n, ins, at)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(x.shape))
	if !given {
		for i, d := range x.shape {
			drop[i] = d == 1
		}
	}
	for _, ax := range axes {
		a, err := kernels.NormalizeAxis(ax, len(x.shape))
		if err != nil {
			return nil, nodeErr(n, ErrInvalid, "axes: %v", err)
		}
		if x.shape[a] != 1 {
			return nil, nodeErr(n, kernels.ErrShape, "squeeze axis %d of %v: got extent %d, want 1", a, x.shape, x.shape[a])
		}
		drop[a] = true
	}
	out := []int{}
	for i, d := range x.shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return reshapeOrFold(x, out), nil
}

func opUnsqueeze(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 2); err != nil {
		return nil, err
	}
	x := ins[0]
	axes, given, err := axesArg(n, ins, at)
	if err != nil {
		return nil, err
	}
	if !given {
		return nil, nodeErr(n, ErrInvalid, "no axes")
	}
	r := len(x.shape) + len(axes)
	ins1 := make([]bool, r)
	for _, ax := range axes {
		a, err := kernels.NormalizeAxis(ax, r)
		if err != nil || ins1[a] {
			return nil, nodeErr(n, ErrInvalid, "axes %v for output rank %d", axes, r)
		}
		ins1[a] = true
	}
	out := make([]int, r)
	j := 0
	for i := range out {
		if ins1[i] {
			out[i] = 1
		} else {
			out[i] = x.shape[j]
			j++
		}
	}
	return reshapeOrFold(x, out), nil
}

func opTranspose(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	x := ins[0]
	r := len(x.shape)
	perm := make([]int, r)
	for i := range perm {
		perm[i] = r - 1 - i
	}
	if p, ok := at.ints("perm"); ok {
		perm = toInts(p)
	}
	if at.err != nil {
		return nil, at.err
	}
	if len(perm) != r {
		return nil, nodeErr(n, kernels.ErrShape, "perm %v for input %v (want %d entries)", perm, x.shape, r)
	}
	seen := make([]bool, r)
	out := make([]int, r)
	for i, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return nil, nodeErr(n, ErrInvalid, "perm %v is not a permutation", perm)
		}
		seen[p] = true
		out[i] = x.shape[p]
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	inv := inversePerm(perm)
	plan := simple(out)
	plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.Transpose(y, x, perm) })
	plan.bwd = bwdDY(func(b kernels.Backend, dx, dy *kernels.Tensor) error { return b.Transpose(dx, dy, inv) })
	return plan, nil
}

func opSoftmax(log bool) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		if err := wantInputs(n, ins, 1, 1); err != nil {
			return nil, err
		}
		x := ins[0]
		r := len(x.shape)
		def := int64(-1)
		if a.opset < 13 {
			def = 1
		}
		axis, err := kernels.NormalizeAxis(int(at.int("axis", def)), r)
		if err != nil {
			return nil, nodeErr(n, ErrInvalid, "attribute \"axis\": %v", err)
		}
		if at.err != nil {
			return nil, at.err
		}
		if err := wantFloat(n, x, "input"); err != nil {
			return nil, err
		}
		// Before opset 13 the input is coerced to 2-D at axis.
		kShape, kAxis := x.shape, axis
		if a.opset < 13 && axis != r-1 {
			kShape, kAxis = []int{numel(x.shape[:axis]), numel(x.shape[axis:])}, 1
		}
		plan := simple(cloneInts(x.shape))
		plan.fwd = func(c *buildCtx, s *step) (func() error, error) {
			xt, err := c.in(s, 0)
			if err != nil {
				return nil, err
			}
			xv, err1 := xt.Reshaped(kShape...)
			yv, err2 := s.outs[0].t.Reshaped(kShape...)
			if err1 != nil || err2 != nil {
				return nil, nodeErr(n, kernels.ErrShape, "softmax view %v", kShape)
			}
			b := c.b
			return func() error { return b.Softmax(yv, xv, kAxis, log) }, nil
		}
		plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
			dx, err1 := gin[0].Reshaped(kShape...)
			dy, err2 := gout[0].Reshaped(kShape...)
			y, err3 := s.outs[0].t.Reshaped(kShape...)
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, nodeErr(n, kernels.ErrShape, "softmax view %v", kShape)
			}
			b := c.b
			return func() error { return b.SoftmaxBackward(dx, dy, y, kAxis, log) }, nil
		}
		return plan, nil
	}
}

func opReduce(mean bool) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		if err := wantInputs(n, ins, 1, 2); err != nil {
			return nil, err
		}
		x := ins[0]
		r := len(x.shape)
		axes, given, err := axesArg(n, ins, at)
		if err != nil {
			return nil, err
		}
		keep := at.int("keepdims", 1) != 0
		noop := at.int("noop_with_empty_axes", 0) != 0
		if at.err != nil {
			return nil, at.err
		}
		if (!given || len(axes) == 0) && noop {
			return identityPlan(x), nil
		}
		red := make([]bool, r)
		if !given || len(axes) == 0 {
			for i := range red {
				red[i] = true
			}
		}
		for _, ax := range axes {
			a, err := kernels.NormalizeAxis(ax, r)
			if err != nil {
				return nil, nodeErr(n, ErrInvalid, "axes: %v", err)
			}
			red[a] = true
		}
		var kAxes []int
		keepShape := make([]int, r)
		out := []int{}
		count := 1
		for i, d := range x.shape {
			keepShape[i] = d
			if red[i] {
				kAxes = append(kAxes, i)
				keepShape[i] = 1
				count *= d
				if keep {
					out = append(out, 1)
				}
			} else {
				out = append(out, d)
			}
		}
		if err := wantFloat(n, x, "input"); err != nil {
			return nil, err
		}
		plan := simple(out)
		plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error {
			if mean {
				return b.ReduceMean(y, x, kAxes)
			}
			return b.ReduceSum(y, x, kAxes)
		})
		plan.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
			dy, err := gout[0].Reshaped(keepShape...)
			if err != nil {
				return nil, err
			}
			dx, b := gin[0], c.b
			inv := 1 / float32(count)
			return func() error {
				if err := b.BroadcastTo(dx, dy); err != nil {
					return err
				}
				if mean {
					return b.Scale(dx, inv)
				}
				return nil
			}, nil
		}
		return plan, nil
	}
}

func opGather(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 2, 2); err != nil {
		return nil, err
	}
	x, idx := ins[0], ins[1]
	r := len(x.shape)
	axis, err := kernels.NormalizeAxis(int(at.int("axis", 0)), r)
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\": %v", err)
	}
	if at.err != nil {
		return nil, at.err
	}
	ids, err := constInts(n, idx, "indices")
	if err != nil {
		return nil, err
	}
	d := x.shape[axis]
	for i, v := range ids {
		if v < -d || v >= d {
			return nil, nodeErr(n, ErrInvalid, "index %d out of range [%d,%d) on axis %d of %v", v, -d, d, axis, x.shape)
		}
		if v < 0 {
			ids[i] = v + d
		}
	}
	out := append(append(cloneInts(x.shape[:axis]), idx.shape...), x.shape[axis+1:]...)
	if isConst(x) {
		return &opPlan{consts: []*Tensor{hostGather(x.konst, axis, ids, out)}}, nil
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	// At runtime: indices in arithmetic progression are a Slice.
	if len(idx.shape) > 1 {
		return nil, nodeErr(n, ErrUnsupported, "runtime gather with indices of rank %d", len(idx.shape))
	}
	st := 1
	if len(ids) > 1 {
		st = ids[1] - ids[0]
		for i := 2; i < len(ids); i++ {
			if ids[i]-ids[i-1] != st {
				st = 0
			}
		}
	}
	if st == 0 || len(ids) == 0 {
		return nil, nodeErr(n, ErrUnsupported, "runtime gather with indices %v (only evenly spaced ones)", ids)
	}
	starts, ends, steps := []int{ids[0]}, []int{ids[0] + st*len(ids)}, []int{st}
	if st < 0 && ends[0] < 0 {
		ends[0] = math.MinInt32
	}
	p, _, err := normSlice(x.shape, starts, ends, []int{axis}, steps)
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "%v", err)
	}
	return slicePlan(p, out), nil
}

func hostGather(t *Tensor, axis int, ids []int, out []int) *Tensor {
	res := &Tensor{DType: t.DType, Shape: cloneInts(out)}
	outer := numel(t.Shape[:axis])
	inner := numel(t.Shape[axis+1:])
	d := t.Shape[axis]
	for o := 0; o < outer; o++ {
		for _, id := range ids {
			lo := (o*d + id) * inner
			if t.DType == Int64 {
				res.Int = append(res.Int, t.Int[lo:lo+inner]...)
			} else {
				res.Float = append(res.Float, t.Float[lo:lo+inner]...)
			}
		}
	}
	if res.DType == Int64 && res.Int == nil {
		res.Int = []int64{}
	}
	if res.DType == Float32 && res.Float == nil {
		res.Float = []float32{}
	}
	return res
}

func opArgMax(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	x := ins[0]
	axis, err := kernels.NormalizeAxis(int(at.int("axis", 0)), len(x.shape))
	if err != nil {
		return nil, nodeErr(n, ErrInvalid, "attribute \"axis\": %v", err)
	}
	keep := at.int("keepdims", 1) != 0
	if at.int("select_last_index", 0) != 0 {
		at.unsupported("select_last_index", "1")
	}
	if at.err != nil {
		return nil, at.err
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	out := cloneInts(x.shape)
	if keep {
		out[axis] = 1
	} else {
		out = append(out[:axis], out[axis+1:]...)
	}
	plan := simple(out)
	plan.outDTypes = []DType{Int64}
	plan.diff = nil
	plan.fwd = fwdXY(func(b kernels.Backend, y, x *kernels.Tensor) error { return b.ArgMax(y, x, axis) })
	return plan, nil
}
