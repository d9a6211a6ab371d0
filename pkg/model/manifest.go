package model

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// DefaultThreshold is the multi-label decision threshold when none is given.
const DefaultThreshold = 0.2

// NoVoid is VoidClass for "no void class".
const NoVoid = -1

// Sentinel errors.
var (
	// ErrInvalid: a manifest field is missing or out of range.
	ErrInvalid = errors.New("model: invalid manifest")
	// ErrFormatVersion: manifest.json has a format_version this package
	// does not read.
	ErrFormatVersion = errors.New("model: unsupported manifest format version")
	// ErrDigest: model.onnx does not match the digest in manifest.json.
	ErrDigest = errors.New("model: model.onnx digest mismatch")
)

// Task is what a model predicts.
type Task string

const (
	// Classify: one label per image (softmax over Labels).
	Classify Task = "classify"
	// MultiLabel: any subset of Labels (sigmoid, Threshold).
	MultiLabel Task = "multilabel"
	// Segment: one of Labels per pixel; VoidClass may mark "ignore".
	Segment Task = "segment"
	// Regress: Points (x, y) points per image.
	Regress Task = "regress"
)

// Input describes the tensor the model takes.
type Input struct {
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Channels int    `json:"channels"`
	Layout   string `json:"layout"`      // "nchw"
	Color    string `json:"color_order"` // "rgb" or "bgr"
}

// Normalization is applied per channel after scaling pixels to [0, 1]:
// x = (p/255 - Mean[c]) / Std[c].
type Normalization struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// Manifest describes one trained model version: what it predicts, what
// it expects as input, and where it came from. It is stored as
// manifest.json beside model.onnx.
type Manifest struct {
	FormatVersion int    `json:"format_version"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	Task          Task   `json:"task"`
	// Labels are the class names, in output order (classify, multilabel,
	// segment); optional names of the points for regress.
	Labels []string `json:"labels"`
	// Threshold is the multi-label decision threshold in (0, 1); zero for
	// other tasks.
	Threshold     float64       `json:"threshold,omitempty"`
	Input         Input         `json:"input"`
	Normalization Normalization `json:"normalization"`
	// VoidClass is the index of the segmentation class to ignore, or
	// NoVoid (-1). Other tasks must use NoVoid.
	VoidClass int `json:"void_class"`
	// Points is the number of (x, y) points a regression model outputs.
	Points  int                `json:"points,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// ParentVersion is the version this one was fine-tuned from.
	ParentVersion string `json:"parent_version,omitempty"`
	// TrainingDataDigest and CorrectionDigest identify the training set
	// and the set of human corrections used ("sha256:" + 64 hex digits,
	// see Digest).
	TrainingDataDigest string    `json:"training_data_digest,omitempty"`
	CorrectionDigest   string    `json:"correction_digest,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	Arch               string    `json:"arch"`
	Notes              string    `json:"notes,omitempty"`
	// ModelDigest is the digest of model.onnx; Save sets it and Load
	// checks it.
	ModelDigest string `json:"model_digest,omitempty"`
	// Dataset names the prepared dataset the model was trained on: a
	// name data.Locate finds under a data root ("fashion") or a path. The
	// retrain service replays a sample of it and validates on its
	// validation part.
	Dataset string `json:"dataset,omitempty"`
}

// SetDefaults fills the fields that have a default: format version, the
// multi-label threshold (0.2), layout "nchw" and colour order "rgb".
func (m *Manifest) SetDefaults() {
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	if m.Task == MultiLabel && m.Threshold == 0 {
		m.Threshold = DefaultThreshold
	}
	if m.Input.Layout == "" {
		m.Input.Layout = "nchw"
	}
	if m.Input.Color == "" {
		m.Input.Color = "rgb"
	}
}

// Validate checks every field and returns all problems found, each naming
// its JSON field, joined in one error wrapping ErrInvalid (or
// ErrFormatVersion for the format version).
func (m *Manifest) Validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("%w: format_version %d, want %d", ErrFormatVersion, m.FormatVersion, FormatVersion)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if err := checkName(m.Name); err != nil {
		bad("name: %v", err)
	}
	if err := checkName(m.Version); err != nil {
		bad("version: %v", err)
	}
	if m.ParentVersion != "" {
		if err := checkName(m.ParentVersion); err != nil {
			bad("parent_version: %v", err)
		} else if m.ParentVersion == m.Version {
			bad("parent_version %q equals version", m.ParentVersion)
		}
	}
	seen := map[string]bool{}
	for i, l := range m.Labels {
		if strings.TrimSpace(l) == "" {
			bad("labels[%d] is empty", i)
		}
		if seen[l] {
			bad("labels[%d] %q is a duplicate", i, l)
		}
		seen[l] = true
	}
	switch m.Task {
	case Classify:
		if len(m.Labels) < 2 {
			bad("labels: classify needs at least 2, got %d", len(m.Labels))
		}
	case MultiLabel:
		if len(m.Labels) < 1 {
			bad("labels: multilabel needs at least 1, got 0")
		}
	case Segment:
		if len(m.Labels) < 2 {
			bad("labels: segment needs at least 2 classes, got %d", len(m.Labels))
		}
	case Regress:
		if m.Points < 1 {
			bad("points: regress needs at least 1, got %d", m.Points)
		}
		if len(m.Labels) != 0 && len(m.Labels) != m.Points {
			bad("labels: %d point names for %d points", len(m.Labels), m.Points)
		}
	default:
		bad("task %q: want classify, multilabel, segment or regress", m.Task)
	}
	if m.Task != Regress && m.Points != 0 {
		bad("points %d given for task %s (regress only)", m.Points, m.Task)
	}
	if m.Task == MultiLabel {
		if !(m.Threshold > 0 && m.Threshold < 1) {
			bad("threshold %v: want in (0, 1)", m.Threshold)
		}
	} else if m.Threshold != 0 {
		bad("threshold %v given for task %s (multilabel only)", m.Threshold, m.Task)
	}
	if m.Task == Segment {
		if m.VoidClass < NoVoid || m.VoidClass >= len(m.Labels) {
			bad("void_class %d: want -1 or a class index below %d", m.VoidClass, len(m.Labels))
		}
	} else if m.VoidClass != NoVoid {
		bad("void_class %d given for task %s: use -1 (segment only)", m.VoidClass, m.Task)
	}
	in := m.Input
	if in.Width < 1 || in.Height < 1 || in.Width > 1<<14 || in.Height > 1<<14 {
		bad("input: width x height %dx%d: want 1..16384 each", in.Width, in.Height)
	}
	if in.Channels != 1 && in.Channels != 3 {
		bad("input.channels %d: want 1 or 3", in.Channels)
	}
	if in.Layout != "nchw" {
		bad("input.layout %q: want \"nchw\"", in.Layout)
	}
	if in.Color != "rgb" && in.Color != "bgr" {
		bad("input.color_order %q: want \"rgb\" or \"bgr\"", in.Color)
	}
	n := m.Normalization
	if len(n.Mean) != in.Channels || len(n.Std) != in.Channels {
		bad("normalization: %d mean and %d std values for %d channels", len(n.Mean), len(n.Std), in.Channels)
	}
	for i, v := range n.Mean {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("normalization.mean[%d] is %v", i, v)
		}
	}
	for i, v := range n.Std {
		if !(v > 0) || math.IsInf(v, 0) {
			bad("normalization.std[%d] %v: want finite > 0", i, v)
		}
	}
	for k, v := range m.Metrics {
		if k == "" {
			bad("metrics: empty name")
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("metrics[%q] is %v (JSON cannot hold it)", k, v)
		}
	}
	for _, d := range []struct{ field, v string }{
		{"training_data_digest", m.TrainingDataDigest},
		{"correction_digest", m.CorrectionDigest},
		{"model_digest", m.ModelDigest},
	} {
		if d.v != "" && !validDigest(d.v) {
			bad("%s %q: want \"sha256:\" and 64 lowercase hex digits", d.field, d.v)
		}
	}
	if len(m.Dataset) > 4096 || strings.ContainsAny(m.Dataset, "\x00\n\r") {
		bad("dataset: %d bytes or control characters (want a name or path, at most 4096 bytes)", len(m.Dataset))
	}
	if m.CreatedAt.IsZero() {
		bad("created_at is not set")
	}
	if strings.TrimSpace(m.Arch) == "" {
		bad("arch is empty")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// checkName accepts names and versions usable as path elements.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 128 {
		return fmt.Errorf("%d characters, want at most 128", len(s))
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%q is not a name", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q: character %q, want letters, digits, '.', '_' or '-'", s, r)
		}
	}
	return nil
}

func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
