package schema

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Arrow schema metadata keys.
const (
	MetaVersion = "vireo.schema_version"
	MetaKind    = "vireo.kind" // "frames" or "results"
	MetaModel   = "vireo.model"
)

// writeOne encodes rec as an Arrow IPC stream: schema, one record batch, EOS.
func writeOne(mem memory.Allocator, rec arrow.Record) ([]byte, error) {
	var buf bytes.Buffer
	size := 1024
	for _, c := range rec.Columns() {
		for _, b := range c.Data().Buffers() {
			if b != nil {
				size += b.Len() + 8
			}
		}
	}
	buf.Grow(size) // one allocation for the whole message
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, fmt.Errorf("schema: write record: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("schema: close ipc writer: %w", err)
	}
	return buf.Bytes(), nil
}

// errTooLarge is the panic value of limitAllocator.
var errTooLarge = errors.New("allocation larger than the input")

// limitAllocator refuses any single allocation larger than limit. Arrow v15's
// IPC reader allocates buffers of the sizes written in the (untrusted)
// metadata before reading them; no legitimate uncompressed buffer is larger
// than the input bytes. Allocator methods cannot return errors, so it panics
// with errTooLarge and readOne recovers.
type limitAllocator struct {
	mem   memory.Allocator
	limit int
}

func (a limitAllocator) Allocate(n int) []byte {
	if n < 0 || n > a.limit {
		panic(errTooLarge)
	}
	return a.mem.Allocate(n)
}

func (a limitAllocator) Reallocate(n int, b []byte) []byte {
	if n < 0 || n > a.limit {
		panic(errTooLarge)
	}
	return a.mem.Reallocate(n, b)
}

func (a limitAllocator) Free(b []byte) { a.mem.Free(b) }

// bytesMessageReader is an ipc.MessageReader over a byte slice that checks
// every length against the bytes left before using it (arrow's own reader
// makes a slice of whatever length the input claims).
type bytesMessageReader struct {
	b    []byte
	off  int
	refs atomic.Int64
	msg  *ipc.Message
}

func newBytesMessageReader(b []byte) *bytesMessageReader {
	r := &bytesMessageReader{b: b}
	r.refs.Store(1)
	return r
}

func (r *bytesMessageReader) Retain() { r.refs.Add(1) }

func (r *bytesMessageReader) Release() {
	if r.refs.Add(-1) == 0 && r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

func (r *bytesMessageReader) Message() (*ipc.Message, error) {
	rest := r.b[r.off:]
	if len(rest) == 0 {
		return nil, io.EOF // a stream cut after a whole message: the caller's checks decide
	}
	if len(rest) < 8 {
		return nil, fmt.Errorf("%w: truncated message prefix at byte %d (got=%d bytes, want 8)", ErrMalformed, r.off, len(rest))
	}
	switch c := binary.LittleEndian.Uint32(rest); c {
	case 0xFFFFFFFF:
	case 0:
		return nil, io.EOF
	default:
		return nil, fmt.Errorf("%w: continuation marker at byte %d (got=%#x, want=0xffffffff)", ErrMalformed, r.off, c)
	}
	metaLen := int64(int32(binary.LittleEndian.Uint32(rest[4:])))
	if metaLen == 0 {
		return nil, io.EOF
	}
	if metaLen < 0 || metaLen > int64(len(rest)-8) {
		return nil, fmt.Errorf("%w: metadata length at byte %d (got=%d, want 1..%d)", ErrMalformed, r.off, metaLen, len(rest)-8)
	}
	meta := rest[8 : 8+metaLen]
	if err := verifyMessage(meta); err != nil {
		return nil, fmt.Errorf("message at byte %d: %w", r.off, err)
	}
	probe := ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	left := int64(len(rest)) - 8 - metaLen
	if bodyLen < 0 || bodyLen > left {
		return nil, fmt.Errorf("%w: body length at byte %d (got=%d, want 0..%d)", ErrMalformed, r.off, bodyLen, left)
	}
	body := rest[8+metaLen : 8+metaLen+bodyLen]
	if r.msg != nil {
		r.msg.Release()
	}
	r.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	r.off += int(8 + metaLen + bodyLen)
	return r.msg, nil
}

// readOne decodes an IPC stream holding exactly one record batch. It never
// panics: the bytes are checked by bytesMessageReader and limitAllocator,
// and, as a last resort, a panic inside arrow (which trusts offsets inside
// the flatbuffer metadata) is recovered and returned as ErrMalformed.
func readOne(mem memory.Allocator, b []byte) (rec arrow.Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			if rec != nil {
				rec.Release()
			}
			rec, err = nil, fmt.Errorf("%w: arrow decoder panicked: %v", ErrMalformed, p)
		}
	}()
	mr := newBytesMessageReader(b)
	defer mr.Release()
	r, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(limitAllocator{mem: mem, limit: len(b) + 64}))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: record batches (got=0, want=1)", ErrMalformed)
	}
	rec = r.Record()
	rec.Retain()
	if r.Next() {
		rec.Release()
		return nil, fmt.Errorf("%w: record batches (got>1, want=1)", ErrMalformed)
	}
	if err := r.Err(); err != nil {
		rec.Release()
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return rec, nil
}

// checkSchema compares got with want field by field (names, types,
// nullability) and the version and kind metadata, with got/want errors.
func checkSchema(got, want *arrow.Schema) error {
	if got.NumFields() != want.NumFields() {
		return fmt.Errorf("%w: field count (got=%d, want=%d)", ErrMalformed, got.NumFields(), want.NumFields())
	}
	for i, wf := range want.Fields() {
		gf := got.Field(i)
		if gf.Name != wf.Name || !arrow.TypeEqual(gf.Type, wf.Type) || gf.Nullable != wf.Nullable {
			return fmt.Errorf("%w: field %d (got=%s, want=%s)", ErrMalformed, i, gf, wf)
		}
	}
	md := got.Metadata()
	v := metaValue(md, MetaVersion)
	if v != strconv.Itoa(Version) {
		return fmt.Errorf("%w: arrow metadata %s (got=%q, want=%q)", ErrVersion, MetaVersion, v, strconv.Itoa(Version))
	}
	if k, wk := metaValue(md, MetaKind), metaValue(want.Metadata(), MetaKind); k != wk {
		return fmt.Errorf("%w: arrow metadata %s (got=%q, want=%q)", ErrMalformed, MetaKind, k, wk)
	}
	return nil
}

func metaValue(md arrow.Metadata, key string) string {
	if i := md.FindKey(key); i >= 0 {
		return md.Values()[i]
	}
	return ""
}

// The check* functions verify that an array's buffers hold what its length
// promises, so that accessors can never index out of range later. Nulls are
// not part of any Vireo schema: every column must have NullN() == 0.

func colErr(name, format string, args ...any) error {
	return fmt.Errorf("%w: column %s: %s", ErrMalformed, name, fmt.Sprintf(format, args...))
}

func checkCommon(name string, a arrow.Array, rows int) error {
	if a.Len() != rows {
		return colErr(name, "length (got=%d, want=%d)", a.Len(), rows)
	}
	d := a.Data()
	if d.Offset() < 0 {
		return colErr(name, "offset (got=%d, want>=0)", d.Offset())
	}
	if bm := buf(d, 0); bm != nil && len(bm)*8 < d.Offset()+d.Len() {
		return colErr(name, "validity bitmap (got=%d bytes, want>=%d)", len(bm), (d.Offset()+d.Len()+7)/8)
	}
	nulls, ok := nullN(d)
	if !ok {
		return colErr(name, "null count unknown and no validity bitmap")
	}
	if nulls != 0 {
		return colErr(name, "nulls (got=%d, want=0)", nulls)
	}
	return nil
}

// nullN returns d.NullN(). When the IPC metadata says the null count is
// unknown (-1) and there is no bitmap, arrow v15 counts bits of a nil buffer
// and panics; that is the one case recovered here.
func nullN(d arrow.ArrayData) (n int, ok bool) {
	defer func() {
		if recover() != nil {
			n, ok = 0, false
		}
	}()
	return d.NullN(), true
}

func buf(d arrow.ArrayData, i int) []byte {
	bs := d.Buffers()
	if i >= len(bs) || bs[i] == nil {
		return nil
	}
	return bs[i].Bytes()
}

// checkFixed checks a fixed-width column (width bytes per value).
func checkFixed(name string, a arrow.Array, rows, width int) error {
	if err := checkCommon(name, a, rows); err != nil {
		return err
	}
	d := a.Data()
	need := (d.Offset() + d.Len()) * width
	if got := len(buf(d, 1)); got < need {
		return colErr(name, "values buffer (got=%d bytes, want>=%d)", got, need)
	}
	return nil
}

// checkOffsets checks an int32 offsets buffer of a utf8 or list column and
// returns the range of child positions it covers.
func checkOffsets(name string, d arrow.ArrayData, limit int) (lo, hi int, err error) {
	n := d.Len()
	ob := buf(d, 1)
	if n == 0 {
		return 0, 0, nil
	}
	need := (d.Offset() + n + 1) * 4
	if len(ob) < need {
		return 0, 0, colErr(name, "offsets buffer (got=%d bytes, want>=%d)", len(ob), need)
	}
	offs := arrow.Int32Traits.CastFromBytes(ob)[d.Offset() : d.Offset()+n+1]
	if offs[0] < 0 {
		return 0, 0, colErr(name, "first offset (got=%d, want>=0)", offs[0])
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] < offs[i-1] {
			return 0, 0, colErr(name, "offsets decrease at row %d (got=%d after %d)", i-1, offs[i], offs[i-1])
		}
	}
	if int(offs[n]) > limit {
		return 0, 0, colErr(name, "last offset (got=%d, want<=%d)", offs[n], limit)
	}
	return int(offs[0]), int(offs[n]), nil
}

// checkUTF8 checks a utf8 column.
func checkUTF8(name string, a arrow.Array, rows int) error {
	if err := checkCommon(name, a, rows); err != nil {
		return err
	}
	_, _, err := checkOffsets(name, a.Data(), len(buf(a.Data(), 2)))
	return err
}

// checkList checks a list column and returns its values array; check the
// child with the returned length (child arrays carry their own length).
func checkList(name string, a arrow.Array, rows int) (arrow.Array, error) {
	if err := checkCommon(name, a, rows); err != nil {
		return nil, err
	}
	l, ok := a.(*array.List)
	if !ok {
		return nil, colErr(name, "type (got=%T, want *array.List)", a)
	}
	child := l.ListValues()
	if _, _, err := checkOffsets(name, a.Data(), child.Len()); err != nil {
		return nil, err
	}
	return child, nil
}
