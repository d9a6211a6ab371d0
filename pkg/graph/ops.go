package graph

import (
	"hash/fnv"
	"math"

	"vireo/pkg/kernels"
)

// opFunc analyses one node: it checks the inputs and attributes, computes
// the output shapes, folds the node when its inputs are constants, and
// returns builders for the kernels.
type opFunc func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error)

// opTable maps an ONNX op type to its analyser.
var opTable = buildOpTable()

func buildOpTable() map[string]opFunc {
	t := map[string]opFunc{
		"Conv":               opConv,
		"ConvTranspose":      opConvTranspose,
		"Gemm":               opGemm,
		"MatMul":             opMatMul,
		"BatchNormalization": opBatchNorm,
		"Add":                opBinary(kernels.OpAdd),
		"Sub":                opBinary(kernels.OpSub),
		"Mul":                opBinary(kernels.OpMul),
		"Div":                opBinary(kernels.OpDiv),
		"Pow":                opBinary(kernels.OpPow),
		"Max":                opBinary(kernels.OpMax),
		"Min":                opBinary(kernels.OpMin),
		"MaxPool":            opPool(kernels.PoolMax),
		"AveragePool":        opPool(kernels.PoolAvg),
		"GlobalAveragePool":  opGlobalPool(kernels.PoolAvg),
		"GlobalMaxPool":      opGlobalPool(kernels.PoolMax),
		"Concat":             opConcat,
		"Split":              opSplit,
		"Slice":              opSlice,
		"Pad":                opPad,
		"Resize":             opResize,
		"Upsample":           opResize,
		"DepthToSpace":       opDepthToSpace,
		"Reshape":            opReshape,
		"Flatten":            opFlatten,
		"Transpose":          opTranspose,
		"Squeeze":            opSqueeze,
		"Unsqueeze":          opUnsqueeze,
		"Softmax":            opSoftmax(false),
		"LogSoftmax":         opSoftmax(true),
		"ReduceMean":         opReduce(true),
		"ReduceSum":          opReduce(false),
		"Dropout":            opDropout,
		"Identity":           opIdentity,
		"Constant":           opConstant,
		"ConstantOfShape":    opConstantOfShape,
		"Shape":              opShape,
		"Gather":             opGather,
		"Cast":               opCast,
		"ArgMax":             opArgMax,
	}
	for name, kind := range map[string]kernels.ActKind{
		"Relu": kernels.ActRelu, "LeakyRelu": kernels.ActLeakyRelu, "Sigmoid": kernels.ActSigmoid,
		"HardSigmoid": kernels.ActHardSigmoid, "HardSwish": kernels.ActHardSwish, "Tanh": kernels.ActTanh,
		"Clip": kernels.ActClip, "Exp": kernels.ActExp, "Log": kernels.ActLog, "Sqrt": kernels.ActSqrt,
		"Neg": kernels.ActNeg, "Abs": kernels.ActAbs,
	} {
		t[name] = opActivation(kind)
	}
	return t
}

// diffSlots lists the input slots of n that carry gradients; a float
// initializer in one of them is a trainable parameter.
func diffSlots(n *Node) []int {
	switch n.Op {
	case "Conv", "ConvTranspose", "Gemm":
		return []int{0, 1, 2}
	case "BatchNormalization":
		return []int{0, 1, 2}
	case "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min":
		return []int{0, 1}
	case "Concat":
		s := make([]int, len(n.Inputs))
		for i := range s {
			s[i] = i
		}
		return s
	case "Shape", "ArgMax", "Constant":
		return nil
	}
	return []int{0}
}

// buildCtx gives builders their backend and tensors.
type buildCtx struct {
	b kernels.Backend
	p *Program
}

// in returns the tensor of s's input i (uploading a constant once).
func (c *buildCtx) in(s *step, i int) (*kernels.Tensor, error) {
	if i >= len(s.ins) || s.ins[i] == nil {
		return nil, nil
	}
	return c.p.tensorOf(s.ins[i])
}

// out returns the tensor of s's output i, or a scratch tensor when the
// output is not requested.
func (c *buildCtx) out(s *step, i int) (*kernels.Tensor, error) {
	if i < len(s.outs) && s.outs[i] != nil {
		return s.outs[i].t, nil
	}
	return c.alloc(s.plan.outShapes[i])
}

func (c *buildCtx) alloc(shape []int) (*kernels.Tensor, error) { return c.p.alloc(shape) }

// ---- helpers for analysers -------------------------------------------------

func isConst(v *value) bool { return v != nil && v.konst != nil && !v.param }

func wantInputs(n *Node, ins []*value, lo, hi int) error {
	if len(ins) < lo || len(ins) > hi {
		if lo == hi {
			return nodeErr(n, ErrInvalid, "%d inputs (want %d)", len(ins), lo)
		}
		return nodeErr(n, ErrInvalid, "%d inputs (want %d to %d)", len(ins), lo, hi)
	}
	for i := 0; i < lo; i++ {
		if ins[i] == nil {
			return nodeErr(n, ErrInvalid, "required input %d is empty", i)
		}
	}
	return nil
}

func wantRank(n *Node, v *value, what string, rank int) error {
	if len(v.shape) != rank {
		return nodeErr(n, kernels.ErrShape, "%s %q has shape %v (got rank %d, want %d)", what, v.name, v.shape, len(v.shape), rank)
	}
	return nil
}

func wantFloat(n *Node, v *value, what string) error {
	if v.dtype != Float32 {
		return nodeErr(n, ErrUnsupported, "%s %q has dtype %v (want float32)", what, v.name, v.dtype)
	}
	return nil
}

// constInts returns a constant input's values as ints.
func constInts(n *Node, v *value, what string) ([]int, error) {
	if !isConst(v) {
		return nil, nodeErr(n, ErrUnsupported, "input %s %q must be a constant (known when compiling)", what, v.name)
	}
	t := v.konst
	out := make([]int, t.Numel())
	for i := range out {
		if t.DType == Int64 {
			out[i] = int(t.Int[i])
		} else {
			out[i] = int(t.Float[i])
		}
	}
	return out, nil
}

// constFloats returns a constant input's values as float32.
func constFloats(n *Node, v *value, what string) ([]float32, error) {
	if !isConst(v) {
		return nil, nodeErr(n, ErrUnsupported, "input %s %q must be a constant (known when compiling)", what, v.name)
	}
	t := v.konst
	out := make([]float32, t.Numel())
	for i := range out {
		if t.DType == Int64 {
			out[i] = float32(t.Int[i])
		} else {
			out[i] = t.Float[i]
		}
	}
	return out, nil
}

// simple builds a plan with one float output of shape s.
func simple(s []int) *opPlan {
	return &opPlan{outShapes: [][]int{s}, outDTypes: []DType{Float32}, diff: []int{0}}
}

// fwdXY is the forward of an op whose kernel writes output 0 from input 0.
func fwdXY(f func(b kernels.Backend, y, x *kernels.Tensor) error) func(*buildCtx, *step) (func() error, error) {
	return func(c *buildCtx, s *step) (func() error, error) {
		xt, err := c.in(s, 0)
		if err != nil {
			return nil, err
		}
		y, b := s.outs[0].t, c.b
		return func() error { return f(b, y, xt) }, nil
	}
}

// bwdDY is the backward of such an op when dx needs only dy.
func bwdDY(f func(b kernels.Backend, dx, dy *kernels.Tensor) error) func(*buildCtx, *step, []*kernels.Tensor, []*kernels.Tensor) (func() error, error) {
	return func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		dx, dy, b := gin[0], gout[0], c.b
		return func() error { return f(b, dx, dy) }, nil
	}
}

// bwdXY is the backward of such an op when dx also needs x and y
// (pooling).
func bwdXY(f func(b kernels.Backend, dx, dy, x, y *kernels.Tensor) error) func(*buildCtx, *step, []*kernels.Tensor, []*kernels.Tensor) (func() error, error) {
	return func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		xt, err := c.in(s, 0)
		if err != nil {
			return nil, err
		}
		dx, dy, y, b := gin[0], gout[0], s.outs[0].t, c.b
		return func() error { return f(b, dx, dy, xt, y) }, nil
	}
}

// viewPlan is a Reshape-like op: output 0 views input 0 with shape s.
func viewPlan(in *value, s []int) *opPlan {
	return &opPlan{outShapes: [][]int{s}, outDTypes: []DType{in.dtype}, view: true, diff: []int{0}}
}

// foldedView reshapes a constant on the host.
func foldedView(t *Tensor, s []int) *Tensor {
	return &Tensor{DType: t.DType, Shape: cloneInts(s), Float: t.Float, Int: t.Int}
}

// ---- activations -------------------------------------------------------------

func opActivation(kind kernels.ActKind) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		hi := 1
		if kind == kernels.ActClip {
			hi = 3
		}
		if err := wantInputs(n, ins, 1, hi); err != nil {
			return nil, err
		}
		if err := wantFloat(n, ins[0], "input"); err != nil {
			return nil, err
		}
		act := kernels.Act{Kind: kind}
		switch kind {
		case kernels.ActLeakyRelu:
			act.Alpha = at.float("alpha", 0.01)
		case kernels.ActHardSigmoid:
			act.Alpha = at.float("alpha", 0.2)
			act.Beta = at.float("beta", 0.5)
		case kernels.ActClip:
			act.Alpha = at.float("min", -maxFloat32)
			act.Beta = at.float("max", maxFloat32)
			for i, dst := range []*float32{&act.Alpha, &act.Beta} {
				if len(ins) > i+1 && ins[i+1] != nil {
					v, err := constFloats(n, ins[i+1], []string{"min", "max"}[i])
					if err != nil {
						return nil, err
					}
					if len(v) != 1 {
						return nil, nodeErr(n, kernels.ErrShape, "clip bound has %d values (want 1)", len(v))
					}
					*dst = v[0]
				}
			}
		case kernels.ActSigmoid, kernels.ActTanh, kernels.ActRelu, kernels.ActHardSwish, kernels.ActExp,
			kernels.ActLog, kernels.ActSqrt, kernels.ActNeg, kernels.ActAbs:
		}
		p := simple(cloneInts(ins[0].shape))
		p.inplace = true
		p.fwd = func(c *buildCtx, s *step) (func() error, error) {
			x, err := c.in(s, 0)
			if err != nil {
				return nil, err
			}
			y := s.outs[0].t
			b := c.b
			return func() error { return b.Activation(y, x, act) }, nil
		}
		p.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
			x, err := c.in(s, 0)
			if err != nil {
				return nil, err
			}
			y, dx, dy, b := s.outs[0].t, gin[0], gout[0], c.b
			return func() error { return b.ActivationBackward(dx, dy, x, y, act) }, nil
		}
		return p, nil
	}
}

const maxFloat32 = 3.4028234663852886e38

// ---- binary ------------------------------------------------------------------

func opBinary(op kernels.BinaryOp) opFunc {
	return func(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
		if (op == kernels.OpMax || op == kernels.OpMin) && len(ins) == 1 {
			if err := wantInputs(n, ins, 1, 1); err != nil {
				return nil, err
			}
			return identityPlan(ins[0]), nil
		}
		if (op == kernels.OpMax || op == kernels.OpMin) && len(ins) > 2 {
			return nil, nodeErr(n, ErrUnsupported, "%d inputs (the variadic form takes at most 2 here)", len(ins))
		}
		if err := wantInputs(n, ins, 2, 2); err != nil {
			return nil, err
		}
		at.ignore("broadcast", "axis") // opset < 7 forms: only numpy broadcasting is implemented
		if at.has("broadcast") && at.has("axis") {
			at.unsupported("axis", "legacy broadcasting with an axis")
		}
		x, y := ins[0], ins[1]
		s, err := kernels.BroadcastShape(x.shape, y.shape)
		if err != nil {
			return nil, nodeErr(n, kernels.ErrShape, "shapes %v and %v do not broadcast", x.shape, y.shape)
		}
		if isConst(x) && isConst(y) {
			t, err := hostBinary(n, op, x.konst, y.konst, s)
			if err != nil {
				return nil, err
			}
			return &opPlan{consts: []*Tensor{t}}, nil
		}
		if x.dtype != Float32 || y.dtype != Float32 {
			if !(op == kernels.OpPow && x.dtype == Float32) {
				return nil, nodeErr(n, ErrUnsupported, "runtime %v op on dtypes %v and %v (want float32)", op, x.dtype, y.dtype)
			}
		}
		p := simple(s)
		p.diff = []int{0, 1}
		p.fwd = func(c *buildCtx, st *step) (func() error, error) {
			xa, err := c.in(st, 0)
			if err != nil {
				return nil, err
			}
			xb, err := c.in(st, 1)
			if err != nil {
				return nil, err
			}
			out, b := st.outs[0].t, c.b
			return func() error { return b.Binary(out, xa, xb, op) }, nil
		}
		p.bwd = func(c *buildCtx, st *step, gin, gout []*kernels.Tensor) (func() error, error) {
			xa, err := c.in(st, 0)
			if err != nil {
				return nil, err
			}
			xb, err := c.in(st, 1)
			if err != nil {
				return nil, err
			}
			da, db, dc, b := gin[0], gin[1], gout[0], c.b
			return func() error { return b.BinaryBackward(da, db, dc, xa, xb, op) }, nil
		}
		return p, nil
	}
}

// hostBinary folds a binary op on constants (shape arithmetic, mostly).
func hostBinary(n *Node, op kernels.BinaryOp, x, y *Tensor, s []int) (*Tensor, error) {
	isInt := x.DType == Int64 && y.DType == Int64
	out := &Tensor{DType: Float32, Shape: cloneInts(s)}
	num := numel(s)
	if isInt {
		out.DType = Int64
		out.Int = make([]int64, num)
	} else {
		out.Float = make([]float32, num)
	}
	xi := bcastIndex(x.Shape, s)
	yi := bcastIndex(y.Shape, s)
	get := func(t *Tensor, i int) float64 {
		if t.DType == Int64 {
			return float64(t.Int[i])
		}
		return float64(t.Float[i])
	}
	for i := 0; i < num; i++ {
		if isInt {
			u, v := x.Int[xi(i)], y.Int[yi(i)]
			var r int64
			switch op {
			case kernels.OpAdd:
				r = u + v
			case kernels.OpSub:
				r = u - v
			case kernels.OpMul:
				r = u * v
			case kernels.OpDiv:
				if v == 0 {
					return nil, nodeErr(n, ErrInvalid, "integer division by zero in a constant")
				}
				r = u / v
			case kernels.OpMax:
				r = max(u, v)
			case kernels.OpMin:
				r = min(u, v)
			default:
				return nil, nodeErr(n, ErrUnsupported, "integer %v on constants", n.Op)
			}
			out.Int[i] = r
			continue
		}
		u, v := get(x, xi(i)), get(y, yi(i))
		var r float64
		switch op {
		case kernels.OpAdd:
			r = u + v
		case kernels.OpSub:
			r = u - v
		case kernels.OpMul:
			r = u * v
		case kernels.OpDiv:
			r = u / v
		case kernels.OpMax:
			r = max(u, v)
		case kernels.OpMin:
			r = min(u, v)
		case kernels.OpPow:
			r = math.Pow(u, v)
		}
		out.Float[i] = float32(r)
	}
	return out, nil
}

// bcastIndex maps a flat index of shape s to the flat index of an operand
// of shape src broadcast to s.
func bcastIndex(src, s []int) func(int) int {
	r := len(s)
	strides := make([]int, r)
	acc := 1
	for i := len(src) - 1; i >= 0; i-- {
		j := i + r - len(src)
		if src[i] != 1 {
			strides[j] = acc
		}
		acc *= src[i]
	}
	return func(flat int) int {
		idx := 0
		for d := r - 1; d >= 0; d-- {
			idx += (flat % s[d]) * strides[d]
			flat /= s[d]
		}
		return idx
	}
}

// ---- views and constants -------------------------------------------------------

func identityPlan(in *value) *opPlan {
	if isConst(in) {
		return &opPlan{consts: []*Tensor{foldedView(in.konst, in.shape)}}
	}
	return viewPlan(in, cloneInts(in.shape))
}

func opIdentity(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	return identityPlan(ins[0]), nil
}

func opDropout(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 3); err != nil {
		return nil, err
	}
	at.ignore("seed", "is_test")
	ratio := at.float("ratio", 0.5)
	if len(ins) > 1 && ins[1] != nil {
		r, err := constFloats(n, ins[1], "ratio")
		if err != nil {
			return nil, err
		}
		if len(r) != 1 {
			return nil, nodeErr(n, kernels.ErrShape, "ratio has %d values (want 1)", len(r))
		}
		ratio = r[0]
	}
	if ratio < 0 || ratio >= 1 {
		return nil, nodeErr(n, ErrInvalid, "ratio %g (want in [0,1))", ratio)
	}
	// training_mode (input 2) is decided by Options.Training; a constant
	// true in an inference program is refused rather than ignored.
	if len(ins) > 2 && ins[2] != nil && !a.opt.Training {
		tm, err := constInts(n, ins[2], "training_mode")
		if err != nil {
			return nil, err
		}
		if len(tm) == 1 && tm[0] != 0 {
			return nil, nodeErr(n, ErrUnsupported, "training_mode true in an inference program (compile with Options.Training)")
		}
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return nil, nodeErr(n, ErrUnsupported, "mask output %q", n.Outputs[1])
	}
	x := ins[0]
	if !a.opt.Training || ratio == 0 {
		return identityPlan(x), nil
	}
	if err := wantFloat(n, x, "input"); err != nil {
		return nil, err
	}
	p := simple(cloneInts(x.shape))
	p.extras = []kernels.Shape{kernels.Shape(cloneInts(x.shape))}
	p.fwd = func(c *buildCtx, s *step) (func() error, error) {
		xt, err := c.in(s, 0)
		if err != nil {
			return nil, err
		}
		y, mask, b, prog := s.outs[0].t, s.extra[0], c.b, c.p
		// The salt names the node by its output, not by its step: graph
		// rewrites before it (FuseBatchNormRelu drops steps) must not
		// change its masks.
		h := fnv.New64a()
		h.Write([]byte(n.Outputs[0]))
		salt := h.Sum64() * 0x9E3779B97F4A7C15
		return func() error { return b.Dropout(y, mask, xt, ratio, prog.seed^salt) }, nil
	}
	p.bwd = func(c *buildCtx, s *step, gin, gout []*kernels.Tensor) (func() error, error) {
		dx, dy, mask, b := gin[0], gout[0], s.extra[0], c.b
		return func() error { return b.DropoutBackward(dx, dy, mask, ratio) }, nil
	}
	return p, nil
}

func opConstant(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 0, 0); err != nil {
		return nil, err
	}
	var t *Tensor
	if v, ok := at.tensor("value"); ok {
		if err := checkConst(v); err != nil {
			return nil, nodeErr(n, ErrInvalid, "value: %v", err)
		}
		t = foldedView(v, v.Shape)
	} else if f, ok := at.get("value_float", AttrFloat); ok {
		t = &Tensor{DType: Float32, Shape: []int{}, Float: []float32{f.Float}}
	} else if f, ok := at.floats("value_floats"); ok {
		t = &Tensor{DType: Float32, Shape: []int{len(f)}, Float: f}
	} else if i, ok := at.get("value_int", AttrInt); ok {
		t = &Tensor{DType: Int64, Shape: []int{}, Int: []int64{i.Int}}
	} else if i, ok := at.ints("value_ints"); ok {
		t = &Tensor{DType: Int64, Shape: []int{len(i)}, Int: i}
	}
	if at.err != nil {
		return nil, at.err
	}
	if t == nil {
		for name := range n.Attrs {
			return nil, nodeErr(n, ErrUnsupported, "unsupported attribute %q", name)
		}
		return nil, nodeErr(n, ErrInvalid, "no value attribute")
	}
	return &opPlan{consts: []*Tensor{t}}, nil
}

func opShape(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	s := ins[0].shape
	r := len(s)
	start, end := int(at.int("start", 0)), int(at.int("end", int64(r)))
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = min(max(start, 0), r), min(max(end, 0), r)
	vals := []int64{}
	for i := start; i < end; i++ {
		vals = append(vals, int64(s[i]))
	}
	return &opPlan{consts: []*Tensor{{DType: Int64, Shape: []int{len(vals)}, Int: vals}}}, nil
}

func opCast(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	at.ignore("saturate")
	to := at.int("to", 0)
	var dt DType
	switch to {
	case 1, 10, 11: // float, float16, double: all float32 here
		dt = Float32
	case 6, 7, 9, 2, 3, 4, 5, 12, 13: // integer types and bool: int64 here
		dt = Int64
	default:
		return nil, nodeErr(n, ErrUnsupported, "attribute \"to\": element type %d", to)
	}
	x := ins[0]
	if isConst(x) {
		t := &Tensor{DType: dt, Shape: cloneInts(x.shape)}
		src := x.konst
		switch {
		case dt == src.DType:
			t.Float, t.Int = src.Float, src.Int
		case dt == Float32:
			t.Float = make([]float32, len(src.Int))
			for i, v := range src.Int {
				t.Float[i] = float32(v)
			}
		default:
			t.Int = make([]int64, len(src.Float))
			for i, v := range src.Float {
				t.Int[i] = int64(v) // truncation toward zero, as ONNX
			}
			if to == 9 {
				for i := range t.Int {
					if t.Int[i] != 0 || src.Float[i] != 0 {
						t.Int[i] = 1
					}
				}
			}
		}
		return &opPlan{consts: []*Tensor{t}}, nil
	}
	// Runtime values are stored as float32 whatever their label (ArgMax
	// yields integral floats), so a cast is a relabelling view; a cast to
	// an integer of a non-integral value is not supported at runtime.
	if dt == Int64 && x.dtype == Float32 && (x.prod == nil || x.prod.node.Op != "ArgMax") {
		return nil, nodeErr(n, ErrUnsupported, "runtime cast of float32 %q to integer type %d", x.name, to)
	}
	p := viewPlan(x, cloneInts(x.shape))
	p.outDTypes = []DType{dt}
	if dt != Float32 {
		p.diff = nil
	}
	return p, nil
}

// opConstantOfShape folds ConstantOfShape: a tensor of the (constant) shape
// given by input 0, filled with the one-element "value" attribute (float32
// zero by default).
func opConstantOfShape(a *analysis, n *Node, ins []*value, at *attrs) (*opPlan, error) {
	if err := wantInputs(n, ins, 1, 1); err != nil {
		return nil, err
	}
	s, err := constInts(n, ins[0], "shape")
	if err != nil {
		return nil, err
	}
	if len(ins[0].shape) != 1 {
		return nil, nodeErr(n, kernels.ErrShape, "shape input has shape %v (want 1-D)", ins[0].shape)
	}
	for _, d := range s {
		if d < 0 {
			return nil, nodeErr(n, ErrInvalid, "shape %v has a negative dim", s)
		}
	}
	t := &Tensor{DType: Float32, Shape: cloneInts(s)}
	num := numel(s)
	if v, ok := at.tensor("value"); ok {
		if v.Numel() != 1 || checkConst(v) != nil {
			return nil, nodeErr(n, ErrInvalid, "attribute \"value\" has shape %v (want one element)", v.Shape)
		}
		t.DType = v.DType
		if v.DType == Int64 {
			t.Int = make([]int64, num)
			for i := range t.Int {
				t.Int[i] = v.Int[0]
			}
		} else {
			t.Float = make([]float32, num)
			for i := range t.Float {
				t.Float[i] = v.Float[0]
			}
		}
	} else {
		t.Float = make([]float32, num)
	}
	if at.err != nil {
		return nil, at.err
	}
	return &opPlan{consts: []*Tensor{t}}, nil
}
