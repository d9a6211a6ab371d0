package video

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"gocv.io/x/gocv"
)

// ImageFormat is a still-image container this package accepts.
type ImageFormat int

const (
	FormatUnknown ImageFormat = iota
	FormatJPEG
	FormatPNG
)

func (f ImageFormat) String() string {
	switch f {
	case FormatJPEG:
		return "jpeg"
	case FormatPNG:
		return "png"
	}
	return "unknown"
}

// ImageInfo is what an image's header declares.
type ImageInfo struct {
	Format        ImageFormat
	Width, Height int
	Channels      int // declared components: 1..4
}

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegEOI   = []byte{0xFF, 0xD9}
)

// SniffImage identifies JPEG or PNG bytes by their magic numbers, parses the
// header itself (no OpenCV) and checks the declared size against lim. It also
// walks the structure far enough to reject truncated files: a JPEG must have a
// frame header, a scan and an end-of-image marker after the scan; a PNG must
// have a valid IHDR (CRC checked), at least one IDAT and an IEND, every chunk
// inside the data. It never panics on any input (see FuzzSniffImage).
func SniffImage(b []byte, lim ImageLimits) (ImageInfo, error) {
	if len(b) > lim.MaxBytes {
		return ImageInfo{}, fmt.Errorf("%w: encoded size (got=%d, want<=%d)", ErrImageTooLarge, len(b), lim.MaxBytes)
	}
	var info ImageInfo
	var err error
	switch {
	case bytes.HasPrefix(b, jpegMagic):
		info, err = sniffJPEG(b)
	case bytes.HasPrefix(b, pngMagic):
		info, err = sniffPNG(b)
	default:
		n := min(len(b), 8)
		return ImageInfo{}, fmt.Errorf("%w: magic (got=% x, want jpeg or png)", ErrImageFormat, b[:n])
	}
	if err != nil {
		return ImageInfo{}, err
	}
	if info.Width > lim.MaxWidth || info.Height > lim.MaxHeight ||
		int64(info.Width)*int64(info.Height) > lim.MaxPixels {
		return ImageInfo{}, fmt.Errorf("%w: %s declares %dx%d (want<=%dx%d and <=%d pixels)",
			ErrImageTooLarge, info.Format, info.Width, info.Height, lim.MaxWidth, lim.MaxHeight, lim.MaxPixels)
	}
	return info, nil
}

func isSOF(m byte) bool {
	// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}

func sniffJPEG(b []byte) (ImageInfo, error) {
	info := ImageInfo{Format: FormatJPEG}
	sof := false
	i := 2 // after SOI
	for {
		if i >= len(b) {
			return info, fmt.Errorf("%w: jpeg ends before the first scan", ErrTruncated)
		}
		if b[i] != 0xFF {
			return info, fmt.Errorf("%w: jpeg marker expected at offset %d (got=%#x)", ErrImageHeader, i, b[i])
		}
		for i < len(b) && b[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(b) {
			return info, fmt.Errorf("%w: jpeg ends in a marker", ErrTruncated)
		}
		m := b[i]
		i++
		switch {
		case m >= 0xD0 && m <= 0xD7, m == 0x01: // standalone markers
			continue
		case m == 0xD8, m == 0xD9, m == 0x00:
			return info, fmt.Errorf("%w: jpeg marker %#x before the first scan", ErrImageHeader, m)
		}
		if i+2 > len(b) {
			return info, fmt.Errorf("%w: jpeg segment length", ErrTruncated)
		}
		l := int(binary.BigEndian.Uint16(b[i:]))
		if l < 2 {
			return info, fmt.Errorf("%w: jpeg segment %#x length (got=%d, want>=2)", ErrImageHeader, m, l)
		}
		if i+l > len(b) {
			return info, fmt.Errorf("%w: jpeg segment %#x (need %d bytes, have %d)", ErrTruncated, m, l, len(b)-i)
		}
		seg := b[i : i+l]
		i += l
		if isSOF(m) {
			if sof {
				return info, fmt.Errorf("%w: jpeg has two frame headers", ErrImageHeader)
			}
			if l < 8 {
				return info, fmt.Errorf("%w: jpeg frame header length (got=%d, want>=8)", ErrImageHeader, l)
			}
			prec := seg[2]
			info.Height = int(binary.BigEndian.Uint16(seg[3:]))
			info.Width = int(binary.BigEndian.Uint16(seg[5:]))
			info.Channels = int(seg[7])
			switch {
			case prec != 8:
				return info, fmt.Errorf("%w: jpeg precision (got=%d, want=8)", ErrImageFormat, prec)
			case info.Width == 0 || info.Height == 0:
				return info, fmt.Errorf("%w: jpeg size (got=%dx%d, want>0)", ErrImageHeader, info.Width, info.Height)
			case info.Channels != 1 && info.Channels != 3 && info.Channels != 4:
				return info, fmt.Errorf("%w: jpeg components (got=%d, want 1, 3 or 4)", ErrImageFormat, info.Channels)
			case l < 8+3*info.Channels:
				return info, fmt.Errorf("%w: jpeg frame header length (got=%d, want>=%d)", ErrImageHeader, l, 8+3*info.Channels)
			}
			sof = true
			continue
		}
		if m == 0xDA { // start of scan: entropy-coded data follows
			if !sof {
				return info, fmt.Errorf("%w: jpeg scan before frame header", ErrImageHeader)
			}
			// Markers inside entropy-coded data are FF00 (stuffing) or
			// RSTn, so an FFD9 after the first scan header is the EOI.
			if !bytes.Contains(b[i:], jpegEOI) {
				return info, fmt.Errorf("%w: jpeg has no end-of-image marker", ErrTruncated)
			}
			return info, nil
		}
	}
}

func sniffPNG(b []byte) (ImageInfo, error) {
	info := ImageInfo{Format: FormatPNG}
	const ihdrEnd = 8 + 8 + 13 + 4
	if len(b) < ihdrEnd {
		return info, fmt.Errorf("%w: png shorter than its header (got=%d bytes, want>=%d)", ErrTruncated, len(b), ihdrEnd)
	}
	if binary.BigEndian.Uint32(b[8:]) != 13 || string(b[12:16]) != "IHDR" {
		return info, fmt.Errorf("%w: png first chunk (got=%q len=%d, want IHDR len=13)", ErrImageHeader, b[12:16], binary.BigEndian.Uint32(b[8:]))
	}
	h := b[16:29]
	if crc32.ChecksumIEEE(b[12:29]) != binary.BigEndian.Uint32(b[29:]) {
		return info, fmt.Errorf("%w: png IHDR crc mismatch", ErrImageHeader)
	}
	w, ht := binary.BigEndian.Uint32(h[0:]), binary.BigEndian.Uint32(h[4:])
	if w == 0 || ht == 0 || w > 1<<31-1 || ht > 1<<31-1 {
		return info, fmt.Errorf("%w: png size (got=%dx%d)", ErrImageHeader, w, ht)
	}
	info.Width, info.Height = int(w), int(ht)
	depth, ctype := h[8], h[9]
	okDepth := false
	switch ctype {
	case 0:
		info.Channels = 1
		okDepth = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case 2:
		info.Channels = 3
		okDepth = depth == 8 || depth == 16
	case 3:
		info.Channels = 3
		okDepth = depth == 1 || depth == 2 || depth == 4 || depth == 8
	case 4:
		info.Channels = 2
		okDepth = depth == 8 || depth == 16
	case 6:
		info.Channels = 4
		okDepth = depth == 8 || depth == 16
	}
	if !okDepth {
		return info, fmt.Errorf("%w: png color type %d with bit depth %d", ErrImageHeader, ctype, depth)
	}
	if h[10] != 0 || h[11] != 0 || h[12] > 1 {
		return info, fmt.Errorf("%w: png compression/filter/interlace (got=%d/%d/%d)", ErrImageHeader, h[10], h[11], h[12])
	}
	// Walk the chunks to IEND; every chunk must lie inside the data.
	idat := false
	for i := ihdrEnd; ; {
		if i+8 > len(b) {
			return info, fmt.Errorf("%w: png ends before IEND", ErrTruncated)
		}
		l := binary.BigEndian.Uint32(b[i:])
		typ := string(b[i+4 : i+8])
		if l > 1<<31-1 {
			return info, fmt.Errorf("%w: png chunk %q length (got=%d)", ErrImageHeader, typ, l)
		}
		end := i + 12 + int(l)
		if end > len(b) || end < i {
			return info, fmt.Errorf("%w: png chunk %q (need %d bytes, have %d)", ErrTruncated, typ, 12+int(l), len(b)-i)
		}
		switch typ {
		case "IHDR":
			return info, fmt.Errorf("%w: png has two IHDR chunks", ErrImageHeader)
		case "IDAT":
			idat = true
		case "IEND":
			if !idat {
				return info, fmt.Errorf("%w: png has no IDAT", ErrImageHeader)
			}
			return info, nil
		}
		i = end
	}
}

// DecodeImage validates JPEG/PNG bytes (SniffImage with cfg.Limits), decodes
// them with OpenCV and resizes to cfg.Width x cfg.Height. The returned frame
// has Seq 0 and Captured = cfg.Now(). cfg gets defaults like a source's.
func DecodeImage(b []byte, cfg Config) (Frame, error) {
	cfg.setDefaults(false)
	if err := cfg.Validate(); err != nil {
		return Frame{}, err
	}
	conv := newConverter(&cfg)
	defer conv.Close()
	return decodeImage(b, &cfg, conv)
}

func decodeImage(b []byte, cfg *Config, conv *converter) (Frame, error) {
	info, err := SniffImage(b, cfg.Limits)
	if err != nil {
		return Frame{}, err
	}
	m, err := gocv.IMDecode(b, gocv.IMReadColor)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %s: %w", ErrDecode, info.Format, err)
	}
	defer m.Close()
	if m.Empty() {
		return Frame{}, fmt.Errorf("%w: %s %dx%d: decoder returned no pixels", ErrDecode, info.Format, info.Width, info.Height)
	}
	// EXIF orientation may rotate a JPEG by 90 degrees.
	if !(m.Cols() == info.Width && m.Rows() == info.Height) && !(m.Cols() == info.Height && m.Rows() == info.Width) {
		return Frame{}, fmt.Errorf("%w: decoded size (got=%dx%d, want=%dx%d as declared)", ErrDecode, m.Cols(), m.Rows(), info.Width, info.Height)
	}
	f := Frame{Captured: cfg.Now()}
	if err := conv.fill(&m, &f); err != nil {
		return Frame{}, fmt.Errorf("%s: %w", info.Format, err)
	}
	return f, nil
}

// Images is a Source over still images held in memory. Next decodes them in
// order, on the caller's goroutine (no goroutine of its own); an image that
// fails validation or decoding is skipped and counted in Stats.Damaged (the
// last such error is in Stats.LastErr). Seq counts the images decoded
// successfully. Sampling (EveryN/FPS) does not apply to stills. After the
// last image Next returns io.EOF.
type Images struct {
	cfg  Config
	mu   sync.Mutex // serialises Next/Close/Stats
	imgs [][]byte
	conv *converter
	st   Stats
}

var _ Source = (*Images)(nil)

// NewImages returns a source over imgs (not copied; do not modify them).
func NewImages(cfg Config, imgs ...[]byte) (*Images, error) {
	cfg.setDefaults(false)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Images{cfg: cfg, imgs: imgs, conv: newConverter(&cfg), st: Stats{Kind: KindImages}}, nil
}

// Next returns the next image that decodes.
func (s *Images) Next(ctx context.Context) (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.st.End != nil {
			return Frame{}, s.st.End
		}
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		if len(s.imgs) == 0 {
			s.end(io.EOF)
			continue
		}
		b := s.imgs[0]
		s.imgs[0] = nil
		s.imgs = s.imgs[1:]
		f, err := decodeImage(b, &s.cfg, s.conv)
		if err != nil {
			s.st.Damaged++
			s.st.LastErr = err
			if s.st.Damaged > int64(s.cfg.MaxDamaged) {
				s.end(fmt.Errorf("%w (got=%d, max=%d): last: %w", ErrTooDamaged, s.st.Damaged, s.cfg.MaxDamaged, err))
			}
			continue
		}
		f.Seq = s.st.Decoded
		s.st.Decoded++
		s.st.Emitted++
		return f, nil
	}
}

func (s *Images) end(err error) {
	s.st.End = err
	s.imgs = nil
	if s.conv != nil {
		s.conv.Close()
		s.conv = nil
	}
}

// Stats returns a snapshot of the counters.
func (s *Images) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Close releases the source; Next then returns ErrClosed. Idempotent.
func (s *Images) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.End == nil {
		s.end(ErrClosed)
	}
	return nil
}
