package video

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// Errors. Every error this package returns wraps one of these (or io.EOF,
// context.Canceled / context.DeadlineExceeded for the end of a stream).
var (
	ErrConfig        = errors.New("video: invalid config")
	ErrInvalidPath   = errors.New("video: invalid file")
	ErrInvalidURL    = errors.New("video: invalid url")
	ErrNoDevice      = errors.New("video: no such device")
	ErrOpen          = errors.New("video: cannot open source")
	ErrImageFormat   = errors.New("video: unsupported image format")
	ErrImageHeader   = errors.New("video: malformed image header")
	ErrImageTooLarge = errors.New("video: image exceeds limits")
	ErrTruncated     = errors.New("video: truncated input")
	ErrDecode        = errors.New("video: decode failed")
	ErrTooDamaged    = errors.New("video: too many damaged frames")
	ErrReconnects    = errors.New("video: reconnect limit reached")
	ErrClosed        = errors.New("video: source closed")
)

// ImageLimits bound what a still image may declare in its header. They are
// checked before any pixel is decoded (decompression bombs).
type ImageLimits struct {
	MaxBytes  int   // encoded size
	MaxWidth  int   // declared width
	MaxHeight int   // declared height
	MaxPixels int64 // declared width*height
}

// DefaultImageLimits: 32 MiB encoded, 16384 per side, 40 megapixels
// (a 40 MP BGR frame is 120 MB decoded).
func DefaultImageLimits() ImageLimits {
	return ImageLimits{MaxBytes: 32 << 20, MaxWidth: 16384, MaxHeight: 16384, MaxPixels: 40_000_000}
}

// Backoff is the reconnect schedule of live sources: the k-th consecutive
// failed attempt waits min(Max, Min*2^k) scaled by a random factor in
// [1-Jitter, 1].
type Backoff struct {
	Min    time.Duration
	Max    time.Duration
	Jitter float64 // in [0, 1)
}

// Config is what every source needs. Zero fields get defaults (setDefaults);
// Width and Height are required.
type Config struct {
	// Width, Height: the model input size every frame is resized to.
	Width, Height int
	// EveryN keeps every Nth decoded frame (seq 0, N, 2N, ...). 0 or 1: all.
	EveryN int
	// FPS keeps frames at this rate of stream time. Exclusive with EveryN > 1.
	FPS float64
	// KeepOriginal also copies the decoded frame at its original size.
	KeepOriginal bool
	// QueueLen is the capacity of the hand-off between the capture loop and
	// Next. Default 8 for files (lossless, blocks), 2 for live sources
	// (drop-oldest: small keeps latency low).
	QueueLen int
	// RetryReads: consecutive failed reads before a file ends (or a live
	// source reconnects). Default 4.
	RetryReads int
	// MaxDamaged: total damaged frames (failed reads before the declared end,
	// empty or malformed frames) a source tolerates; one more ends it with
	// ErrTooDamaged. Default 256.
	MaxDamaged int
	// Backoff of live sources. Default 100ms .. 10s, jitter 0.2.
	Backoff Backoff
	// MaxReconnects ends a live source with ErrReconnects after this many
	// reconnect attempts in a row without a frame. 0: unlimited.
	MaxReconnects int
	// API is the OpenCV capture backend. 0 (CAP_ANY) picks FFmpeg for
	// files and URLs and V4L2 for devices.
	API gocv.VideoCaptureAPI
	// Limits for still images, also applied to the frame size a video
	// stream declares when it is opened.
	Limits ImageLimits
	// Log gets open/reconnect/end events. The zero Logger discards them
	// (like zerolog.Nop()).
	Log zerolog.Logger
	// Now is the clock for Frame.Captured. Default time.Now.
	Now func() time.Time
}

const maxModelSide = 8192

func (c *Config) setDefaults(live bool) {
	if c.QueueLen == 0 {
		if live {
			c.QueueLen = 2
		} else {
			c.QueueLen = 8
		}
	}
	if c.RetryReads == 0 {
		c.RetryReads = 4
	}
	if c.MaxDamaged == 0 {
		c.MaxDamaged = 256
	}
	if c.Backoff == (Backoff{}) {
		c.Backoff = Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2}
	}
	if c.Limits == (ImageLimits{}) {
		c.Limits = DefaultImageLimits()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c *Config) Validate() error {
	switch {
	case c.Width < 1 || c.Height < 1 || c.Width > maxModelSide || c.Height > maxModelSide:
		return fmt.Errorf("%w: model size (got=%dx%d, want=1..%d per side)", ErrConfig, c.Width, c.Height, maxModelSide)
	case c.EveryN < 0:
		return fmt.Errorf("%w: every_n (got=%d, want>=0)", ErrConfig, c.EveryN)
	case math.IsNaN(c.FPS) || math.IsInf(c.FPS, 0) || c.FPS < 0 || c.FPS > 1000:
		return fmt.Errorf("%w: fps (got=%v, want 0..1000)", ErrConfig, c.FPS)
	case c.FPS > 0 && c.EveryN > 1:
		return fmt.Errorf("%w: fps and every_n are exclusive (got fps=%v every_n=%d)", ErrConfig, c.FPS, c.EveryN)
	case c.QueueLen < 1 || c.QueueLen > 1024:
		return fmt.Errorf("%w: queue_len (got=%d, want 1..1024)", ErrConfig, c.QueueLen)
	case c.RetryReads < 1:
		return fmt.Errorf("%w: retry_reads (got=%d, want>=1)", ErrConfig, c.RetryReads)
	case c.MaxDamaged < 0:
		return fmt.Errorf("%w: max_damaged (got=%d, want>=0)", ErrConfig, c.MaxDamaged)
	case c.Backoff.Min <= 0 || c.Backoff.Max < c.Backoff.Min:
		return fmt.Errorf("%w: backoff (got min=%v max=%v, want 0<min<=max)", ErrConfig, c.Backoff.Min, c.Backoff.Max)
	case !(c.Backoff.Jitter >= 0 && c.Backoff.Jitter < 1):
		return fmt.Errorf("%w: backoff jitter (got=%v, want [0,1))", ErrConfig, c.Backoff.Jitter)
	case c.MaxReconnects < 0:
		return fmt.Errorf("%w: max_reconnects (got=%d, want>=0)", ErrConfig, c.MaxReconnects)
	case c.Limits.MaxBytes < 1 || c.Limits.MaxWidth < 1 || c.Limits.MaxHeight < 1 || c.Limits.MaxPixels < 1:
		return fmt.Errorf("%w: image limits (got=%+v, want all > 0)", ErrConfig, c.Limits)
	}
	return nil
}

// delay returns the wait before reconnect attempt k (0-based) given a
// uniform random r in [0,1).
func (b Backoff) delay(k int, r float64) time.Duration {
	d := b.Min
	for i := 0; i < k && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	return time.Duration(float64(d) * (1 - b.Jitter*r))
}
