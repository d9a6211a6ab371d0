package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// IDX is one decoded IDX file (the format of MNIST and Fashion-MNIST):
// unsigned bytes with dimensions Dims, row-major.
type IDX struct {
	Dims []int
	Data []byte
}

// maxIDXBytes bounds what an IDX header may declare (1 GiB), so a corrupt
// header cannot make us allocate without limit.
const maxIDXBytes = 1 << 30

// ReadIDX reads an IDX file of unsigned bytes (type code 0x08), gzipped
// (by magic number) or not. Every error wraps ErrData and names the file.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: corrupt gzip: %v", ErrData, path, err)
		}
		defer gz.Close()
		r = gz
	}
	idx, err := decodeIDX(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	return idx, nil
}

// DecodeIDX decodes IDX bytes (not gzipped); errors wrap ErrData.
func DecodeIDX(b []byte) (*IDX, error) {
	idx, err := decodeIDX(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: idx: %v", ErrData, err)
	}
	return idx, nil
}

func decodeIDX(r io.Reader) (*IDX, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("short header: %v", err)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("bad magic (got=% x, want=00 00 08 NN)", hdr[:])
	}
	if hdr[2] != 0x08 {
		return nil, fmt.Errorf("unsupported element type (got=0x%02x, want=0x08 unsigned byte)", hdr[2])
	}
	nd := int(hdr[3])
	if nd < 1 || nd > 4 {
		return nil, fmt.Errorf("bad rank (got=%d, want=1..4)", nd)
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("short header: %v", err)
		}
		if d == 0 {
			return nil, fmt.Errorf("dimension %d is zero", i)
		}
		dims[i] = int(d)
		total *= int64(d)
		if total > maxIDXBytes {
			return nil, fmt.Errorf("declared size too large (got>%d bytes, want<=%d)", total, maxIDXBytes)
		}
	}
	// Read what is there (up to one byte past the declared size) rather
	// than allocating the declared size up front: a 16-byte file may
	// declare a gigabyte.
	var buf bytes.Buffer
	if n, ok := r.(interface{ Len() int }); ok {
		buf.Grow(int(min(int64(n.Len()), total+1)))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, total+1)); err != nil {
		return nil, fmt.Errorf("read data: %v", err)
	}
	switch n := int64(buf.Len()); {
	case n < total:
		return nil, fmt.Errorf("truncated data (got=%d bytes, want=%d)", n, total)
	case n > total:
		return nil, fmt.Errorf("trailing bytes after %d bytes of data", total)
	}
	return &IDX{Dims: dims, Data: buf.Bytes()}, nil
}

// EncodeIDX writes an IDX file of unsigned bytes.
func EncodeIDX(w io.Writer, idx *IDX) error {
	hdr := []byte{0, 0, 0x08, byte(len(idx.Dims))}
	total := 1
	for _, d := range idx.Dims {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
		total *= d
	}
	if total != len(idx.Data) {
		return fmt.Errorf("%w: idx: data length (got=%d, want=%d)", ErrData, len(idx.Data), total)
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(idx.Data)
	return err
}

// IDXImages is a classification dataset from an IDX image file (N, H, W)
// and an IDX label file (N), held in memory.
type IDXImages struct {
	Names      string // the image file's base name, for item names
	N, H, W    int
	Pixels     []byte
	Labels     []byte
	NumClasses int
}

// ReadIDXImages reads an (N,H,W) image file and an (N) label file and
// checks they agree (counts, labels < numClasses).
func ReadIDXImages(imagesPath, labelsPath string, numClasses int) (*IDXImages, error) {
	im, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(im.Dims) != 3 {
		return nil, fmt.Errorf("%w: %s: images rank (got=%d, want=3)", ErrData, imagesPath, len(im.Dims))
	}
	lb, err := ReadIDX(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(lb.Dims) != 1 {
		return nil, fmt.Errorf("%w: %s: labels rank (got=%d, want=1)", ErrData, labelsPath, len(lb.Dims))
	}
	if lb.Dims[0] != im.Dims[0] {
		return nil, fmt.Errorf("%w: %s: label count (got=%d, want=%d images in %s)", ErrData, labelsPath, lb.Dims[0], im.Dims[0], imagesPath)
	}
	for i, l := range lb.Data {
		if int(l) >= numClasses {
			return nil, fmt.Errorf("%w: %s: label %d out of range (got=%d, want<%d)", ErrData, labelsPath, i, l, numClasses)
		}
	}
	base := imagesPath
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return &IDXImages{Names: base, N: im.Dims[0], H: im.Dims[1], W: im.Dims[2], Pixels: im.Data, Labels: lb.Data, NumClasses: numClasses}, nil
}

// Len is the number of images.
func (d *IDXImages) Len() int { return d.N }

// Get returns image i as a one-channel item (the pixels alias the
// dataset's memory: treat them as read-only).
func (d *IDXImages) Get(i int) (Item, error) {
	if i < 0 || i >= d.N {
		return Item{}, fmt.Errorf("%w: %s: index %d out of range [0,%d)", ErrData, d.Names, i, d.N)
	}
	sz := d.H * d.W
	return Item{
		Name:     fmt.Sprintf("%s#%d", d.Names, i),
		Pixels:   d.Pixels[i*sz : (i+1)*sz : (i+1)*sz],
		Width:    d.W,
		Height:   d.H,
		Channels: 1,
		Label:    int(d.Labels[i]),
	}, nil
}
