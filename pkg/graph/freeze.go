package graph

import (
	"fmt"
)

// SetFrozen (training programs) freezes the parameters for which
// frozen(name) is true and unfreezes the others (nil unfreezes all), and
// replans Backward: a frozen parameter gets no gradient (its Grad is zero
// after SetFrozen and stays so), and every backward kernel, or part of
// one, whose result would only reach frozen parameters or inputs that
// need no gradient is skipped. With a frozen body (fastai's freeze) that
// leaves the body's weight gradients out, and a frozen stem runs no
// backward at all. Gradients of the parameters that still train are the
// same as without freezing.
//
// Planning reuses the buffers of earlier plans, so switching back and
// forth allocates nothing new after the first time. It fails only where
// Compile would have; after an error, Backward must not be called.
func (p *Program) SetFrozen(frozen func(name string) bool) error {
	switch {
	case p.closed:
		return fmt.Errorf("%w: SetFrozen after Close", ErrState)
	case !p.opt.Training:
		return fmt.Errorf("%w: SetFrozen on an inference program (compile with Options.Training)", ErrState)
	}
	set := map[*value]bool{}
	if frozen != nil {
		for _, v := range p.paramVals {
			if frozen(v.name) {
				set[v] = true
			}
		}
	}
	p.frozen = set
	if err := p.planBackward(&buildCtx{b: p.b, p: p}); err != nil {
		return err
	}
	for v := range set {
		if v.grad != nil {
			if err := p.b.Fill(v.grad, 0); err != nil {
				return fmt.Errorf("graph: zero the gradient of frozen %q: %w", v.name, err)
			}
		}
	}
	return nil
}

// Frozen reports whether parameter name is frozen (SetFrozen).
func (p *Program) Frozen(name string) bool {
	v, ok := p.a.vals[name]
	return ok && p.frozen[v]
}

// Runs is the number of Runs (and RunProfiled calls) so far. A training
// program's Dropout masks derive from it: Run number n draws mask n.
func (p *Program) Runs() uint64 { return p.runs }

// SetRuns sets the run count, so the next Run draws the masks of run n+1.
// A program compiled to replace another (progressive resizing) calls
// SetRuns(old.Runs()) to continue the old one's mask sequence instead of
// drawing its first masks again.
func (p *Program) SetRuns(n uint64) { p.runs = n }
