package train

import "fmt"

// applyFreeze plans the program's Backward for the current freeze state
// when it changed (Freeze, Unfreeze, FreezeTo, a checkpoint): parameters
// the optimiser does not update get no gradient, so a frozen body costs
// no weight gradients (graph.Program.SetFrozen).
func (l *Learner) applyFreeze() error {
	if l.applied == l.frozenTo {
		return nil
	}
	if err := l.prog.SetFrozen(func(name string) bool { return !l.trains(name) }); err != nil {
		return fmt.Errorf("train: freeze %d of %d layer groups: %w", l.frozenTo, len(l.model.Groups), err)
	}
	l.applied = l.frozenTo
	return nil
}
