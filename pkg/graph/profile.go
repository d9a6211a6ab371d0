package graph

import (
	"fmt"
	"time"

	"vireo/pkg/kernels"
)

// StepTime is the time of one kernel of a profiled Run or Backward.
type StepTime struct {
	// Node is the node's Label, Op its op type, Shape its first output's
	// shape.
	Node, Op string
	Shape    []int
	// Time is the wall time; CPU the process's CPU time meanwhile (all
	// threads: CPU/Time is how many cores the kernel kept busy).
	Time, CPU time.Duration
	// Backward marks a node's backward (BackwardProfiled); InputGrad that
	// it computed its first input's gradient too (a conv's data
	// gradient, besides its weight gradient).
	Backward, InputGrad bool
}

// RunProfiled is Run that also times every kernel, syncing the backend
// after each one (so on an asynchronous backend it runs slower than Run).
// The times come in execution order; steps that launch no kernel (views,
// folded constants) are left out. For profiling tools, not for serving.
func (p *Program) RunProfiled(inputs ...*kernels.Tensor) ([]*kernels.Tensor, []StepTime, error) {
	if p.closed {
		return nil, nil, fmt.Errorf("%w: Run after Close", ErrState)
	}
	if err := p.copyInputs(inputs); err != nil {
		return nil, nil, err
	}
	p.runs++
	p.seed = splitmix(p.runs)
	times := make([]StepTime, 0, len(p.steps))
	for _, s := range p.steps {
		if s.fwd == nil {
			continue
		}
		t0, c0 := time.Now(), kernels.ProcessCPUTime()
		err := s.fwd()
		if err == nil {
			err = p.b.Sync()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("graph: %s: %w", nodeLabel(s.node), err)
		}
		st := StepTime{Node: s.node.Label(), Op: s.node.Op, Time: time.Since(t0), CPU: kernels.ProcessCPUTime() - c0}
		if len(s.outs) > 0 && s.outs[0] != nil {
			st.Shape = cloneInts(s.outs[0].shape)
		}
		times = append(times, st)
	}
	p.ran = true
	return p.outs, times, nil
}
