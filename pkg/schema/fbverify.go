package schema

import (
	"encoding/binary"
	"fmt"
)

// Arrow v15's IPC reader does not verify the flatbuffer metadata of a
// message: a vector length read from untrusted bytes goes straight into
// make(), so a few hundred bytes can ask for tens of GiB and kill the
// process with an out-of-memory error that recover cannot catch (found by
// FuzzDecodeFrames). verifyMessage checks, before arrow sees it, that the
// metadata is a Message whose every table, vector and string lies inside
// the bytes, restricted to what Vireo's schemas use: Schema and RecordBatch
// headers; Int, FloatingPoint, Utf8, Timestamp, FixedSizeBinary and List
// fields; no dictionaries, no body compression, nesting depth <= 2. The
// layouts are those of Arrow's format/Message.fbs and format/Schema.fbs.

type fbuf []byte

func fbErr(format string, args ...any) error {
	return fmt.Errorf("%w: message metadata: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func (b fbuf) u32(p int) (int, error) {
	if p < 0 || p+4 > len(b) {
		return 0, fbErr("offset %d out of range (len %d)", p, len(b))
	}
	return int(binary.LittleEndian.Uint32(b[p:])), nil
}

// fbTable is a verified table: its position and its vtable's field offsets.
type fbTable struct {
	pos    int
	fields []int // offset of field i from pos, 0 when absent
}

func (b fbuf) table(pos int) (fbTable, error) {
	if pos < 0 || pos+4 > len(b) {
		return fbTable{}, fbErr("table at %d out of range (len %d)", pos, len(b))
	}
	vt := pos - int(int32(binary.LittleEndian.Uint32(b[pos:])))
	if vt < 0 || vt+4 > len(b) {
		return fbTable{}, fbErr("vtable at %d out of range (len %d)", vt, len(b))
	}
	vtLen := int(binary.LittleEndian.Uint16(b[vt:]))
	objLen := int(binary.LittleEndian.Uint16(b[vt+2:]))
	if vtLen < 4 || vtLen%2 != 0 || vt+vtLen > len(b) || objLen < 4 || pos+objLen > len(b) {
		return fbTable{}, fbErr("vtable at %d: sizes (vtable=%d, object=%d) out of range (len %d)", vt, vtLen, objLen, len(b))
	}
	t := fbTable{pos: pos, fields: make([]int, (vtLen-4)/2)}
	for i := range t.fields {
		off := int(binary.LittleEndian.Uint16(b[vt+4+2*i:]))
		if off != 0 && (off < 4 || off+1 > objLen) {
			return fbTable{}, fbErr("table at %d: field %d offset %d outside object of %d bytes", pos, i, off, objLen)
		}
		t.fields[i] = off
	}
	return t, nil
}

// scalar returns the position of field i if it has size bytes in range.
func (b fbuf) scalar(t fbTable, i, size int) (int, bool, error) {
	if i >= len(t.fields) || t.fields[i] == 0 {
		return 0, false, nil
	}
	p := t.pos + t.fields[i]
	if p+size > len(b) {
		return 0, false, fbErr("field %d of table at %d out of range", i, t.pos)
	}
	return p, true, nil
}

// ref follows the offset in field i to its target position.
func (b fbuf) ref(t fbTable, i int) (int, bool, error) {
	p, ok, err := b.scalar(t, i, 4)
	if !ok || err != nil {
		return 0, ok, err
	}
	off, err := b.u32(p)
	if err != nil {
		return 0, false, err
	}
	return p + off, true, nil
}

// vector checks the vector in field i with elements of elemSize bytes and
// returns the position of its first element and its length.
func (b fbuf) vector(t fbTable, i, elemSize int) (start, n int, err error) {
	p, ok, err := b.ref(t, i)
	if !ok || err != nil {
		return 0, 0, err
	}
	n, err = b.u32(p)
	if err != nil {
		return 0, 0, err
	}
	if int64(p)+4+int64(n)*int64(elemSize) > int64(len(b)) {
		return 0, 0, fbErr("vector at %d: length %d x %d bytes exceeds the %d-byte metadata", p, n, elemSize, len(b))
	}
	return p + 4, n, nil
}

// tables checks a vector of tables in field i and returns them.
func (b fbuf) tables(t fbTable, i int) ([]fbTable, error) {
	start, n, err := b.vector(t, i, 4)
	if err != nil {
		return nil, err
	}
	out := make([]fbTable, n)
	for j := range n {
		off, _ := b.u32(start + 4*j)
		if out[j], err = b.table(start + 4*j + off); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// subTable checks the table in field i, if present.
func (b fbuf) subTable(t fbTable, i int) (fbTable, bool, error) {
	p, ok, err := b.ref(t, i)
	if !ok || err != nil {
		return fbTable{}, ok, err
	}
	st, err := b.table(p)
	return st, true, err
}

func (b fbuf) u8(t fbTable, i int) (int, error) {
	p, ok, err := b.scalar(t, i, 1)
	if !ok || err != nil {
		return 0, err
	}
	return int(b[p]), nil
}

func (b fbuf) keyValues(t fbTable, i int) error {
	kvs, err := b.tables(t, i)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		for f := range 2 {
			if _, _, err := b.vector(kv, f, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// Arrow flatbuffer enum values used below.
const (
	fbHeaderSchema      = 1
	fbHeaderRecordBatch = 3

	fbTypeInt             = 2
	fbTypeFloatingPoint   = 3
	fbTypeUtf8            = 5
	fbTypeTimestamp       = 10
	fbTypeList            = 12
	fbTypeFixedSizeBinary = 15
)

func (b fbuf) field(t fbTable, depth int) error {
	if depth > 2 {
		return fbErr("fields nested deeper than 2")
	}
	if _, _, err := b.vector(t, 0, 1); err != nil { // name
		return err
	}
	if _, _, err := b.scalar(t, 1, 1); err != nil { // nullable
		return err
	}
	typ, err := b.u8(t, 2)
	if err != nil {
		return err
	}
	tt, ok, err := b.subTable(t, 3)
	if err != nil {
		return err
	}
	switch typ {
	case fbTypeInt, fbTypeFloatingPoint, fbTypeUtf8, fbTypeTimestamp, fbTypeList, fbTypeFixedSizeBinary:
	default:
		return fbErr("field type %d (want int, float, utf8, timestamp, list or fixed_size_binary)", typ)
	}
	if !ok {
		return fbErr("field type %d has no type table", typ)
	}
	var sizes []int // scalar fields of the type table
	switch typ {
	case fbTypeInt:
		sizes = []int{4, 1} // bitWidth, is_signed
	case fbTypeFloatingPoint, fbTypeTimestamp:
		sizes = []int{2} // precision; unit
	case fbTypeFixedSizeBinary:
		sizes = []int{4} // byteWidth
	}
	for i, size := range sizes {
		if _, _, err := b.scalar(tt, i, size); err != nil {
			return err
		}
	}
	if typ == fbTypeTimestamp {
		if _, _, err := b.vector(tt, 1, 1); err != nil { // timezone
			return err
		}
	}
	if _, has, err := b.ref(t, 4); err != nil || has {
		if err == nil {
			err = fbErr("dictionary-encoded field (want none)")
		}
		return err
	}
	children, err := b.tables(t, 5)
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := b.field(c, depth+1); err != nil {
			return err
		}
	}
	return b.keyValues(t, 6)
}

// verifyMessage checks the flatbuffer metadata of one IPC message.
func verifyMessage(meta []byte) error {
	b := fbuf(meta)
	root, err := b.u32(0)
	if err != nil {
		return err
	}
	msg, err := b.table(root)
	if err != nil {
		return err
	}
	if _, _, err := b.scalar(msg, 0, 2); err != nil { // version
		return err
	}
	if _, _, err := b.scalar(msg, 3, 8); err != nil { // bodyLength
		return err
	}
	if err := b.keyValues(msg, 4); err != nil {
		return err
	}
	ht, err := b.u8(msg, 1)
	if err != nil {
		return err
	}
	h, ok, err := b.subTable(msg, 2)
	if err != nil {
		return err
	}
	if !ok {
		return fbErr("message has no header")
	}
	switch ht {
	case fbHeaderSchema:
		if _, _, err := b.scalar(h, 0, 2); err != nil { // endianness
			return err
		}
		fields, err := b.tables(h, 1)
		if err != nil {
			return err
		}
		for _, f := range fields {
			if err := b.field(f, 0); err != nil {
				return err
			}
		}
		if err := b.keyValues(h, 2); err != nil {
			return err
		}
		_, _, err = b.vector(h, 3, 8) // features
		return err
	case fbHeaderRecordBatch:
		if _, _, err := b.scalar(h, 0, 8); err != nil { // length
			return err
		}
		for i, size := range []int{1: 16, 2: 16} { // nodes, buffers: structs of 2 longs
			if size > 0 {
				if _, _, err := b.vector(h, i, size); err != nil {
					return err
				}
			}
		}
		if _, has, err := b.ref(h, 3); err != nil || has {
			if err == nil {
				err = fbErr("compressed record batch (want uncompressed)")
			}
			return err
		}
		_, _, err = b.vector(h, 4, 8) // variadicBufferCounts
		return err
	}
	return fbErr("message header type %d (want schema=1 or record batch=3)", ht)
}
