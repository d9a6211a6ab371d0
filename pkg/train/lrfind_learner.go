package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"vireo/pkg/data"
)

// LRFind runs the learning-rate finder on the model (fastai's
// learn.lr_find()): one batch per step from train (passes restart as
// needed, with their own shuffles), every layer group at the same rate,
// momentum 0.9, the current freeze state. Afterwards the weights, running
// statistics and optimiser state are exactly what they were before.
func (l *Learner) LRFind(ctx context.Context, train data.Dataset, cfg LRFindConfig) (res *LRFindResult, err error) {
	if err := l.Sync(); err != nil {
		return nil, err
	}
	snapshot := maps.Clone(l.model.Graph.Initializers)
	savedOpt := l.opt
	l.opt = map[string]*optState{}
	defer func() {
		for _, s := range l.opt {
			l.freeState(s)
		}
		l.opt = savedOpt
		l.model.Graph.Initializers = snapshot
		if cerr := l.compile(l.size); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var bs data.Batches
	pass := 0
	defer func() {
		if bs != nil {
			bs.Close()
		}
	}()
	lrs := make([]float64, len(l.model.Groups))
	step := func(lr float64) (float64, error) {
		for {
			if bs == nil {
				pass++
				var err error
				if bs, err = l.pass(ctx, train, true, -pass); err != nil {
					return 0, err
				}
			}
			bt, err := bs.Next(ctx)
			if errors.Is(err, io.EOF) {
				bs.Close()
				bs = nil
				continue
			}
			if err != nil {
				return 0, err
			}
			for g := range lrs {
				lrs[g] = lr
			}
			return l.step(bt, lrs, 0.9)
		}
	}
	if train.Len() < l.cfg.BatchSize {
		return nil, fmt.Errorf("%w: %d training items for batches of %d", ErrData, train.Len(), l.cfg.BatchSize)
	}
	return FindLR(ctx, cfg, step)
}
