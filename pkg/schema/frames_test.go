package schema

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

var capT = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

func testFrames(n, w, h, c int) []Frame {
	frames := make([]Frame, n)
	for i := range frames {
		px := make([]byte, w*h*c)
		for j := range px {
			px[j] = byte(i*31 + j)
		}
		frames[i] = Frame{
			Source: []string{"cam0", "cam1", "door-2"}[i%3], Seq: uint64(100 + i),
			Captured:  capT.Add(time.Duration(i) * 40 * time.Millisecond),
			OrigWidth: 768, OrigHeight: 576, Width: w, Height: h, Channels: c, Pixels: px,
		}
	}
	return frames
}

func TestFrameSchemaGolden(t *testing.T) {
	sch, err := FrameSchema("planet", 224, 224, 3)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "frame_schema", []byte(sch.String()+"\n"))
}

func TestFramesRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	frames := testFrames(5, 7, 3, 3)
	b, err := EncodeFrames(mem, "planet", frames)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := DecodeFrames(mem, b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Release()
	if fb.Len() != 5 || fb.Model != "planet" || fb.Width != 7 || fb.Height != 3 || fb.Channels != 3 {
		t.Fatalf("batch = %d frames %s %dx%dx%d, want 5 planet 7x3x3", fb.Len(), fb.Model, fb.Width, fb.Height, fb.Channels)
	}
	var all []byte
	for i, want := range frames {
		got := fb.Frame(i)
		if got.Source != want.Source || got.Seq != want.Seq || !got.Captured.Equal(want.Captured) ||
			got.OrigWidth != 768 || got.OrigHeight != 576 || !bytes.Equal(got.Pixels, want.Pixels) {
			t.Fatalf("frame %d = %+v, want %+v", i, got, want)
		}
		all = append(all, want.Pixels...)
	}
	if !bytes.Equal(fb.Pixels(), all) {
		t.Fatal("Pixels() is not the frames' pixels concatenated")
	}
	// Pixels() is the record's buffer itself: no copy.
	if &fb.Pixels()[0] != &fb.Record().Column(8).Data().Buffers()[1].Bytes()[0] {
		t.Fatal("Pixels() copied the buffer")
	}
}

func TestEncodeFramesErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tests := []struct {
		name   string
		model  string
		mutate func([]Frame) []Frame
		want   string
	}{
		{"no frames", "m", func([]Frame) []Frame { return nil }, "frames (got=0"},
		{"bad model", "a.b", func(f []Frame) []Frame { return f }, `model "a.b"`},
		{"reserved model", "arrow", func(f []Frame) []Frame { return f }, "reserved"},
		{"bad source", "m", func(f []Frame) []Frame { f[1].Source = "cam*"; return f }, `frame 1: schema: invalid name: source "cam*"`},
		{"short pixels", "m", func(f []Frame) []Frame { f[1].Pixels = f[1].Pixels[1:]; return f }, "pixels (got=62 bytes, want=63"},
		{"mixed sizes", "m", func(f []Frame) []Frame { f[1].Width = 1; return f }, "frame 1 size (got=1x3x3, want=7x3x3"},
		{"zero orig", "m", func(f []Frame) []Frame { f[0].OrigWidth = 0; return f }, "original size (got=0x576"},
		{"five channels", "m", func(f []Frame) []Frame { f[0].Channels = 5; return f }, "channels (got=5"},
		{"zero time", "m", func(f []Frame) []Frame { f[1].Captured = time.Time{}; return f }, "captured time is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodeFrames(mem, tt.model, tt.mutate(testFrames(2, 7, 3, 3)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodeFrames error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// writeRecord encodes an arbitrary record (to forge batches EncodeFrames
// would refuse to write).
func writeRecord(t *testing.T, mem memory.Allocator, recs ...arrow.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()), ipc.WithAllocator(mem))
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// forge builds a frame record with sch, filling each row from the frame and
// then letting edit change the builders' values.
func forge(t *testing.T, mem memory.Allocator, sch *arrow.Schema, frames []Frame, dims func(i int) (int32, int32, int32)) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for i, f := range frames {
		b.Field(0).(*array.StringBuilder).Append(f.Source)
		switch sb := b.Field(1).(type) {
		case *array.Uint64Builder:
			sb.Append(f.Seq)
		case *array.Int64Builder:
			sb.Append(int64(f.Seq))
		}
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(f.Captured.UnixNano()))
		b.Field(3).(*array.Int32Builder).Append(int32(f.OrigWidth))
		b.Field(4).(*array.Int32Builder).Append(int32(f.OrigHeight))
		w, h, c := dims(i)
		b.Field(5).(*array.Int32Builder).Append(w)
		b.Field(6).(*array.Int32Builder).Append(h)
		b.Field(7).(*array.Int32Builder).Append(c)
		b.Field(8).(*array.FixedSizeBinaryBuilder).Append(f.Pixels)
	}
	return b.NewRecord()
}

func TestDecodeFramesRejects(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good, err := EncodeFrames(mem, "planet", testFrames(2, 7, 3, 3))
	if err != nil {
		t.Fatal(err)
	}
	frames := testFrames(2, 7, 3, 3)
	sch := frameSchema("planet", 63)
	same := func(int) (int32, int32, int32) { return 7, 3, 3 }

	forged := func(sch *arrow.Schema, dims func(int) (int32, int32, int32), n int) []byte {
		rec := forge(t, mem, sch, frames[:n], dims)
		defer rec.Release()
		return writeRecord(t, mem, rec)
	}
	twoBatches := func() []byte {
		rec := forge(t, mem, sch, frames, same)
		defer rec.Release()
		return writeRecord(t, mem, rec, rec)
	}
	md := func(kv ...string) *arrow.Metadata {
		m := arrow.NewMetadata([]string{kv[0], kv[2], kv[4]}, []string{kv[1], kv[3], kv[5]})
		return &m
	}
	withMeta := func(m *arrow.Metadata) *arrow.Schema { return arrow.NewSchema(sch.Fields(), m) }
	badField := func(i int, f arrow.Field) *arrow.Schema {
		fs := sch.Fields()
		fs[i] = f
		m := sch.Metadata()
		return arrow.NewSchema(fs, &m)
	}
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "could not read message schema"},
		{"garbage", []byte("not arrow at all, just text"), ErrMalformed, "continuation marker"},
		{"truncated", good[:len(good)/2], ErrMalformed, ""},
		{"huge metadata length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrMalformed, "metadata length"},
		{"two batches", twoBatches(), ErrMalformed, "got>1, want=1"},
		{"zero rows", forged(sch, same, 0), ErrMalformed, "rows (got=0"},
		{"mismatched size", forged(sch, func(i int) (int32, int32, int32) { return 3, 7, 3 }, 2), nil, ""},
		{"dims disagree with pixels", forged(sch, func(int) (int32, int32, int32) { return 7, 3, 1 }, 2), ErrMalformed, "want=63, the pixels width"},
		{"rows disagree", forged(sch, func(i int) (int32, int32, int32) { return 7 - 4*int32(i), 3 + 4*int32(i), 3 }, 2), ErrMalformed, "row 1 model size"},
		{"negative dims", forged(sch, func(int) (int32, int32, int32) { return -7, -3, 3 }, 2), ErrMalformed, "model input size (got=-7x-3"},
		{"wrong version", forged(withMeta(md(MetaVersion, "99", MetaKind, "frames", MetaModel, "planet")), same, 2), ErrVersion, `got="99", want="1"`},
		{"wrong kind", forged(withMeta(md(MetaVersion, "1", MetaKind, "results", MetaModel, "planet")), same, 2), ErrMalformed, `vireo.kind (got="results"`},
		{"bad model", forged(withMeta(md(MetaVersion, "1", MetaKind, "frames", MetaModel, "a>b")), same, 2), ErrMalformed, "vireo.model"},
		{"wrong type", forged(badField(1, arrow.Field{Name: "seq", Type: arrow.PrimitiveTypes.Int64}), same, 2), ErrMalformed, "field 1 (got=seq: type=int64"},
		{"nullable", forged(badField(0, arrow.Field{Name: "source", Type: arrow.BinaryTypes.String, Nullable: true}), same, 2), ErrMalformed, "field 0"},
		{"local time", forged(badField(2, arrow.Field{Name: "captured", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}}), same, 2), ErrMalformed, "field 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb, err := DecodeFrames(mem, tt.b)
			if tt.want == nil { // "mismatched size": 3x7x3 is also 63 bytes: valid
				if err != nil {
					t.Fatalf("DecodeFrames: %v", err)
				}
				fb.Release()
				return
			}
			if err == nil {
				fb.Release()
				t.Fatal("DecodeFrames succeeded, want an error")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecodeFrames error = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func FuzzDecodeFrames(f *testing.F) {
	mem := memory.NewGoAllocator()
	for _, n := range []int{1, 3} {
		b, err := EncodeFrames(mem, "planet", testFrames(n, 4, 2, 3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fb, err := DecodeFrames(mem, b)
		if err != nil {
			if strings.Contains(err.Error(), "validation panicked") {
				t.Fatal(err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrVersion", err)
			}
			return
		}
		defer fb.Release()
		// A batch that decodes must be fully usable and re-encode to the same frames.
		frames := make([]Frame, fb.Len())
		for i := range frames {
			frames[i] = fb.Frame(i)
		}
		if len(fb.Pixels()) != fb.Len()*fb.Width*fb.Height*fb.Channels {
			t.Fatalf("Pixels length %d, want %d", len(fb.Pixels()), fb.Len()*fb.Width*fb.Height*fb.Channels)
		}
		b2, err := EncodeFrames(mem, fb.Model, frames)
		if err != nil {
			t.Fatalf("re-encode of a decoded batch: %v", err)
		}
		fb2, err := DecodeFrames(mem, b2)
		if err != nil {
			t.Fatalf("decode of re-encoded batch: %v", err)
		}
		defer fb2.Release()
		if !bytes.Equal(fb2.Pixels(), fb.Pixels()) || fb2.Len() != fb.Len() {
			t.Fatal("re-encoded batch differs")
		}
	})
}

// BenchmarkFrames encodes and decodes a batch of 32 frames at 224x224x3
// (4.8 MB), the size infer pulls.
func BenchmarkFrames(b *testing.B) {
	mem := memory.NewGoAllocator()
	frames := testFrames(32, 224, 224, 3)
	enc, err := EncodeFrames(mem, "planet", frames)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := EncodeFrames(mem, "planet", frames); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			fb, err := DecodeFrames(mem, enc)
			if err != nil {
				b.Fatal(err)
			}
			fb.Release()
		}
	})
}

// TestForgedVectorLength patches the schema message's field-vector length
// to 2^31-1. Arrow v15 would make() a slice that long and die of an
// out-of-memory error no recover can catch; verifyMessage must refuse it.
func TestForgedVectorLength(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b, err := EncodeFrames(mem, "planet", testFrames(1, 2, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	meta := fbuf(b[8:]) // the schema message: 0xffffffff, length, flatbuffer
	root, _ := meta.u32(0)
	msg, err := meta.table(root)
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := meta.subTable(msg, 2)
	if err != nil || !ok {
		t.Fatalf("schema header: %v", err)
	}
	start, n, err := meta.vector(h, 1, 4)
	if err != nil || n != 9 {
		t.Fatalf("fields vector: n=%d, %v (want 9 fields)", n, err)
	}
	forged := bytes.Clone(b)
	copy(forged[8+start-4:], []byte{0xff, 0xff, 0xff, 0x7f})
	_, err = DecodeFrames(mem, forged)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "length 2147483647 x 4 bytes exceeds") {
		t.Fatalf("DecodeFrames(forged) = %v, want ErrMalformed about the vector length", err)
	}
}
