package schema

import (
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Bounds on frame batches (checked by EncodeFrames and DecodeFrames).
const (
	MaxFramesPerBatch = 1024
	MaxModelDim       = 4096  // model input width and height
	MaxOriginalDim    = 16384 // original frame width and height
	MaxChannels       = 4
	MaxFrameBytes     = 64 << 20 // pixels of one frame (h*w*c)
)

// Frame is one decoded, resized frame: uint8 pixels, HWC, BGR (OpenCV's
// order), at the model's input size. Normalisation happens in the kernel.
type Frame struct {
	Source                  string
	Seq                     uint64
	Captured                time.Time
	OrigWidth, OrigHeight   int // size of the frame as captured
	Width, Height, Channels int // model input size: len(Pixels) == Height*Width*Channels
	Pixels                  []byte
}

// FrameSchema is the Arrow schema of a frame batch for model at the given
// input size: one row per frame, no nullable columns, metadata with the
// schema version, kind "frames" and the model name.
//
// Pixels are fixed_size_binary(height*width*channels) rather than
// list<uint8>: the type itself guarantees every row has the model's size,
// there are no offsets to validate, and the values buffer of a batch is one
// contiguous (N,H,W,C) uint8 array that FrameBatch.Pixels hands to a tensor
// upload without a copy.
func FrameSchema(model string, width, height, channels int) (*arrow.Schema, error) {
	if err := ValidateModel(model); err != nil {
		return nil, err
	}
	if err := checkDims(width, height, channels); err != nil {
		return nil, err
	}
	return frameSchema(model, width*height*channels), nil
}

func frameSchema(model string, frameBytes int) *arrow.Schema {
	md := arrow.NewMetadata(
		[]string{MetaVersion, MetaKind, MetaModel},
		[]string{strconv.Itoa(Version), "frames", model},
	)
	return arrow.NewSchema([]arrow.Field{
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "seq", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "captured", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
		{Name: "orig_width", Type: arrow.PrimitiveTypes.Int32},
		{Name: "orig_height", Type: arrow.PrimitiveTypes.Int32},
		{Name: "width", Type: arrow.PrimitiveTypes.Int32},
		{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		{Name: "channels", Type: arrow.PrimitiveTypes.Int32},
		{Name: "pixels", Type: &arrow.FixedSizeBinaryType{ByteWidth: frameBytes}},
	}, &md)
}

func checkDims(w, h, c int) error {
	if w < 1 || w > MaxModelDim || h < 1 || h > MaxModelDim {
		return fmt.Errorf("%w: model input size (got=%dx%d, want 1..%d each)", ErrMalformed, w, h, MaxModelDim)
	}
	if c < 1 || c > MaxChannels {
		return fmt.Errorf("%w: channels (got=%d, want 1..%d)", ErrMalformed, c, MaxChannels)
	}
	if w*h*c > MaxFrameBytes {
		return fmt.Errorf("%w: frame bytes (got=%d, want<=%d)", ErrMalformed, w*h*c, MaxFrameBytes)
	}
	return nil
}

func checkOrig(w, h int) error {
	if w < 1 || w > MaxOriginalDim || h < 1 || h > MaxOriginalDim {
		return fmt.Errorf("%w: original size (got=%dx%d, want 1..%d each)", ErrMalformed, w, h, MaxOriginalDim)
	}
	return nil
}

// EncodeFrames encodes frames for model as Arrow IPC stream bytes holding
// one record batch (schema, batch, end-of-stream). Every frame must have the
// same model input size, 1..MaxFramesPerBatch frames. (The model name is a
// parameter because it goes in the schema metadata.)
func EncodeFrames(mem memory.Allocator, model string, frames []Frame) ([]byte, error) {
	if len(frames) == 0 || len(frames) > MaxFramesPerBatch {
		return nil, fmt.Errorf("%w: frames (got=%d, want 1..%d)", ErrMalformed, len(frames), MaxFramesPerBatch)
	}
	f0 := frames[0]
	sch, err := FrameSchema(model, f0.Width, f0.Height, f0.Channels)
	if err != nil {
		return nil, err
	}
	size := f0.Width * f0.Height * f0.Channels
	for i, f := range frames {
		if err := ValidateSource(f.Source); err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		if f.Width != f0.Width || f.Height != f0.Height || f.Channels != f0.Channels {
			return nil, fmt.Errorf("%w: frame %d size (got=%dx%dx%d, want=%dx%dx%d as frame 0)",
				ErrMalformed, i, f.Width, f.Height, f.Channels, f0.Width, f0.Height, f0.Channels)
		}
		if len(f.Pixels) != size {
			return nil, fmt.Errorf("%w: frame %d pixels (got=%d bytes, want=%d = %dx%dx%d)", ErrMalformed, i, len(f.Pixels), size, f.Height, f.Width, f.Channels)
		}
		if err := checkOrig(f.OrigWidth, f.OrigHeight); err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		if f.Captured.IsZero() {
			return nil, fmt.Errorf("%w: frame %d captured time is zero (want the capture time)", ErrMalformed, i)
		}
	}
	// Columns 0..7 through builders; the pixels are copied once, straight
	// into one buffer of N*size bytes (the builder would grow and copy it
	// several times).
	fields := sch.Fields()
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields[:8], nil))
	defer b.Release()
	src := b.Field(0).(*array.StringBuilder)
	seq := b.Field(1).(*array.Uint64Builder)
	ts := b.Field(2).(*array.TimestampBuilder)
	ints := []*array.Int32Builder{
		b.Field(3).(*array.Int32Builder), b.Field(4).(*array.Int32Builder),
		b.Field(5).(*array.Int32Builder), b.Field(6).(*array.Int32Builder), b.Field(7).(*array.Int32Builder),
	}
	pixBuf := memory.NewResizableBuffer(mem)
	defer pixBuf.Release()
	pixBuf.Resize(len(frames) * size)
	pix := pixBuf.Bytes()
	for i, f := range frames {
		src.Append(f.Source)
		seq.Append(f.Seq)
		ts.Append(arrow.Timestamp(f.Captured.UnixNano()))
		for j, v := range []int{f.OrigWidth, f.OrigHeight, f.Width, f.Height, f.Channels} {
			ints[j].Append(int32(v))
		}
		copy(pix[i*size:], f.Pixels)
	}
	head := b.NewRecord()
	defer head.Release()
	pixData := array.NewData(fields[8].Type, len(frames), []*memory.Buffer{nil, pixBuf}, nil, 0, 0)
	defer pixData.Release()
	pixArr := array.MakeFromData(pixData)
	defer pixArr.Release()
	cols := append(head.Columns()[:8:8], pixArr)
	rec := array.NewRecord(sch, cols, int64(len(frames)))
	defer rec.Release()
	return writeOne(mem, rec)
}

// FrameBatch is a decoded, validated frame batch. Its accessors cannot fail
// or panic for i in [0, Len()). Call Release when done; slices it returns
// are valid until then.
type FrameBatch struct {
	Model                   string
	Width, Height, Channels int

	rec    arrow.Record
	source *array.String
	seq    *array.Uint64
	ts     *array.Timestamp
	ow, oh *array.Int32
	pixels []byte // N*H*W*C, row-major
}

// Len is the number of frames.
func (b *FrameBatch) Len() int { return int(b.rec.NumRows()) }

// Record returns the underlying record (not retained: Retain it to keep it
// past Release).
func (b *FrameBatch) Record() arrow.Record { return b.rec }

// Release releases the record's memory.
func (b *FrameBatch) Release() {
	if b.rec != nil {
		b.rec.Release()
		b.rec = nil
	}
}

// Pixels returns the pixels of every frame as one (N,H,W,C) uint8 slice of
// the record's buffer, without a copy.
func (b *FrameBatch) Pixels() []byte { return b.pixels }

// Frame returns frame i; its Pixels alias the batch (no copy).
func (b *FrameBatch) Frame(i int) Frame {
	size := b.Width * b.Height * b.Channels
	return Frame{
		Source:     b.source.Value(i),
		Seq:        b.seq.Value(i),
		Captured:   time.Unix(0, int64(b.ts.Value(i))).UTC(),
		OrigWidth:  int(b.ow.Value(i)),
		OrigHeight: int(b.oh.Value(i)),
		Width:      b.Width, Height: b.Height, Channels: b.Channels,
		Pixels: b.pixels[i*size : (i+1)*size : (i+1)*size],
	}
}

// DecodeFrames decodes and validates Arrow IPC stream bytes made by
// EncodeFrames: exactly one record batch; the schema field by field, its
// version and kind; the model name; 1..MaxFramesPerBatch rows; no nulls;
// buffers as long as the rows need; valid source names; every row's model
// size equal and matching the pixel width w*h*c; bounded sizes. Malformed
// input gives an error wrapping ErrMalformed (or ErrVersion), never a panic.
// The batch owns a copy of the data (arrow v15's IPC reader copies buffers).
func DecodeFrames(mem memory.Allocator, b []byte) (fb *FrameBatch, err error) {
	defer recoverValidation(&err)
	rec, err := readOne(mem, b)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rec.Release()
		}
	}()
	return validateFrames(rec)
}

// recoverValidation is the last resort of DecodeFrames and DecodeResults:
// validation is written not to panic (FuzzDecodeFrames checks it, failing
// on this message), but a decoder of outside bytes must not take the
// service down if it ever does.
func recoverValidation(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: validation panicked (a bug): %v", ErrMalformed, p)
	}
}

func validateFrames(rec arrow.Record) (*FrameBatch, error) {
	sch := rec.Schema()
	model := metaValue(sch.Metadata(), MetaModel)
	if err := ValidateModel(model); err != nil {
		return nil, fmt.Errorf("%w: arrow metadata %s: %w", ErrMalformed, MetaModel, err)
	}
	if sch.NumFields() != 9 {
		return nil, fmt.Errorf("%w: field count (got=%d, want=9)", ErrMalformed, sch.NumFields())
	}
	pt, ok := sch.Field(8).Type.(*arrow.FixedSizeBinaryType)
	if !ok {
		return nil, fmt.Errorf("%w: field 8 (got=%s, want=pixels: fixed_size_binary)", ErrMalformed, sch.Field(8))
	}
	if pt.ByteWidth < 1 || pt.ByteWidth > MaxFrameBytes {
		return nil, fmt.Errorf("%w: pixels width (got=%d, want 1..%d)", ErrMalformed, pt.ByteWidth, MaxFrameBytes)
	}
	if err := checkSchema(sch, frameSchema(model, pt.ByteWidth)); err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	if n < 1 || n > MaxFramesPerBatch {
		return nil, fmt.Errorf("%w: rows (got=%d, want 1..%d)", ErrMalformed, n, MaxFramesPerBatch)
	}
	if int(rec.NumCols()) != 9 {
		return nil, fmt.Errorf("%w: columns (got=%d, want=9)", ErrMalformed, rec.NumCols())
	}
	names := []string{"source", "seq", "captured", "orig_width", "orig_height", "width", "height", "channels", "pixels"}
	if err := checkUTF8(names[0], rec.Column(0), n); err != nil {
		return nil, err
	}
	for i, w := range []int{8, 8, 4, 4, 4, 4, 4, pt.ByteWidth} {
		if err := checkFixed(names[i+1], rec.Column(i+1), n, w); err != nil {
			return nil, err
		}
	}
	fb := &FrameBatch{
		Model:  model,
		rec:    rec,
		source: rec.Column(0).(*array.String),
		seq:    rec.Column(1).(*array.Uint64),
		ts:     rec.Column(2).(*array.Timestamp),
		ow:     rec.Column(3).(*array.Int32),
		oh:     rec.Column(4).(*array.Int32),
	}
	w, h, c := rec.Column(5).(*array.Int32), rec.Column(6).(*array.Int32), rec.Column(7).(*array.Int32)
	fb.Width, fb.Height, fb.Channels = int(w.Value(0)), int(h.Value(0)), int(c.Value(0))
	if err := checkDims(fb.Width, fb.Height, fb.Channels); err != nil {
		return nil, err
	}
	if got := fb.Width * fb.Height * fb.Channels; got != pt.ByteWidth {
		return nil, fmt.Errorf("%w: width*height*channels (got=%d*%d*%d=%d, want=%d, the pixels width)",
			ErrMalformed, fb.Width, fb.Height, fb.Channels, got, pt.ByteWidth)
	}
	for i := range n {
		if int(w.Value(i)) != fb.Width || int(h.Value(i)) != fb.Height || int(c.Value(i)) != fb.Channels {
			return nil, fmt.Errorf("%w: row %d model size (got=%dx%dx%d, want=%dx%dx%d as row 0)",
				ErrMalformed, i, w.Value(i), h.Value(i), c.Value(i), fb.Width, fb.Height, fb.Channels)
		}
		if err := checkOrig(int(fb.ow.Value(i)), int(fb.oh.Value(i))); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		if err := ValidateSource(fb.source.Value(i)); err != nil {
			return nil, fmt.Errorf("%w: row %d: %w", ErrMalformed, i, err)
		}
	}
	pd := rec.Column(8).Data()
	start := pd.Offset() * pt.ByteWidth
	fb.pixels = buf(pd, 1)[start : start+n*pt.ByteWidth : start+n*pt.ByteWidth]
	return fb, nil
}
