package schema

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Bounds on JSON contracts (inputs from outside are bounded everywhere).
const (
	MaxLabels     = 1024 // labels, classes, scores, class fractions
	MaxLabelLen   = 128  // bytes in one label or class name
	MaxPoints     = 1024 // regression points
	MaxMaskDim    = 8192 // segmentation mask width/height
	MaxReasonLen  = 64   // Error.Reason
	MaxMessageLen = 4096 // Error.Error, EndOfStream.Detail
	MaxURLLen     = 2048
	MaxFPS        = 1000
	MaxImageBytes = 32 << 20 // Correction.Image
)

// Point is a regression output in pixel coordinates of the original frame.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Result is the JSON published on <p>.results.<model>.<source>, one per
// frame, and the reply to an ingest request. Which optional fields are set
// depends on Task:
//
//   - classification, multilabel: Labels (the predicted labels: the top one
//     for classification, those at or above the threshold for multilabel)
//     and Scores (every class's probability);
//   - segmentation: Width, Height (model input size), Classes (class names
//     by class id), MaskPNG (a PNG of class ids, 8-bit grey, Width x Height;
//     base64 in JSON) and ClassFraction (share of pixels per class id,
//     aligned with Classes);
//   - regression: Points, in pixel coordinates of the original frame.
type Result struct {
	SchemaVersion int       `json:"schema_version"`
	Source        string    `json:"source"`
	Seq           uint64    `json:"seq"`
	TS            time.Time `json:"ts"` // capture time of the frame
	Model         string    `json:"model"`
	ModelVersion  string    `json:"model_version"`
	Task          Task      `json:"task"`
	LatencyMS     float64   `json:"latency_ms"` // capture (or receipt) to result

	Labels []string           `json:"labels,omitempty"`
	Scores map[string]float64 `json:"scores,omitempty"`

	Width         int       `json:"width,omitempty"`
	Height        int       `json:"height,omitempty"`
	Classes       []string  `json:"classes,omitempty"`
	MaskPNG       []byte    `json:"mask_png,omitempty"`
	ClassFraction []float64 `json:"class_fraction,omitempty"`

	Points []Point `json:"points,omitempty"`
}

func invalid(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, what, fmt.Sprintf(format, args...))
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func checkLabel(what string, l string) error {
	if l == "" || len(l) > MaxLabelLen {
		return invalid(what, "label %.20q length (got=%d, want 1..%d)", l, len(l), MaxLabelLen)
	}
	if strings.TrimSpace(l) != l || strings.ContainsAny(l, "\x00\n\r\t") {
		return invalid(what, "label %q has surrounding space or control characters (want none)", l)
	}
	return nil
}

func checkLabels(what, field string, ls []string) error {
	if len(ls) > MaxLabels {
		return invalid(what, "%s count (got=%d, want<=%d)", field, len(ls), MaxLabels)
	}
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if err := checkLabel(what+"."+field, l); err != nil {
			return err
		}
		if seen[l] {
			return invalid(what, "%s: %q repeated (want each once)", field, l)
		}
		seen[l] = true
	}
	return nil
}

func checkPoints(what string, ps []Point) error {
	if len(ps) == 0 || len(ps) > MaxPoints {
		return invalid(what, "points count (got=%d, want 1..%d)", len(ps), MaxPoints)
	}
	for i, p := range ps {
		if !finite(p.X) || !finite(p.Y) {
			return invalid(what, "points[%d] (got=(%v,%v), want finite)", i, p.X, p.Y)
		}
	}
	return nil
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// pngSize reads width and height from a PNG's IHDR chunk without decoding.
func pngSize(b []byte) (w, h int, ok bool) {
	if len(b) < 24 || !bytes.Equal(b[:8], pngMagic) || string(b[12:16]) != "IHDR" {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24])), true
}

func checkMask(what string, png []byte, w, h int) error {
	pw, ph, ok := pngSize(png)
	if !ok {
		return invalid(what, "mask_png is not a PNG (got %d bytes, want PNG signature and IHDR)", len(png))
	}
	if w != 0 && (pw != w || ph != h) {
		return invalid(what, "mask_png size (got=%dx%d, want=%dx%d)", pw, ph, w, h)
	}
	return nil
}

func checkNone(what, field string, set bool, task Task) error {
	if set {
		return invalid(what, "%s is set for task %s (want it empty)", field, task)
	}
	return nil
}

// Validate checks a Result completely: version, names, task-specific fields
// present and others absent, finite and bounded numbers.
func (r *Result) Validate() error { return r.validate(true) }

// validate checks r; results decoded from Arrow carry no mask_png, so they
// are checked with requireMask false.
func (r *Result) validate(requireMask bool) error {
	const what = "result"
	if err := checkVersion(what, r.SchemaVersion); err != nil {
		return err
	}
	if err := ValidateSource(r.Source); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := ValidateModel(r.Model); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.ModelVersion == "" || len(r.ModelVersion) > MaxNameLen {
		return invalid(what, "model_version length (got=%d, want 1..%d)", len(r.ModelVersion), MaxNameLen)
	}
	if r.TS.IsZero() {
		return invalid(what, "ts is zero (want the capture time)")
	}
	if !finite(r.LatencyMS) || r.LatencyMS < 0 {
		return invalid(what, "latency_ms (got=%v, want finite >= 0)", r.LatencyMS)
	}
	if err := r.Task.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	cls := r.Task == TaskClassification || r.Task == TaskMultiLabel
	seg := r.Task == TaskSegmentation
	reg := r.Task == TaskRegression
	for _, c := range []struct {
		field string
		set   bool
		ok    bool
	}{
		{"labels", r.Labels != nil, cls},
		{"scores", r.Scores != nil, cls},
		{"width", r.Width != 0, seg},
		{"height", r.Height != 0, seg},
		{"classes", r.Classes != nil, seg},
		{"mask_png", r.MaskPNG != nil, seg},
		{"class_fraction", r.ClassFraction != nil, seg},
		{"points", r.Points != nil, reg},
	} {
		if !c.ok {
			if err := checkNone(what, c.field, c.set, r.Task); err != nil {
				return err
			}
		}
	}
	switch r.Task {
	case TaskClassification, TaskMultiLabel:
		if err := checkLabels(what, "labels", r.Labels); err != nil {
			return err
		}
		if r.Task == TaskClassification && len(r.Labels) != 1 {
			return invalid(what, "labels count for classification (got=%d, want=1)", len(r.Labels))
		}
		if len(r.Scores) > MaxLabels {
			return invalid(what, "scores count (got=%d, want<=%d)", len(r.Scores), MaxLabels)
		}
		for l, s := range r.Scores {
			if err := checkLabel(what+".scores", l); err != nil {
				return err
			}
			if !finite(s) || s < 0 || s > 1 {
				return invalid(what, "scores[%q] (got=%v, want in [0,1])", l, s)
			}
		}
		for _, l := range r.Labels {
			if _, ok := r.Scores[l]; r.Scores != nil && !ok {
				return invalid(what, "label %q has no score (want a key of scores)", l)
			}
		}
	case TaskSegmentation:
		if r.Width < 1 || r.Width > MaxMaskDim || r.Height < 1 || r.Height > MaxMaskDim {
			return invalid(what, "mask size (got=%dx%d, want 1..%d each)", r.Width, r.Height, MaxMaskDim)
		}
		if len(r.Classes) == 0 {
			return invalid(what, "classes is empty (want class names by id)")
		}
		if err := checkLabels(what, "classes", r.Classes); err != nil {
			return err
		}
		if requireMask || r.MaskPNG != nil {
			if err := checkMask(what, r.MaskPNG, r.Width, r.Height); err != nil {
				return err
			}
		}
		if len(r.ClassFraction) != len(r.Classes) {
			return invalid(what, "class_fraction length (got=%d, want=%d, one per class)", len(r.ClassFraction), len(r.Classes))
		}
		sum := 0.0
		for i, f := range r.ClassFraction {
			if !finite(f) || f < 0 || f > 1 {
				return invalid(what, "class_fraction[%d] (got=%v, want in [0,1])", i, f)
			}
			sum += f
		}
		if math.Abs(sum-1) > 1e-3 {
			return invalid(what, "class_fraction sum (got=%v, want 1 within 1e-3)", sum)
		}
	case TaskRegression:
		if err := checkPoints(what, r.Points); err != nil {
			return err
		}
	}
	return nil
}

// Error is the JSON published on <p>.errors.<service> for a rejected input.
type Error struct {
	SchemaVersion int    `json:"schema_version"`
	Error         string `json:"error"`            // human-readable message
	Reason        string `json:"reason"`           // machine-readable code, e.g. "invalid_image", "queue_full"
	Source        string `json:"source,omitempty"` // when known
	Seq           uint64 `json:"seq,omitempty"`    // when known
	Model         string `json:"model,omitempty"`  // when known
}

// Validate checks an Error.
func (e *Error) Validate() error {
	const what = "error"
	if err := checkVersion(what, e.SchemaVersion); err != nil {
		return err
	}
	if e.Error == "" || len(e.Error) > MaxMessageLen {
		return invalid(what, "error length (got=%d, want 1..%d)", len(e.Error), MaxMessageLen)
	}
	if err := ValidateName("reason", e.Reason); err != nil || len(e.Reason) > MaxReasonLen {
		return invalid(what, "reason (got=%q, want 1..%d characters of [A-Za-z0-9_-])", e.Reason, MaxReasonLen)
	}
	if e.Source != "" {
		if err := ValidateSource(e.Source); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if e.Model != "" {
		if err := ValidateModel(e.Model); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// SourceRegistration is the body of POST /v1/sources: a video source for
// the frames service. Sampling is every EveryN-th frame, or FPS frames per
// second; both zero means every frame; both set is an error.
type SourceRegistration struct {
	SchemaVersion int     `json:"schema_version"`
	ID            string  `json:"id,omitempty"` // source name; ingest assigns one when empty
	URL           string  `json:"url"`          // file path or file://, rtsp(s)://, http(s)://, device://<n>
	Model         string  `json:"model"`
	FPS           float64 `json:"fps,omitempty"`
	EveryN        int     `json:"every_n,omitempty"`
}

// SourceSchemes lists the URL schemes a SourceRegistration may use; a URL
// without a scheme is a file path.
var sourceSchemes = map[string]bool{"file": true, "rtsp": true, "rtsps": true, "http": true, "https": true, "device": true}

// Validate checks a SourceRegistration.
func (s *SourceRegistration) Validate() error {
	const what = "source registration"
	if err := checkVersion(what, s.SchemaVersion); err != nil {
		return err
	}
	if s.ID != "" {
		if err := ValidateSource(s.ID); err != nil {
			return fmt.Errorf("%s: id: %w", what, err)
		}
	}
	if err := ValidateModel(s.Model); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if s.URL == "" || len(s.URL) > MaxURLLen || strings.ContainsAny(s.URL, "\x00\n\r") {
		return invalid(what, "url length (got=%d, want 1..%d, no control characters)", len(s.URL), MaxURLLen)
	}
	if u, err := url.Parse(s.URL); err != nil {
		return invalid(what, "url %q: %v", s.URL, err)
	} else if u.Scheme != "" && !sourceSchemes[strings.ToLower(u.Scheme)] {
		return invalid(what, "url scheme (got=%q, want file, rtsp, rtsps, http, https or device)", u.Scheme)
	}
	if !finite(s.FPS) || s.FPS < 0 || s.FPS > MaxFPS {
		return invalid(what, "fps (got=%v, want 0..%d)", s.FPS, MaxFPS)
	}
	if s.EveryN < 0 {
		return invalid(what, "every_n (got=%d, want>=0)", s.EveryN)
	}
	if s.FPS > 0 && s.EveryN > 0 {
		return invalid(what, "fps=%v and every_n=%d both set (want at most one)", s.FPS, s.EveryN)
	}
	return nil
}

// Answer is a prediction or a correct answer in a task's form.
type Answer struct {
	Label   string   `json:"label,omitempty"`    // classification
	Labels  []string `json:"labels,omitempty"`   // multilabel (may be empty: no label applies)
	MaskPNG []byte   `json:"mask_png,omitempty"` // segmentation: PNG of class ids (base64 in JSON)
	Points  []Point  `json:"points,omitempty"`   // regression, original-frame pixels
}

func (a *Answer) validate(what string, task Task) error {
	has := map[string]bool{"label": a.Label != "", "labels": a.Labels != nil, "mask_png": a.MaskPNG != nil, "points": a.Points != nil}
	want := map[Task]string{TaskClassification: "label", TaskMultiLabel: "labels", TaskSegmentation: "mask_png", TaskRegression: "points"}[task]
	for _, f := range []string{"label", "labels", "mask_png", "points"} {
		if f != want && has[f] {
			return invalid(what, "%s is set for task %s (want only %s)", f, task, want)
		}
	}
	if !has[want] {
		return invalid(what, "%s is missing (want it for task %s)", want, task)
	}
	switch task {
	case TaskClassification:
		return checkLabel(what+".label", a.Label)
	case TaskMultiLabel:
		return checkLabels(what, "labels", a.Labels)
	case TaskSegmentation:
		return checkMask(what, a.MaskPNG, 0, 0)
	default:
		return checkPoints(what, a.Points)
	}
}

// Correction is the JSON on <p>.corrections.<model> and the body of
// POST /v1/models/{model}/corrections: "this frame's answer is X". It names
// the frame either by Source and Seq (kept in FRAMES_KEEP) or carries the
// image itself (JPEG/PNG, base64 in JSON), never both. The correct answer
// is Answer's field for Task (label, labels, mask_png or points), inline.
type Correction struct {
	SchemaVersion int    `json:"schema_version"`
	Model         string `json:"model"`
	ModelVersion  string `json:"model_version"` // the version that made Prediction
	Task          Task   `json:"task"`

	Source string `json:"source,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Image  []byte `json:"image,omitempty"`

	Prediction *Answer `json:"prediction,omitempty"` // what the model said, if known
	Answer             // the correct answer

	Labeler string    `json:"labeler"` // who corrected it (user id or "dashboard:<user>")
	TS      time.Time `json:"ts"`      // when it was corrected
}

// Validate checks a Correction.
func (c *Correction) Validate() error {
	const what = "correction"
	if err := checkVersion(what, c.SchemaVersion); err != nil {
		return err
	}
	if err := ValidateModel(c.Model); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if c.ModelVersion == "" || len(c.ModelVersion) > MaxNameLen {
		return invalid(what, "model_version length (got=%d, want 1..%d)", len(c.ModelVersion), MaxNameLen)
	}
	if err := c.Task.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case c.Source != "" && c.Image != nil:
		return invalid(what, "both source and image set (want exactly one way to name the frame)")
	case c.Source != "":
		if err := ValidateSource(c.Source); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	case c.Image != nil:
		if len(c.Image) == 0 || len(c.Image) > MaxImageBytes {
			return invalid(what, "image size (got=%d bytes, want 1..%d)", len(c.Image), MaxImageBytes)
		}
	default:
		return invalid(what, "no frame named (want source+seq or image)")
	}
	if c.Image != nil && c.Seq != 0 {
		return invalid(what, "seq=%d set with an image (want seq only with source)", c.Seq)
	}
	if c.Prediction != nil {
		if err := c.Prediction.validate(what+".prediction", c.Task); err != nil {
			return err
		}
	}
	if err := c.Answer.validate(what, c.Task); err != nil {
		return err
	}
	if c.Labeler == "" || len(c.Labeler) > MaxLabelLen || strings.ContainsAny(c.Labeler, "\x00\n\r\t") {
		return invalid(what, "labeler (got=%.20q, want 1..%d bytes, no control characters)", c.Labeler, MaxLabelLen)
	}
	if c.TS.IsZero() {
		return invalid(what, "ts is zero (want the time of the correction)")
	}
	return nil
}

// EndOfStream is the JSON event on <p>.events.<source> when a source ends:
// a file reached its end, the source was deleted, or it failed for good.
type EndOfStream struct {
	SchemaVersion int       `json:"schema_version"`
	Event         string    `json:"event"` // always "end_of_stream"
	Source        string    `json:"source"`
	Model         string    `json:"model"`
	LastSeq       uint64    `json:"last_seq"` // seq of the last frame published
	Frames        uint64    `json:"frames"`   // frames published
	Dropped       uint64    `json:"dropped"`  // frames dropped under backpressure
	Reason        string    `json:"reason"`   // "eof", "deleted" or "failed"
	Detail        string    `json:"detail,omitempty"`
	TS            time.Time `json:"ts"`
}

// EventEndOfStream is EndOfStream.Event.
const EventEndOfStream = "end_of_stream"

// Validate checks an EndOfStream.
func (e *EndOfStream) Validate() error {
	const what = "end of stream"
	if err := checkVersion(what, e.SchemaVersion); err != nil {
		return err
	}
	if e.Event != EventEndOfStream {
		return invalid(what, "event (got=%q, want=%q)", e.Event, EventEndOfStream)
	}
	if err := ValidateSource(e.Source); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := ValidateModel(e.Model); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch e.Reason {
	case "eof", "deleted", "failed":
	default:
		return invalid(what, "reason (got=%q, want eof, deleted or failed)", e.Reason)
	}
	if len(e.Detail) > MaxMessageLen {
		return invalid(what, "detail length (got=%d, want<=%d)", len(e.Detail), MaxMessageLen)
	}
	if e.Frames > 0 && e.LastSeq+1 < e.Frames && e.LastSeq != math.MaxUint64 {
		return invalid(what, "frames=%d exceed last_seq+1=%d (seq starts at 0)", e.Frames, e.LastSeq+1)
	}
	if e.TS.IsZero() {
		return invalid(what, "ts is zero (want the time the source ended)")
	}
	return nil
}
