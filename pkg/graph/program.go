package graph

import (
	"fmt"
	"math"
	"sort"

	"vireo/pkg/kernels"
)

// Options configure Compile.
type Options struct {
	// InputShapes gives concrete shapes for inputs with dynamic dims
	// (batch size etc.). A Program runs only those shapes.
	InputShapes map[string][]int
	// Training keeps activations for Backward; BatchNormalization uses
	// batch statistics and updates the running statistics; Dropout is
	// active, with a new mask per Run.
	Training bool
	// NoFold disables Conv+BatchNormalization folding (folding is on by
	// default for inference, never for training).
	NoFold bool
	// NoFuse disables the fusion of Conv -> Add -> activation chains
	// into one kernel (FuseConvEpilogues; on by default for inference on
	// a backend that implements kernels.FusedConvOps) and, for training,
	// of BatchNormalization -> Relu (FuseBatchNormRelu; on by default on a
	// backend that implements kernels.FusedBNReluOps).
	NoFuse bool
	// InputGrads makes Backward also compute the gradients of the graph's
	// (non-initializer) inputs, read with Program.Grad (training only).
	InputGrads bool
}

// Param is a trainable parameter of a training Program: its value and the
// gradient Backward writes, both in the backend's memory.
type Param struct {
	Name        string
	Value, Grad *kernels.Tensor
}

// MemoryStats describe the activation memory of a Program.
type MemoryStats struct {
	// PlannedBytes is what the Program allocated for intermediate values
	// (after reuse by liveness and in-place activations).
	PlannedBytes int64
	// NaiveBytes is what one buffer per intermediate value would take.
	NaiveBytes int64
	// Buffers is the number of intermediate buffers allocated.
	Buffers int
	// Steps is the number of kernels Run launches; Folded the number of
	// nodes evaluated at compile time.
	Steps, Folded int
}

// Program is a compiled graph: sorted kernels, planned buffers, resolved
// params. It owns its backend tensors (Close frees them). A Program is not
// safe for concurrent use: Run and Backward reuse its buffers.
type Program struct {
	b       kernels.Backend
	g       *Graph
	opt     Options
	a       *analysis
	steps   []*step
	outVals []*value
	outs    []*kernels.Tensor
	allocs  []*kernels.Tensor
	stats   MemoryStats

	runs   uint64
	seed   uint64
	ran    bool
	closed bool

	// Training state.
	params    []*Param
	paramVals []*value
	runStats  []*value // BatchNormalization running statistics
	outGrads  []outGrad
	bwd       []func() error
	bwdSteps  []StepTime // what each bwd closure is, for BackwardProfiled
	// frozen parameters get no gradient (SetFrozen); bwdScratch are the
	// accumulation buffers of Backward by input slot, kept across plans.
	frozen     map[*value]bool
	bwdScratch map[int]*kernels.Tensor
}

// outGrad says how Backward seeds the gradient of one graph output.
type outGrad struct {
	v     *value
	first bool // the first contribution to its storage: overwrite
}

// Compile plans and allocates everything once: it sorts the nodes, infers
// shapes, folds constants (Constant nodes, Shape/Gather/Cast/Unsqueeze/
// Concat/Reshape/Slice/arithmetic over constants), folds Conv+
// BatchNormalization for inference, plans buffers with reuse by liveness,
// and resolves every kernel's params from the attributes.
func Compile(g *Graph, b kernels.Backend, opt Options) (*Program, error) {
	if g == nil || b == nil {
		return nil, fmt.Errorf("%w: nil graph or backend", ErrInvalid)
	}
	work := g
	if !opt.Training && !opt.NoFold {
		var err error
		if work, err = FoldConvBatchNorm(g); err != nil {
			return nil, err
		}
	}
	if _, ok := b.(kernels.FusedBNReluOps); ok && opt.Training && !opt.NoFuse {
		var err error
		if work, _, err = FuseBatchNormRelu(work); err != nil {
			return nil, err
		}
	}
	if fb, ok := b.(kernels.FusedConvOps); ok && !opt.Training && !opt.NoFuse {
		// Shapes decide which Adds are residuals; a graph whose shapes
		// do not resolve is left as is (analyze reports why).
		if shapes, err := InferShapes(work, opt.InputShapes); err == nil {
			if work, _, err = FuseConvEpiloguesAffine(work, shapes, fb.FusedActOK, affineOK(b)); err != nil {
				return nil, err
			}
		}
	}
	a, err := analyze(work, opt)
	if err != nil {
		return nil, err
	}
	p := &Program{b: b, g: g, opt: opt, a: a, steps: a.steps}
	if err := p.build(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Program) alloc(shape []int) (*kernels.Tensor, error) {
	s := kernels.Shape(cloneInts(shape))
	if len(s) == 0 {
		s = kernels.Shape{}
	}
	t, err := p.b.Alloc(s)
	if err != nil {
		return nil, fmt.Errorf("graph: alloc %v: %w", s, err)
	}
	p.allocs = append(p.allocs, t)
	return t, nil
}

// tensorOf returns v's backend tensor, uploading a constant the first time.
func (p *Program) tensorOf(v *value) (*kernels.Tensor, error) {
	if v.t != nil {
		return v.t, nil
	}
	if v.alias != nil {
		src, err := p.tensorOf(v.alias)
		if err != nil {
			return nil, err
		}
		if v.t, err = view(src, v.shape); err != nil {
			return nil, err
		}
		return v.t, nil
	}
	if v.konst == nil {
		return nil, fmt.Errorf("%w: value %q has no tensor", ErrState, v.name)
	}
	t, err := p.alloc(v.shape)
	if err != nil {
		return nil, err
	}
	vals := v.konst.Float
	if v.konst.DType == Int64 {
		vals = make([]float32, len(v.konst.Int))
		for i, x := range v.konst.Int {
			vals[i] = float32(x)
		}
	}
	if len(vals) > 0 {
		if err := p.b.Upload(t, vals); err != nil {
			return nil, fmt.Errorf("graph: upload %q: %w", v.name, err)
		}
	}
	v.t = t
	return t, nil
}

// view is a tensor of shape s over the first numel(s) elements of buf.
func view(buf *kernels.Tensor, s []int) (*kernels.Tensor, error) {
	n := numel(s)
	if n > buf.Numel() {
		return nil, fmt.Errorf("%w: view %v of a buffer of %d elements", kernels.ErrShape, s, buf.Numel())
	}
	t := &kernels.Tensor{Shape: kernels.Shape(cloneInts(s)), Dev: buf.Dev, Offset: buf.Offset}
	if buf.Data != nil {
		t.Data = buf.Data[:n:n]
	}
	return t, nil
}

const never = math.MaxInt

func (p *Program) build() error {
	a := p.a
	isOut := map[*value]bool{}
	for _, o := range p.g.Outputs {
		v := a.vals[o.Name]
		p.outVals = append(p.outVals, v)
		isOut[v] = true
	}
	// Own last use of each runtime value: its last consumer, never for
	// graph outputs (and everything in training, kept for Backward).
	ownLast := map[*value]int{}
	for _, s := range a.steps {
		for _, v := range s.outs {
			if v != nil {
				ownLast[v] = s.idx
			}
		}
		for _, v := range s.ins {
			if v != nil && v.prod != nil {
				ownLast[v] = max(ownLast[v], s.idx)
			}
		}
	}
	for v := range ownLast {
		if isOut[v] || p.opt.Training {
			ownLast[v] = never
		}
	}
	// Sweep: assign buffers, reusing freed ones (best fit).
	type buffer struct {
		size int
		t    *kernels.Tensor
	}
	var bufs []*buffer
	var free []int
	bufOf := map[*value]int{}
	end := map[*value]int{}
	take := func(n int) int {
		best := -1
		for i, id := range free {
			if bufs[id].size >= n && (best < 0 || bufs[id].size < bufs[free[best]].size) {
				best = i
			}
		}
		if best < 0 {
			for i, id := range free {
				if best < 0 || bufs[id].size > bufs[free[best]].size {
					best = i
				}
			}
		}
		if best < 0 {
			bufs = append(bufs, &buffer{size: n})
			return len(bufs) - 1
		}
		id := free[best]
		free = append(free[:best], free[best+1:]...)
		bufs[id].size = max(bufs[id].size, n)
		return id
	}
	release := func(r *value, i int) {
		if id, ok := bufOf[r]; ok && end[r] == i {
			free = append(free, id)
			end[r] = -1
		}
	}
	for _, s := range a.steps {
		for _, v := range s.outs {
			if v == nil {
				continue
			}
			p.stats.NaiveBytes += 4 * int64(numel(v.shape))
			if v.alias != nil {
				r := v.root()
				if _, ok := bufOf[r]; ok {
					end[r] = max(end[r], ownLast[v])
				}
				p.stats.NaiveBytes -= 4 * int64(numel(v.shape))
				continue
			}
			if s.plan.inplace && !p.opt.Training && s.ins[0] != nil && s.ins[0].prod != nil {
				r := s.ins[0].root()
				if _, ok := bufOf[r]; ok && end[r] == s.idx {
					v.alias = s.ins[0]
					end[r] = ownLast[v]
					continue
				}
			}
			bufOf[v] = take(numel(v.shape))
			end[v] = ownLast[v]
		}
		for _, v := range s.ins {
			if v != nil {
				release(v.root(), s.idx)
			}
		}
		for _, v := range s.outs {
			if v != nil {
				release(v.root(), s.idx)
			}
		}
	}
	for _, bf := range bufs {
		t, err := p.alloc([]int{max(bf.size, 1)})
		if err != nil {
			return err
		}
		bf.t = t
		p.stats.PlannedBytes += 4 * int64(bf.size)
	}
	p.stats.Buffers = len(bufs)
	p.stats.Steps = len(a.steps)
	p.stats.Folded = a.folded
	// Tensors: inputs, step outputs (views of buffers or aliases), extras.
	for _, v := range a.inputs {
		t, err := p.alloc(v.shape)
		if err != nil {
			return err
		}
		v.t = t
	}
	for _, s := range a.steps {
		for _, v := range s.outs {
			if v == nil {
				continue
			}
			if id, ok := bufOf[v]; ok {
				t, err := view(bufs[id].t, v.shape)
				if err != nil {
					return err
				}
				v.t = t
			} else if _, err := p.tensorOf(v); err != nil {
				return err
			}
		}
		for _, e := range s.plan.extras {
			t, err := p.alloc(e)
			if err != nil {
				return err
			}
			s.extra = append(s.extra, t)
		}
	}
	c := &buildCtx{b: p.b, p: p}
	for _, s := range a.steps {
		if s.plan.view || s.plan.fwd == nil {
			continue
		}
		f, err := s.plan.fwd(c, s)
		if err != nil {
			return fmt.Errorf("graph: %s: %w", nodeLabel(s.node), err)
		}
		s.fwd = f
	}
	p.outs = make([]*kernels.Tensor, len(p.outVals))
	for i, v := range p.outVals {
		t, err := p.tensorOf(v)
		if err != nil {
			return err
		}
		p.outs[i] = t
	}
	if p.opt.Training {
		return p.buildBackward(c)
	}
	return nil
}

// Run executes the program. inputs are in g.Inputs order (initializers
// excluded) with the shapes the program was compiled for. The outputs are
// in g.Outputs order, owned by the Program and valid until the next Run.
func (p *Program) Run(inputs ...*kernels.Tensor) ([]*kernels.Tensor, error) {
	if p.closed {
		return nil, fmt.Errorf("%w: Run after Close", ErrState)
	}
	if err := p.copyInputs(inputs); err != nil {
		return nil, err
	}
	p.runs++
	p.seed = splitmix(p.runs)
	for _, s := range p.steps {
		if s.fwd == nil {
			continue
		}
		if err := s.fwd(); err != nil {
			return nil, fmt.Errorf("graph: %s: %w", nodeLabel(s.node), err)
		}
	}
	p.ran = true
	return p.outs, nil
}

// copyInputs checks the inputs against the compiled shapes and copies
// them into the program's input tensors.
func (p *Program) copyInputs(inputs []*kernels.Tensor) error {
	if len(inputs) != len(p.a.inputs) {
		return fmt.Errorf("%w: %d inputs (want %d)", ErrInvalid, len(inputs), len(p.a.inputs))
	}
	for i, v := range p.a.inputs {
		in := inputs[i]
		if in == nil {
			return fmt.Errorf("%w: input %q is nil", ErrInvalid, v.name)
		}
		if !in.Shape.Equal(v.t.Shape) {
			return fmt.Errorf("%w: input %q has shape %v (want %v)", kernels.ErrShape, v.name, in.Shape, v.t.Shape)
		}
		if err := p.b.Copy(v.t, in); err != nil {
			return fmt.Errorf("graph: input %q: %w", v.name, err)
		}
	}
	return nil
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// Stats reports the Program's activation memory and step counts.
func (p *Program) Stats() MemoryStats { return p.stats }

// Params returns the trainable parameters (float initializers that feed a
// differentiable input; not BatchNormalization running statistics), sorted
// by name. Empty for inference programs.
func (p *Program) Params() []*Param { return p.params }

// Grad returns the gradient Backward wrote for a parameter or (with
// Options.InputGrads) a graph input, or nil.
func (p *Program) Grad(name string) *kernels.Tensor {
	if v, ok := p.a.vals[name]; ok {
		return v.grad
	}
	return nil
}

// SyncToGraph copies the current parameter values and BatchNormalization
// running statistics back into g.Initializers (new Tensor values, so
// earlier references stay unchanged), for saving.
func (p *Program) SyncToGraph() error {
	if p.closed {
		return fmt.Errorf("%w: SyncToGraph after Close", ErrState)
	}
	for _, v := range append(append([]*value{}, p.paramVals...), p.runStats...) {
		if v.t == nil || !v.isInit {
			continue
		}
		data := make([]float32, v.t.Numel())
		if err := p.b.Download(data, v.t); err != nil {
			return fmt.Errorf("graph: download %q: %w", v.name, err)
		}
		p.g.Initializers[v.name] = &Tensor{Name: v.name, DType: Float32, Shape: cloneInts(v.shape), Float: data}
	}
	return nil
}

// Close frees the Program's backend memory. The Program must not be used
// after.
func (p *Program) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, t := range p.allocs {
		p.b.Free(t)
	}
	p.allocs = nil
}

func (p *Program) sortedParams() {
	sort.Slice(p.paramVals, func(i, j int) bool { return p.paramVals[i].name < p.paramVals[j].name })
	for _, v := range p.paramVals {
		p.params = append(p.params, &Param{Name: v.name, Value: v.t, Grad: v.grad})
	}
}
