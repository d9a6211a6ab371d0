package schema_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"vireo/pkg/schema"
)

func ExampleSubjects() {
	s, err := schema.NewSubjects("") // default prefix "vireo"
	if err != nil {
		fmt.Println(err)
		return
	}
	results, _ := s.Results("planet", "cam0")
	frames, _ := s.Frames("planet")
	id, _ := schema.MsgID("cam0", 42)
	fmt.Println(results)
	fmt.Println(frames, s.StreamName(schema.StreamFrames))
	fmt.Println(id)
	_, err = s.Results("planet", "cam.*")
	fmt.Println(err)
	// Output:
	// vireo.results.planet.cam0
	// vireo.frames.planet FRAMES
	// cam0/42
	// schema: invalid name: source "cam.*" has '.' at byte 3 (want only [A-Za-z0-9_-])
}

func ExampleEncodeFrames() {
	mem := memory.NewGoAllocator()
	frames := []schema.Frame{{
		Source: "cam0", Seq: 7, Captured: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		OrigWidth: 768, OrigHeight: 576, Width: 2, Height: 2, Channels: 3,
		Pixels: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
	}}
	b, err := schema.EncodeFrames(mem, "planet", frames)
	if err != nil {
		fmt.Println(err)
		return
	}
	fb, err := schema.DecodeFrames(mem, b)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fb.Release()
	f := fb.Frame(0)
	fmt.Println(fb.Model, fb.Len(), f.Source, f.Seq, fb.Width, fb.Height, fb.Channels, len(fb.Pixels()))

	_, err = schema.DecodeFrames(mem, b[:len(b)-40])
	fmt.Println(err != nil)
	// Output:
	// planet 1 cam0 7 2 2 3 12
	// true
}

func ExampleResult_Validate() {
	var r schema.Result
	_ = json.Unmarshal([]byte(`{"schema_version":1,"source":"cam0","seq":1,"ts":"2026-01-01T00:00:00Z",
		"model":"planet","model_version":"v3","task":"multilabel","latency_ms":8.5,
		"labels":["clear"],"scores":{"clear":1.5}}`), &r)
	fmt.Println(r.Validate())
	// Output:
	// schema: invalid message: result: scores["clear"] (got=1.5, want in [0,1])
}
