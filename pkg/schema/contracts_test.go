package schema

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var ts = time.Date(2026, 3, 4, 5, 6, 7, 123000000, time.UTC)

// tinyPNG is a valid 2x1 8-bit grey PNG (class ids 0 and 1).
var tinyPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x01\x08\x00\x00\x00\x00\xe8\x9a\x9f\xb2\x00\x00\x00\x0bIDATx\x9cc`d\x00\x00\x00\x06\x00\x02\x0b\x9a\xa6\xb6\x00\x00\x00\x00IEND\xaeB`\x82")

func exampleResults() map[string]Result {
	base := Result{SchemaVersion: Version, Source: "cam0", Seq: 42, TS: ts, ModelVersion: "v3", LatencyMS: 12.5}
	cls, ml, seg, reg := base, base, base, base
	cls.Model, cls.Task = "digits", TaskClassification
	cls.Labels, cls.Scores = []string{"seven"}, map[string]float64{"one": 0.125, "seven": 0.75, "two": 0.125}
	ml.Model, ml.Task = "planet", TaskMultiLabel
	ml.Labels, ml.Scores = []string{"clear", "primary"}, map[string]float64{"clear": 0.875, "haze": 0.0625, "primary": 0.5}
	seg.Model, seg.Task = "camvid", TaskSegmentation
	seg.Width, seg.Height, seg.Classes, seg.MaskPNG, seg.ClassFraction = 2, 1, []string{"Void", "Road"}, tinyPNG, []float64{0.5, 0.5}
	reg.Model, reg.Task = "biwi", TaskRegression
	reg.Points = []Point{{X: 320.5, Y: 240.25}}
	return map[string]Result{"classification": cls, "multilabel": ml, "segmentation": seg, "regression": reg}
}

func exampleCorrection() Correction {
	return Correction{
		SchemaVersion: Version, Model: "planet", ModelVersion: "v3", Task: TaskMultiLabel,
		Source: "cam0", Seq: 42,
		Prediction: &Answer{Labels: []string{"haze"}},
		Answer:     Answer{Labels: []string{"clear", "primary"}},
		Labeler:    "dashboard:ana", TS: ts,
	}
}

func marshalGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, name, append(b, '\n'))
}

func TestContractsGolden(t *testing.T) {
	for task, r := range exampleResults() {
		if err := r.Validate(); err != nil {
			t.Fatalf("example %s result: %v", task, err)
		}
		marshalGolden(t, "result_"+task+".json", r)
	}
	c := exampleCorrection()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	marshalGolden(t, "correction.json", c)
	e := Error{SchemaVersion: Version, Error: "image: not a JPEG or PNG", Reason: "invalid_image", Source: "cam0", Seq: 7, Model: "planet"}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	marshalGolden(t, "error.json", e)
	s := SourceRegistration{SchemaVersion: Version, ID: "lobby", URL: "rtsp://camera.local/stream1", Model: "planet", FPS: 5}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	marshalGolden(t, "source_registration.json", s)
	eos := EndOfStream{SchemaVersion: Version, Event: EventEndOfStream, Source: "vtest", Model: "camvid", LastSeq: 794, Frames: 795, Reason: "eof", TS: ts}
	if err := eos.Validate(); err != nil {
		t.Fatal(err)
	}
	marshalGolden(t, "end_of_stream.json", eos)
}

func TestContractsJSONRoundTrip(t *testing.T) {
	for task, r := range exampleResults() {
		b, _ := json.Marshal(r)
		var got Result
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s: round trip = %+v, want %+v", task, got, r)
		}
	}
	c := exampleCorrection()
	b, _ := json.Marshal(c)
	var got Correction
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("correction round trip = %+v, %v, want %+v", got, err, c)
	}
}

func TestResultValidate(t *testing.T) {
	ex := exampleResults()
	tests := []struct {
		name  string
		task  string
		edit  func(*Result)
		want  error
		inMsg string
	}{
		{"version", "classification", func(r *Result) { r.SchemaVersion = 2 }, ErrVersion, "got=2, want=1"},
		{"source", "classification", func(r *Result) { r.Source = "cam 0" }, ErrInvalidName, `source "cam 0" has ' '`},
		{"long source", "classification", func(r *Result) { r.Source = strings.Repeat("a", 65) }, ErrInvalidName, "got=65 bytes, want<=64"},
		{"model wildcard", "classification", func(r *Result) { r.Model = "m>" }, ErrInvalidName, "'>'"},
		{"no version", "classification", func(r *Result) { r.ModelVersion = "" }, ErrInvalid, "model_version length (got=0"},
		{"zero ts", "classification", func(r *Result) { r.TS = time.Time{} }, ErrInvalid, "ts is zero"},
		{"negative latency", "classification", func(r *Result) { r.LatencyMS = -1 }, ErrInvalid, "latency_ms (got=-1"},
		{"nan latency", "classification", func(r *Result) { r.LatencyMS = math.NaN() }, ErrInvalid, "latency_ms (got=NaN"},
		{"unknown task", "classification", func(r *Result) { r.Task = "detect" }, ErrInvalid, `task (got="detect"`},
		{"two labels single-label", "classification", func(r *Result) { r.Labels = []string{"one", "two"} }, ErrInvalid, "labels count for classification (got=2, want=1)"},
		{"score above one", "multilabel", func(r *Result) { r.Scores["haze"] = 1.5 }, ErrInvalid, `scores["haze"] (got=1.5`},
		{"label without score", "multilabel", func(r *Result) { r.Labels = []string{"cloudy"} }, ErrInvalid, `label "cloudy" has no score`},
		{"repeated label", "multilabel", func(r *Result) { r.Labels = []string{"clear", "clear"} }, ErrInvalid, `"clear" repeated`},
		{"mask on classification", "multilabel", func(r *Result) { r.MaskPNG = tinyPNG }, ErrInvalid, "mask_png is set for task multilabel"},
		{"points on segmentation", "segmentation", func(r *Result) { r.Points = []Point{{}} }, ErrInvalid, "points is set for task segmentation"},
		{"mask not png", "segmentation", func(r *Result) { r.MaskPNG = []byte("GIF89a....................") }, ErrInvalid, "mask_png is not a PNG"},
		{"mask size", "segmentation", func(r *Result) { r.Width = 4 }, ErrInvalid, "mask_png size (got=2x1, want=4x1)"},
		{"fractions length", "segmentation", func(r *Result) { r.ClassFraction = []float64{1} }, ErrInvalid, "class_fraction length (got=1, want=2"},
		{"fractions sum", "segmentation", func(r *Result) { r.ClassFraction = []float64{0.5, 0.2} }, ErrInvalid, "class_fraction sum (got=0.7"},
		{"huge mask", "segmentation", func(r *Result) { r.Width = 1 << 20 }, ErrInvalid, "mask size (got=1048576x1"},
		{"no points", "regression", func(r *Result) { r.Points = nil }, ErrInvalid, "points count (got=0"},
		{"inf point", "regression", func(r *Result) { r.Points[0].Y = math.Inf(1) }, ErrInvalid, "points[0] (got=(320.5,+Inf)"},
		{"labels on regression", "regression", func(r *Result) { r.Labels = []string{} }, ErrInvalid, "labels is set for task regression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := exampleResults()[tt.task] // fresh maps and slices
			tt.edit(&r)
			err := r.Validate()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("Validate = %v, want %v containing %q", err, tt.want, tt.inMsg)
			}
		})
	}
	_ = ex
}

func TestCorrectionValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Correction)
		inMsg string // "" means valid
	}{
		{"valid", func(*Correction) {}, ""},
		{"image instead of source", func(c *Correction) { c.Source, c.Seq, c.Image = "", 0, []byte{0xff, 0xd8} }, ""},
		{"no labels apply", func(c *Correction) { c.Labels = []string{} }, ""},
		{"both frame and image", func(c *Correction) { c.Image = []byte{1} }, "both source and image set"},
		{"no frame", func(c *Correction) { c.Source, c.Seq = "", 0 }, "no frame named"},
		{"seq with image", func(c *Correction) { c.Source, c.Image = "", []byte{1} }, "seq=42 set with an image"},
		{"labels missing", func(c *Correction) { c.Labels = nil }, "labels is missing (want it for task multilabel)"},
		{"label for multilabel", func(c *Correction) { c.Label = "clear" }, "label is set for task multilabel (want only labels)"},
		{"bad prediction", func(c *Correction) { c.Prediction = &Answer{Label: "haze"} }, "correction.prediction: label is set"},
		{"segmentation needs png", func(c *Correction) {
			c.Task, c.Labels, c.Prediction, c.MaskPNG = TaskSegmentation, nil, nil, []byte("xx")
		}, "mask_png is not a PNG"},
		{"regression", func(c *Correction) {
			c.Task, c.Labels, c.Prediction, c.Points = TaskRegression, nil, nil, []Point{{1, 2}}
		}, ""},
		{"classification", func(c *Correction) { c.Task, c.Labels, c.Prediction, c.Label = TaskClassification, nil, nil, "seven" }, ""},
		{"no labeler", func(c *Correction) { c.Labeler = "" }, "labeler"},
		{"no model version", func(c *Correction) { c.ModelVersion = "" }, "model_version length (got=0"},
		{"version", func(c *Correction) { c.SchemaVersion = 0 }, "schema_version (got=0, want=1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exampleCorrection()
			tt.edit(&c)
			err := c.Validate()
			if tt.inMsg == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.inMsg)
			}
		})
	}
}

func TestOtherContractsValidate(t *testing.T) {
	reg := func(edit func(*SourceRegistration)) error {
		s := SourceRegistration{SchemaVersion: Version, URL: "/data/vtest.avi", Model: "camvid"}
		edit(&s)
		return s.Validate()
	}
	eos := func(edit func(*EndOfStream)) error {
		e := EndOfStream{SchemaVersion: Version, Event: EventEndOfStream, Source: "s", Model: "m", LastSeq: 9, Frames: 10, Reason: "eof", TS: ts}
		edit(&e)
		return e.Validate()
	}
	er := func(edit func(*Error)) error {
		e := Error{SchemaVersion: Version, Error: "bad", Reason: "invalid_image"}
		edit(&e)
		return e.Validate()
	}
	tests := []struct {
		name  string
		err   error
		inMsg string
	}{
		{"file path", reg(func(*SourceRegistration) {}), ""},
		{"device", reg(func(s *SourceRegistration) { s.URL = "device://0"; s.EveryN = 2 }), ""},
		{"ftp", reg(func(s *SourceRegistration) { s.URL = "ftp://x/y" }), `url scheme (got="ftp"`},
		{"fps and every_n", reg(func(s *SourceRegistration) { s.FPS, s.EveryN = 5, 2 }), "both set"},
		{"fps too high", reg(func(s *SourceRegistration) { s.FPS = 1e6 }), "fps (got=1e+06, want 0..1000)"},
		{"negative every_n", reg(func(s *SourceRegistration) { s.EveryN = -1 }), "every_n (got=-1"},
		{"bad id", reg(func(s *SourceRegistration) { s.ID = "a.b" }), `id: schema: invalid name: source "a.b"`},
		{"no url", reg(func(s *SourceRegistration) { s.URL = "" }), "url length (got=0"},
		{"eos", eos(func(*EndOfStream) {}), ""},
		{"eos reason", eos(func(e *EndOfStream) { e.Reason = "bored" }), `reason (got="bored"`},
		{"eos frames", eos(func(e *EndOfStream) { e.Frames = 11 }), "frames=11 exceed last_seq+1=10"},
		{"eos event", eos(func(e *EndOfStream) { e.Event = "" }), `event (got="", want="end_of_stream")`},
		{"error", er(func(*Error) {}), ""},
		{"error reason", er(func(e *Error) { e.Reason = "no spaces" }), `reason (got="no spaces"`},
		{"error empty", er(func(e *Error) { e.Error = "" }), "error length (got=0"},
		{"error source", er(func(e *Error) { e.Source = "*" }), `source "*"`},
	}
	for _, tt := range tests {
		if tt.inMsg == "" {
			if tt.err != nil {
				t.Errorf("%s: Validate: %v", tt.name, tt.err)
			}
			continue
		}
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.inMsg) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tt.name, tt.err, tt.inMsg)
		}
	}
}

func FuzzResultJSON(f *testing.F) {
	for _, r := range exampleResults() {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"schema_version":1,"task":"segmentation","width":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if err := r.Validate(); err != nil {
			return
		}
		// A valid result survives a JSON round trip and stays valid.
		b2, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal valid result: %v", err)
		}
		var r2 Result
		if err := json.Unmarshal(b2, &r2); err != nil {
			t.Fatalf("unmarshal re-marshalled result: %v", err)
		}
		if err := r2.Validate(); err != nil {
			t.Fatalf("re-marshalled result invalid: %v\n%s", err, b2)
		}
	})
}

func FuzzCorrectionJSON(f *testing.F) {
	c := exampleCorrection()
	b, _ := json.Marshal(c)
	f.Add(b)
	c.Task, c.Labels, c.Prediction, c.MaskPNG = TaskSegmentation, nil, nil, tinyPNG
	b, _ = json.Marshal(c)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Correction
		if json.Unmarshal(b, &c) != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		b2, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal valid correction: %v", err)
		}
		var c2 Correction
		if err := json.Unmarshal(b2, &c2); err != nil {
			t.Fatalf("unmarshal re-marshalled correction: %v", err)
		}
		if err := c2.Validate(); err != nil {
			t.Fatalf("re-marshalled correction invalid: %v\n%s", err, b2)
		}
	})
}
