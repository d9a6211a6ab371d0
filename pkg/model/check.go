package model

import (
	"fmt"

	"vireo/pkg/graph"
)

// CheckGraph checks that the network agrees with the manifest where the
// graph's shapes are static: its first graph input that is not an
// initializer is (N, C, H, W) with the manifest's channels, height and
// width, and its first output is (N, K) or (N, K, H, W) with K labels
// (classify, multilabel, segment) or (N, 2*Points) (regress). Dynamic dims
// (-1) and a missing shape pass. Errors wrap ErrInvalid.
func CheckGraph(m Manifest, g *graph.Graph) error {
	var in *graph.ValueInfo
	for i := range g.Inputs {
		if _, isInit := g.Initializers[g.Inputs[i].Name]; !isInit {
			in = &g.Inputs[i]
			break
		}
	}
	if in == nil {
		return fmt.Errorf("%w: the graph has no input", ErrInvalid)
	}
	if in.Shape != nil {
		if len(in.Shape) != 4 {
			return fmt.Errorf("%w: input %q has shape %v, want (N, C, H, W)", ErrInvalid, in.Name, in.Shape)
		}
		want := []int{m.Input.Channels, m.Input.Height, m.Input.Width}
		for i, w := range want {
			if d := in.Shape[i+1]; d >= 0 && d != w {
				return fmt.Errorf("%w: input %q has shape %v, manifest input is %dx%dx%d (CxHxW)", ErrInvalid, in.Name, in.Shape, want[0], want[1], want[2])
			}
		}
	}
	if len(g.Outputs) == 0 {
		return fmt.Errorf("%w: the graph has no output", ErrInvalid)
	}
	out := g.Outputs[0]
	if out.Shape == nil {
		return nil
	}
	switch m.Task {
	case Classify, MultiLabel, Segment:
		rank := 2
		if m.Task == Segment {
			rank = 4
		}
		if len(out.Shape) != rank {
			return fmt.Errorf("%w: output %q has rank %d (shape %v), want %d for %s", ErrInvalid, out.Name, len(out.Shape), out.Shape, rank, m.Task)
		}
		if k := out.Shape[1]; k >= 0 && k != len(m.Labels) {
			return fmt.Errorf("%w: output %q has %d classes (shape %v), manifest has %d labels", ErrInvalid, out.Name, k, out.Shape, len(m.Labels))
		}
	case Regress:
		if len(out.Shape) != 2 {
			return fmt.Errorf("%w: output %q has shape %v, want (N, 2*points) for regress", ErrInvalid, out.Name, out.Shape)
		}
		if k := out.Shape[1]; k >= 0 && k != 2*m.Points {
			return fmt.Errorf("%w: output %q has %d values (shape %v), want 2*points = %d", ErrInvalid, out.Name, k, out.Shape, 2*m.Points)
		}
	}
	return nil
}
