package graph

import (
	"fmt"
	"time"

	"vireo/pkg/kernels"
)

// buildBackward sets up reverse-mode autodiff once: it collects the
// parameters and running statistics, plans Backward with nothing frozen
// (so every parameter gets its gradient buffer) and lists Params.
func (p *Program) buildBackward(c *buildCtx) error {
	a := p.a
	for _, v := range a.vals {
		if v.param {
			if _, err := p.tensorOf(v); err != nil {
				return err
			}
			p.paramVals = append(p.paramVals, v)
		}
	}
	for _, s := range a.steps {
		if s.node.Op == "BatchNormalization" && len(s.plan.extras) == 2 {
			p.runStats = append(p.runStats, s.ins[3], s.ins[4])
		}
	}
	if err := p.planBackward(c); err != nil {
		return err
	}
	p.sortedParams()
	return nil
}

// planBackward plans reverse-mode autodiff over the sorted steps. Every
// value that depends on a parameter that is not frozen (or, with
// InputGrads, on an input) gets a gradient buffer; views share their
// source's gradient storage. A backward step runs only for the inputs
// that need a gradient (a conv whose weights are frozen and whose input
// needs none, e.g. a frozen stem, runs nothing; with its weights frozen
// only its input gradient). Which backward writes first into a storage is
// static, so it overwrites and later contributions go through a scratch
// buffer and Axpy. Buffers of an earlier plan are reused: planning again
// (SetFrozen) allocates only what no earlier plan had.
func (p *Program) planBackward(c *buildCtx) error {
	a := p.a
	for _, v := range a.vals {
		v.needGrad = false
	}
	for _, v := range p.paramVals {
		v.needGrad = !p.frozen[v]
	}
	if p.opt.InputGrads {
		for _, v := range a.inputs {
			v.needGrad = v.dtype == Float32
		}
	}
	for _, s := range a.steps {
		need := false
		for _, d := range s.plan.diff {
			if d < len(s.ins) && s.ins[d] != nil && s.ins[d].needGrad {
				need = true
			}
		}
		for _, v := range s.outs {
			if v != nil && v.dtype == Float32 {
				v.needGrad = need
			}
		}
	}
	// Gradient storage: roots first (inputs, params, then step outputs in
	// order), views over their root's gradient.
	grad := func(v *value) error {
		if !v.needGrad || v.grad != nil {
			return nil
		}
		if v.alias != nil {
			r := v.alias
			if !r.needGrad {
				return fmt.Errorf("%w: view %q needs a gradient but its source %q does not", ErrState, v.name, r.name)
			}
			if r.grad == nil {
				return fmt.Errorf("%w: gradient of %q planned before its source %q", ErrState, v.name, r.name)
			}
			g, err := r.grad.Reshaped(v.shape...)
			if err != nil {
				return err
			}
			v.grad = g
			return nil
		}
		g, err := p.alloc(v.shape)
		if err != nil {
			return err
		}
		v.grad = g
		return nil
	}
	for _, v := range a.inputs {
		if err := grad(v); err != nil {
			return err
		}
	}
	for _, v := range p.paramVals {
		if err := grad(v); err != nil {
			return err
		}
	}
	for _, s := range a.steps {
		for _, v := range s.outs {
			if v != nil {
				if err := grad(v); err != nil {
					return err
				}
			}
		}
	}

	// Pass 1: decide, per backward step, which gradients are written
	// directly and which are accumulated; size the scratch buffers.
	init := map[*value]bool{}
	var outGrads []outGrad
	for _, v := range p.outVals {
		if v.needGrad {
			r := v.root()
			outGrads = append(outGrads, outGrad{v: v, first: !init[r]})
			init[r] = true
		} else {
			outGrads = append(outGrads, outGrad{v: v})
		}
	}
	type site struct {
		s      *step
		zero   []*kernels.Tensor // output grads nobody wrote: zero first
		direct []bool
		acc    []bool
	}
	var sites []*site
	scratchSize := map[int]int{}
	for i := len(a.steps) - 1; i >= 0; i-- {
		s := a.steps[i]
		if s.plan.view {
			continue // the gradient storage is shared
		}
		st := &site{s: s, direct: make([]bool, len(s.ins)), acc: make([]bool, len(s.ins))}
		any := false
		for _, d := range s.plan.diff {
			if d < len(s.ins) && s.ins[d] != nil && s.ins[d].needGrad {
				any = true
			}
		}
		if !any {
			continue
		}
		if s.plan.bwd == nil {
			return fmt.Errorf("%w: %s has no backward", ErrUnsupported, nodeLabel(s.node))
		}
		for _, v := range s.outs {
			if v != nil && v.needGrad && !init[v.root()] {
				st.zero = append(st.zero, v.grad)
				init[v.root()] = true
			}
		}
		for _, d := range s.plan.diff {
			if d >= len(s.ins) || s.ins[d] == nil || !s.ins[d].needGrad {
				continue
			}
			r := s.ins[d].root()
			if !init[r] {
				st.direct[d] = true
				init[r] = true
			} else {
				st.acc[d] = true
				scratchSize[d] = max(scratchSize[d], numel(s.ins[d].shape))
			}
		}
		sites = append(sites, st)
	}
	if p.bwdScratch == nil {
		p.bwdScratch = map[int]*kernels.Tensor{}
	}
	scratch := p.bwdScratch
	for d, n := range scratchSize {
		if t := scratch[d]; t != nil && t.Numel() >= n {
			continue
		}
		t, err := p.alloc([]int{n})
		if err != nil {
			return err
		}
		scratch[d] = t
	}
	// Pass 2: closures.
	b := p.b
	var bwd []func() error
	var bwdSteps []StepTime
	for _, st := range sites {
		s := st.s
		bt := StepTime{Node: s.node.Label(), Op: s.node.Op, Backward: true, InputGrad: len(s.ins) > 0 && (st.direct[0] || st.acc[0])}
		if len(s.outs) > 0 && s.outs[0] != nil {
			bt.Shape = cloneInts(s.outs[0].shape)
		}
		bwdSteps = append(bwdSteps, bt)
		gin := make([]*kernels.Tensor, len(s.ins))
		type accum struct{ dst, src *kernels.Tensor }
		var accs []accum
		for d := range s.ins {
			switch {
			case st.direct[d]:
				gin[d] = s.ins[d].grad
			case st.acc[d]:
				t, err := view(scratch[d], s.ins[d].shape)
				if err != nil {
					return err
				}
				gin[d] = t
				accs = append(accs, accum{s.ins[d].grad, t})
			}
		}
		gout := make([]*kernels.Tensor, len(s.plan.outShapes))
		for j, v := range s.outs {
			if v != nil {
				gout[j] = v.grad
			}
		}
		f, err := s.plan.bwd(c, s, gin, gout)
		if err != nil {
			return fmt.Errorf("graph: backward of %s: %w", nodeLabel(s.node), err)
		}
		zero, node := st.zero, s.node
		bwd = append(bwd, func() error {
			for _, z := range zero {
				if err := b.Fill(z, 0); err != nil {
					return err
				}
			}
			if err := f(); err != nil {
				return fmt.Errorf("graph: backward of %s: %w", nodeLabel(node), err)
			}
			for _, ac := range accs {
				if err := b.Axpy(ac.dst, 1, ac.src); err != nil {
					return fmt.Errorf("graph: backward of %s: accumulate: %w", nodeLabel(node), err)
				}
			}
			return nil
		})
	}
	// Parameters and inputs no gradient reached: zero.
	var unreached []*kernels.Tensor
	for _, v := range append(append([]*value{}, p.paramVals...), a.inputs...) {
		if v.needGrad && !init[v.root()] {
			unreached = append(unreached, v.grad)
			init[v.root()] = true
		}
	}
	if len(unreached) > 0 {
		bwdSteps = append(bwdSteps, StepTime{Node: "(gradients nothing reached)", Op: "Fill", Backward: true})
		bwd = append(bwd, func() error {
			for _, g := range unreached {
				if err := b.Fill(g, 0); err != nil {
					return err
				}
			}
			return nil
		})
	}
	p.bwd, p.bwdSteps, p.outGrads = bwd, bwdSteps, outGrads
	return nil
}

// Backward (training programs, after Run) takes d(loss)/d(output) for each
// graph output, in g.Outputs order (nil means zero), and writes the gradient
// of every parameter (Params) and, with Options.InputGrads, of every input.
func (p *Program) Backward(outputGrads ...*kernels.Tensor) error {
	if err := p.seedGrads(outputGrads); err != nil {
		return err
	}
	for _, f := range p.bwd {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// BackwardProfiled is Backward that also times every node's backward
// (with the gradient accumulation it does), syncing the backend after
// each, in execution order; see RunProfiled. Its StepTimes have Backward
// set and say whether the node's first input (a conv's data) got a
// gradient.
func (p *Program) BackwardProfiled(outputGrads ...*kernels.Tensor) ([]StepTime, error) {
	if err := p.seedGrads(outputGrads); err != nil {
		return nil, err
	}
	times := make([]StepTime, len(p.bwd))
	for i, f := range p.bwd {
		t0, c0 := time.Now(), kernels.ProcessCPUTime()
		err := f()
		if err == nil {
			err = p.b.Sync()
		}
		if err != nil {
			return nil, err
		}
		times[i] = p.bwdSteps[i]
		times[i].Shape = cloneInts(times[i].Shape)
		times[i].Time, times[i].CPU = time.Since(t0), kernels.ProcessCPUTime()-c0
	}
	return times, nil
}

// seedGrads checks Backward's state and arguments and writes the output
// gradients.
func (p *Program) seedGrads(outputGrads []*kernels.Tensor) error {
	switch {
	case p.closed:
		return fmt.Errorf("%w: Backward after Close", ErrState)
	case !p.opt.Training:
		return fmt.Errorf("%w: Backward on an inference program (compile with Options.Training)", ErrState)
	case !p.ran:
		return fmt.Errorf("%w: Backward before Run", ErrState)
	case len(outputGrads) != len(p.outGrads):
		return fmt.Errorf("%w: %d output gradients (want %d)", ErrInvalid, len(outputGrads), len(p.outGrads))
	}
	for i, og := range p.outGrads {
		g := outputGrads[i]
		if g != nil && g.Numel() != numel(og.v.shape) {
			return fmt.Errorf("%w: gradient of output %q has shape %v (want %v)", kernels.ErrShape, og.v.name, g.Shape, og.v.shape)
		}
		if !og.v.needGrad {
			continue
		}
		var err error
		switch {
		case og.first && g == nil:
			err = p.b.Fill(og.v.grad, 0)
		case og.first:
			err = p.b.Copy(og.v.grad, g)
		case g != nil:
			err = p.b.Axpy(og.v.grad, 1, g)
		}
		if err != nil {
			return fmt.Errorf("graph: gradient of output %q: %w", og.v.name, err)
		}
	}
	return nil
}
