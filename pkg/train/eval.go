package train

import (
	"context"
	"errors"
	"fmt"
	"io"

	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// EvalOptions size an evaluation pass.
type EvalOptions struct {
	// BatchSize (64) and Workers (loader default) of the pass.
	BatchSize, Workers int
	// Aspect is the original images' height/width for point_error (0:
	// taken from the dataset's first item).
	Aspect float64
	// TTA also runs every batch mirrored left to right and averages the
	// two predictions (see mergeTTA): fastai's learn.TTA with the one
	// transform every task's default augmentation trains with.
	TTA bool
}

// Evaluate runs a saved model (manifest + ONNX bytes, as model.Load
// returns them) over ds on backend b and returns the task's metrics,
// with the manifest's input size, normalisation, threshold and Void class.
// The data must have the manifest's task and class count.
func Evaluate(ctx context.Context, b kernels.Backend, man model.Manifest, onnxBytes []byte, ds data.Dataset, meta data.Meta, opt EvalOptions) (*Metrics, error) {
	if opt.BatchSize == 0 {
		opt.BatchSize = 64
	}
	if opt.BatchSize < 1 {
		return nil, fmt.Errorf("%w: batch size (got=%d, want>=1)", ErrConfig, opt.BatchSize)
	}
	if string(man.Task) != string(meta.Task) {
		return nil, fmt.Errorf("%w: model task %s, data task %s", ErrConfig, man.Task, meta.Task)
	}
	outputs := len(man.Labels)
	switch meta.Task {
	case data.Regress:
		outputs = 2 * man.Points
		if meta.Points != 0 && meta.Points != man.Points {
			return nil, fmt.Errorf("%w: model predicts %d points, data has %d", ErrConfig, man.Points, meta.Points)
		}
	default:
		if len(meta.Classes) != len(man.Labels) {
			return nil, fmt.Errorf("%w: model has %d classes, data has %d", ErrConfig, len(man.Labels), len(meta.Classes))
		}
	}
	if man.Input.Width != man.Input.Height {
		return nil, fmt.Errorf("%w: model input %dx%d is not square (the loader makes square batches)", ErrConfig, man.Input.Width, man.Input.Height)
	}
	if man.Input.Color != "rgb" && man.Input.Channels == 3 {
		return nil, fmt.Errorf("%w: model wants %s input (the loader gives rgb)", ErrConfig, man.Input.Color)
	}
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		return nil, err
	}
	g := om.Graph
	n, c, s := opt.BatchSize, man.Input.Channels, man.Input.Width
	prog, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{g.Inputs[0].Name: {n, c, s, s}}})
	if err != nil {
		return nil, fmt.Errorf("train: compile %s for evaluation: %w", man.Arch, err)
	}
	defer prog.Close()
	x, err := b.Alloc(kernels.Shape{n, c, s, s})
	if err != nil {
		return nil, err
	}
	defer b.Free(x)

	void := -1
	if meta.Task == data.Segment {
		void = man.VoidClass
	}
	met := NewMetrics(meta.Task, outputs, void, man.Labels)
	met.Thresh = man.Threshold
	if meta.Task == data.Regress {
		met.Aspect = opt.Aspect
		if met.Aspect == 0 && ds.Len() > 0 {
			it, err := ds.Get(0)
			if err != nil {
				return nil, err
			}
			met.Aspect = float64(it.Height) / float64(it.Width)
		}
	}
	lc := data.LoaderConfig{BatchSize: n, Size: s, Channels: c, Workers: opt.Workers}
	for i := range man.Normalization.Mean {
		lc.Mean = append(lc.Mean, float32(man.Normalization.Mean[i]))
		lc.Std = append(lc.Std, float32(man.Normalization.Std[i]))
	}
	bs, err := data.Load(ctx, ds, meta, lc)
	if err != nil {
		return nil, err
	}
	defer bs.Close()
	host := make([]float32, x.Numel())
	var out, mir, mirHost []float32
	if opt.TTA {
		mirHost = make([]float32, len(host))
	}
	for {
		bt, err := bs.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		clear(host[copy(host, bt.X):])
		if err := b.Upload(x, host); err != nil {
			return nil, err
		}
		outs, err := prog.Run(x)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]float32, outs[0].Numel())
		}
		if err := b.Download(out, outs[0]); err != nil {
			return nil, err
		}
		if opt.TTA {
			if mir == nil {
				mir = make([]float32, len(out))
			}
			mirrorW(mirHost, host, s)
			if err := b.Upload(x, mirHost); err != nil {
				return nil, err
			}
			outs, err := prog.Run(x)
			if err != nil {
				return nil, err
			}
			if err := b.Download(mir, outs[0]); err != nil {
				return nil, err
			}
			if err := mergeTTA(meta.Task, out, mir, bt.N, outs[0].Shape[1:]); err != nil {
				return nil, err
			}
		}
		if err := met.Add(out, bt.Y, bt.N); err != nil {
			return nil, err
		}
	}
	if met.Samples() == 0 {
		return nil, fmt.Errorf("%w: nothing to evaluate", ErrData)
	}
	return met, bs.Close()
}
