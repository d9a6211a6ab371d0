package schema

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

func TestResultSchemaGolden(t *testing.T) {
	sch, err := ResultSchema("planet")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "result_schema", []byte(sch.String()+"\n"))
}

func TestResultsArrowRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for task, r := range exampleResults() {
		t.Run(task, func(t *testing.T) {
			r2 := r
			r2.Seq++
			b, err := EncodeResults(mem, r.Model, []Result{r, r2})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeResults(mem, b)
			if err != nil {
				t.Fatal(err)
			}
			want := r
			want.MaskPNG = nil // JSON only
			if len(got) != 2 || !reflect.DeepEqual(got[0], want) || got[1].Seq != r.Seq+1 {
				t.Fatalf("round trip = %+v, want %+v", got, want)
			}
		})
	}
}

func TestResultsArrowErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r := exampleResults()["multilabel"]
	if _, err := EncodeResults(mem, "camvid", []Result{r}); err == nil || !strings.Contains(err.Error(), `model (got="planet", want="camvid")`) {
		t.Fatalf("EncodeResults for another model: err = %v", err)
	}
	bad := r
	bad.LatencyMS = -1
	if _, err := EncodeResults(mem, "planet", []Result{r, bad}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "result 1") {
		t.Fatalf("EncodeResults with an invalid result: err = %v", err)
	}
	// Frame bytes are not result bytes.
	fb, err := EncodeFrames(mem, "planet", testFrames(1, 2, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeResults(mem, fb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeResults(frame batch) = %v, want ErrMalformed", err)
	}
	rb, err := EncodeResults(mem, "planet", []Result{r})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeFrames(mem, rb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeFrames(result batch) = %v, want ErrMalformed", err)
	}
	for cut := 0; cut < len(rb); cut += 7 {
		if _, err := DecodeResults(mem, rb[:cut]); err == nil {
			t.Fatalf("DecodeResults of %d of %d bytes succeeded", cut, len(rb))
		}
	}
}

func FuzzDecodeResults(f *testing.F) {
	mem := memory.NewGoAllocator()
	for _, r := range exampleResults() {
		b, err := EncodeResults(mem, r.Model, []Result{r})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := DecodeResults(mem, b)
		if err != nil {
			if strings.Contains(err.Error(), "validation panicked") {
				t.Fatal(err)
			}
			return
		}
		// Decoded results are valid (mask aside).
		for i := range rs {
			if err := rs[i].validate(false); err != nil {
				t.Fatalf("decoded result %d invalid: %v", i, err)
			}
		}
	})
}
