package video

import (
	"fmt"
	"image"
	"time"

	"gocv.io/x/gocv"
)

// Frame is one decoded, sampled frame, owned by whoever received it.
type Frame struct {
	// Seq is the 0-based index of this frame among the frames the source
	// decoded successfully, counted BEFORE sampling: with EveryN=5 the
	// emitted seqs are 0, 5, 10, ... Damaged frames that fail to decode get
	// no seq. For live sources seq keeps counting across reconnects. Seqs
	// of one source are strictly increasing.
	Seq int64
	// Captured is the wall-clock time the frame was decoded.
	Captured time.Time
	// StreamTime is the frame's position in the stream (CAP_PROP_POS_MSEC,
	// or seq / declared fps where the backend reports none); 0 for stills.
	StreamTime time.Duration
	// OrigWidth, OrigHeight: the decoded frame's size before resizing.
	OrigWidth, OrigHeight int
	// Width, Height: the model size; Pixels is Height*Width*3 bytes of
	// uint8 BGR in HWC order, contiguous, row-major.
	Width, Height int
	Pixels        []byte
	// Orig, with Config.KeepOriginal: OrigHeight*OrigWidth*3 BGR bytes.
	// When no resize was needed, Pixels and Orig share one backing array.
	Orig []byte
}

// converter turns a decoded Mat into a Frame's pixels. It holds scratch Mats
// reused across frames; one converter belongs to one goroutine and must be
// closed.
type converter struct {
	w, h     int
	keepOrig bool
	bgr      gocv.Mat // 1/4-channel input converted to BGR
	resized  gocv.Mat
	area     areaResizer
}

func newConverter(cfg *Config) *converter {
	return &converter{w: cfg.Width, h: cfg.Height, keepOrig: cfg.KeepOriginal, bgr: gocv.NewMat(), resized: gocv.NewMat()}
}

func (c *converter) Close() {
	c.bgr.Close()
	c.resized.Close()
}

// checkMat validates a decoded Mat before any further OpenCV call: not empty,
// sane size, 8-bit with 1, 3 or 4 channels.
func checkMat(m *gocv.Mat) error {
	if m.Empty() {
		return fmt.Errorf("%w: empty frame", ErrDecode)
	}
	if m.Cols() < 1 || m.Rows() < 1 || m.Cols() > 1<<15 || m.Rows() > 1<<15 {
		return fmt.Errorf("%w: frame size (got=%dx%d)", ErrDecode, m.Cols(), m.Rows())
	}
	switch m.Type() {
	case gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC3, gocv.MatTypeCV8UC4:
		return nil
	}
	return fmt.Errorf("%w: frame type (got=%v, want 8-bit with 1, 3 or 4 channels)", ErrDecode, m.Type())
}

// fill sets f's size and pixel fields from m. m must pass checkMat.
func (c *converter) fill(m *gocv.Mat, f *Frame) error {
	if err := checkMat(m); err != nil {
		return err
	}
	src := m
	switch m.Channels() {
	case 1:
		gocv.CvtColor(*m, &c.bgr, gocv.ColorGrayToBGR)
		src = &c.bgr
	case 4:
		gocv.CvtColor(*m, &c.bgr, gocv.ColorBGRAToBGR)
		src = &c.bgr
	}
	f.OrigWidth, f.OrigHeight = src.Cols(), src.Rows()
	f.Width, f.Height = c.w, c.h
	if c.keepOrig {
		f.Orig = matBytes(src)
	}
	if src.Cols() == c.w && src.Rows() == c.h {
		if f.Orig != nil {
			f.Pixels = f.Orig
		} else {
			f.Pixels = matBytes(src)
		}
		return nil
	}
	shrink := c.w <= src.Cols() && c.h <= src.Rows()
	if shrink && src.IsContinuous() {
		// Area averaging (INTER_AREA), ours (area.go).
		b, err := src.DataPtrUint8()
		if err != nil {
			return fmt.Errorf("%w: frame pixels: %v", ErrDecode, err)
		}
		f.Pixels = make([]byte, c.w*c.h*3)
		return c.area.resize(b, src.Cols(), src.Rows(), src.Cols()*3, 3, f.Pixels, c.w, c.h)
	}
	interp := gocv.InterpolationLinear
	if shrink {
		interp = gocv.InterpolationArea // a non-continuous Mat
	}
	gocv.Resize(*src, &c.resized, image.Pt(c.w, c.h), 0, 0, interp)
	f.Pixels = matBytes(&c.resized)
	if len(f.Pixels) != c.w*c.h*3 {
		return fmt.Errorf("%w: resized frame (got=%d bytes, want=%d)", ErrDecode, len(f.Pixels), c.w*c.h*3)
	}
	return nil
}

// matBytes copies m's pixels into Go memory. ToBytes reads total*elemSize
// bytes from the data pointer, which is only right for a continuous Mat.
func matBytes(m *gocv.Mat) []byte {
	if m.IsContinuous() {
		return m.ToBytes()
	}
	cl := m.Clone()
	defer cl.Close()
	return cl.ToBytes()
}

// BGRToGrey converts interleaved BGR pixels to one grey channel, for models
// that take one (fashion, fashion-tiles), with OpenCV's COLOR_BGR2GRAY
// weights in its 15-bit fixed point: Y = 0.299 R + 0.587 G + 0.114 B,
// rounded.
func BGRToGrey(bgr []byte) []byte {
	out := make([]byte, len(bgr)/3)
	for i := range out {
		b, g, r := uint32(bgr[3*i]), uint32(bgr[3*i+1]), uint32(bgr[3*i+2])
		out[i] = byte((b*3735 + g*19235 + r*9798 + 1<<14) >> 15)
	}
	return out
}
