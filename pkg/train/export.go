package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"vireo/pkg/data"
	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
)

// Files Export writes beside model.onnx and manifest.json.
const (
	LossPlotFile = "losses.png"
	LRPlotFile   = "lr.png"
)

// ExportInfo is what the manifest needs beyond the model itself.
type ExportInfo struct {
	// Name and Version of the model (path elements; Version default
	// "v0001").
	Name, Version string
	// Parent is the version this one was fine-tuned from.
	Parent string
	// Labels default to the data's class names (regress: none).
	Labels []string
	// Mean and Std are the loader's normalisation (RGB order).
	Mean, Std []float32
	// Metrics are the validation metrics to record (Metrics.Values()).
	Metrics map[string]float64
	// DataDigest identifies the training data ("sha256:...").
	DataDigest string
	// Dataset names the prepared dataset (Manifest.Dataset), so the
	// retrain service can find the replay and validation data.
	Dataset string
	Notes   string
	// CreatedAt defaults to now (UTC).
	CreatedAt time.Time
}

// InferenceGraph returns a copy of the model's graph (latest weights, after
// Sync) with the input fixed to (N, C, size, size), N dynamic, and the
// segmentation output to (N, classes, size, size): the graph as ONNX
// files carry it. Dropout nodes are inference-mode by ONNX's default and
// BatchNormalization uses the running statistics.
func (l *Learner) InferenceGraph() (*graph.Graph, error) {
	if err := l.Sync(); err != nil {
		return nil, err
	}
	g := *l.model.Graph
	g.Inputs = slices.Clone(g.Inputs)
	g.Outputs = slices.Clone(g.Outputs)
	fix := func(vi *graph.ValueInfo, shape []int) {
		vi.Shape = shape
		if vi.DimParams != nil {
			dp := make([]string, len(shape))
			if len(vi.DimParams) > 0 {
				dp[0] = vi.DimParams[0] // the batch dimension stays dynamic
			}
			vi.DimParams = dp
		}
	}
	fix(&g.Inputs[0], []int{-1, l.cfg.Channels, l.size, l.size})
	if l.cfg.Meta.Task == data.Segment {
		fix(&g.Outputs[0], []int{-1, l.cfg.outputs(), l.size, l.size})
	}
	return &g, nil
}

// Export writes dir/model.onnx, dir/manifest.json (model.Save: validated,
// atomic, manifest last) and the loss and learning-rate plots, and returns
// the manifest written.
func (l *Learner) Export(dir string, info ExportInfo) (model.Manifest, error) {
	g, err := l.InferenceGraph()
	if err != nil {
		return model.Manifest{}, err
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		return model.Manifest{}, fmt.Errorf("train: encode onnx: %w", err)
	}
	if info.Version == "" {
		info.Version = "v0001"
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now().UTC()
	}
	m := model.Manifest{
		Name: info.Name, Version: info.Version, Task: model.Task(l.cfg.Meta.Task),
		Labels: info.Labels, Input: model.Input{Width: l.size, Height: l.size, Channels: l.cfg.Channels},
		VoidClass: model.NoVoid, Metrics: info.Metrics, ParentVersion: info.Parent,
		TrainingDataDigest: info.DataDigest, CreatedAt: info.CreatedAt, Arch: l.model.Arch, Notes: info.Notes, Dataset: info.Dataset,
	}
	if m.Labels == nil && l.cfg.Meta.Task != data.Regress {
		m.Labels = slices.Clone(l.cfg.Meta.Classes)
	}
	switch l.cfg.Meta.Task {
	case data.MultiLabel:
		m.Threshold = DefaultThreshold
	case data.Segment:
		m.VoidClass = l.cfg.Meta.VoidClass
	case data.Regress:
		m.Points = l.cfg.Meta.Points
	}
	mean, std := info.Mean, info.Std
	if mean == nil {
		mean, std = make([]float32, l.cfg.Channels), make([]float32, l.cfg.Channels)
		for i := range std {
			std[i] = 1
		}
	}
	for i := range mean {
		m.Normalization.Mean = append(m.Normalization.Mean, float64(mean[i]))
		m.Normalization.Std = append(m.Normalization.Std, float64(std[i]))
	}
	if err := model.Save(dir, b, m); err != nil {
		return model.Manifest{}, err
	}
	if len(l.Rec.Losses) > 0 {
		if err := l.Rec.PlotLosses(filepath.Join(dir, LossPlotFile)); err != nil {
			return model.Manifest{}, err
		}
		if err := l.Rec.PlotLR(filepath.Join(dir, LRPlotFile)); err != nil {
			return model.Manifest{}, err
		}
	}
	m.SetDefaults()
	m.ModelDigest = model.Digest(b)
	return m, nil
}
