package video

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// Capture is a Source over an OpenCV VideoCapture: a video file, an
// RTSP/HTTP URL or a camera device. It owns one capture goroutine, started by
// the Open* function and joined by Close; that goroutine alone touches the
// VideoCapture and the scratch Mats, and closes them when it returns. Frames
// reach Next through a bounded ring: lossless (the capture loop blocks) for
// files, drop-oldest for URLs and devices.
type Capture struct {
	kind Kind
	name string // path, redacted URL or device; for logs and errors
	cfg  Config
	q    *ring[Frame]

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards st and closed
	st     Stats
	closed bool
}

var _ Source = (*Capture)(nil)

// opener opens the VideoCapture; it runs on the capture goroutine for live
// sources. It must close what it opened when it fails.
type opener func() (*gocv.VideoCapture, error)

// OpenFile validates path (an existing, regular, readable, non-empty file
// whose name has no '%', which OpenCV would read as an image-sequence
// pattern), opens it with OpenCV and starts the capture goroutine. The file
// is read losslessly: the capture loop waits for the consumer. ctx bounds the
// source's whole life (its end becomes the source's End).
func OpenFile(ctx context.Context, path string, cfg Config) (*Capture, error) {
	cfg.setDefaults(false)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	api := cfg.API
	if api == gocv.VideoCaptureAny {
		api = gocv.VideoCaptureFFmpeg
	}
	vc, err := gocv.VideoCaptureFileWithAPI(abs, api)
	if err != nil || !vc.IsOpened() {
		vc.Close()
		return nil, fmt.Errorf("%w: %s: not a video OpenCV can read (api=%d)", ErrOpen, abs, api)
	}
	if err := checkVideoSize(vc, cfg.Limits); err != nil {
		vc.Close()
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	c := newCapture(KindFile, abs, cfg)
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.finish(c.runFile(ctx, vc, api == gocv.VideoCaptureFFmpeg))
	}()
	return c, nil
}

// checkVideoSize applies the image limits to the frame size a stream
// declares, before the first frame is decoded. An unknown size (0) passes;
// each decoded frame is checked again (checkMat).
func checkVideoSize(vc *gocv.VideoCapture, lim ImageLimits) error {
	w := sane(vc.Get(gocv.VideoCaptureFrameWidth), 1<<31)
	h := sane(vc.Get(gocv.VideoCaptureFrameHeight), 1<<31)
	if w > float64(lim.MaxWidth) || h > float64(lim.MaxHeight) || w*h > float64(lim.MaxPixels) {
		return fmt.Errorf("%w: video frames %vx%v (want<=%dx%d and <=%d pixels)",
			ErrImageTooLarge, w, h, lim.MaxWidth, lim.MaxHeight, lim.MaxPixels)
	}
	return nil
}

// checkFile validates a video file before OpenCV sees it and returns its
// absolute path (so FFmpeg never reads "name:..." as a protocol).
func checkFile(path string) (string, error) {
	if path == "" || strings.ContainsAny(path, "%\x00") {
		return "", fmt.Errorf("%w: path %q (want non-empty, no '%%')", ErrInvalidPath, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file (mode=%v)", ErrInvalidPath, abs, fi.Mode())
	}
	if fi.Size() == 0 {
		return "", fmt.Errorf("%w: %s is empty", ErrInvalidPath, abs)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	f.Close()
	return abs, nil
}

// allowedSchemes are the URL schemes OpenURL accepts.
var allowedSchemes = map[string]bool{"rtsp": true, "rtsps": true, "http": true, "https": true}

// ParseURL validates a live-stream URL: it must parse, be absolute, have a
// scheme among rtsp, rtsps, http, https and a host.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	s := strings.ToLower(u.Scheme)
	if !allowedSchemes[s] {
		return nil, fmt.Errorf("%w: scheme (got=%q, want rtsp, rtsps, http or https)", ErrInvalidURL, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host in %q", ErrInvalidURL, u.Redacted())
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, fmt.Errorf("%w: whitespace in %q", ErrInvalidURL, u.Redacted())
	}
	u.Scheme = s
	return u, nil
}

// OpenURL validates raw (ParseURL) and starts the capture goroutine, which
// opens the stream and reopens it with exponential backoff and jitter
// (cfg.Backoff) whenever it fails to open or stops delivering frames,
// counting Stats.Reconnects. It returns before the first connection.
//
// Close and ctx stop the loop between OpenCV calls; a call in progress
// (FFmpeg open or read) cannot be interrupted and is bounded by FFmpeg's own
// timeouts.
func OpenURL(ctx context.Context, raw string, cfg Config) (*Capture, error) {
	cfg.setDefaults(true)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	api := cfg.API
	if api == gocv.VideoCaptureAny {
		api = gocv.VideoCaptureFFmpeg
	}
	target, name := u.String(), u.Redacted()
	open := func() (*gocv.VideoCapture, error) {
		vc, err := gocv.VideoCaptureFileWithAPI(target, api)
		if err != nil || !vc.IsOpened() {
			vc.Close()
			return nil, fmt.Errorf("%w: %s (api=%d)", ErrOpen, name, api)
		}
		if err := checkVideoSize(vc, cfg.Limits); err != nil {
			vc.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return vc, nil
	}
	return startLive(ctx, KindURL, name, cfg, open), nil
}

// DevicePath is the Linux device node of camera index i.
func DevicePath(i int) string { return fmt.Sprintf("/dev/video%d", i) }

// OpenDevice checks that camera index (0..63) has a character device node
// (DevicePath) and starts the capture goroutine, which opens the camera and
// reopens it with backoff like OpenURL.
func OpenDevice(ctx context.Context, index int, cfg Config) (*Capture, error) {
	cfg.setDefaults(true)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if index < 0 || index > 63 {
		return nil, fmt.Errorf("%w: index (got=%d, want 0..63)", ErrNoDevice, index)
	}
	fi, err := os.Stat(DevicePath(index))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDevice, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("%w: %s is not a character device", ErrNoDevice, DevicePath(index))
	}
	api := cfg.API
	if api == gocv.VideoCaptureAny {
		api = gocv.VideoCaptureV4L2
	}
	open := func() (*gocv.VideoCapture, error) {
		vc, err := gocv.VideoCaptureDeviceWithAPI(index, api)
		if err != nil || !vc.IsOpened() {
			vc.Close()
			return nil, fmt.Errorf("%w: %s (api=%d)", ErrOpen, DevicePath(index), api)
		}
		if err := checkVideoSize(vc, cfg.Limits); err != nil {
			vc.Close()
			return nil, fmt.Errorf("%s: %w", DevicePath(index), err)
		}
		return vc, nil
	}
	return startLive(ctx, KindDevice, DevicePath(index), cfg, open), nil
}

func newCapture(kind Kind, name string, cfg Config) *Capture {
	c := &Capture{kind: kind, name: name, cfg: cfg, q: newRing[Frame](cfg.QueueLen, kind.Live())}
	c.st = Stats{Kind: kind, Started: cfg.Now()}
	return c
}

func startLive(ctx context.Context, kind Kind, name string, cfg Config, open opener) *Capture {
	c := newCapture(kind, name, cfg)
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.finish(c.runLive(ctx, open))
	}()
	return c
}

// Next returns the next frame (see Source).
func (c *Capture) Next(ctx context.Context) (Frame, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return Frame{}, ErrClosed
	}
	return c.q.Pop(ctx)
}

// Stats returns a snapshot of the counters.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Dropped = int64(c.q.Dropped())
	return s
}

// Close stops the capture goroutine, waits for it (it releases the
// VideoCapture and every Mat) and makes Next return ErrClosed. Idempotent.
func (c *Capture) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// finish records why the loop ended and closes the ring with it.
func (c *Capture) finish(err error) {
	c.mu.Lock()
	if c.closed && errors.Is(err, context.Canceled) {
		err = ErrClosed
	}
	c.st.End = err
	c.mu.Unlock()
	c.cfg.Log.Debug().Str("input", c.name).Str("kind", c.kind.String()).Err(err).Msg("video source ended")
	c.q.close(err)
}

func (c *Capture) update(fn func(s *Stats)) {
	c.mu.Lock()
	fn(&c.st)
	c.mu.Unlock()
}

// streamClock turns CAP_PROP_POS_MSEC readings into a strictly increasing
// stream time. A reading that is not finite, negative or not after the
// previous frame is replaced by previous + one frame period (1/declared fps,
// or 40 ms where the fps is unknown). After a reconnect the new segment
// starts one period after the last frame.
type streamClock struct {
	fps       float64
	base      time.Duration
	prev      time.Duration
	haveFrame bool
}

func (s *streamClock) period() time.Duration {
	if s.fps > 0 && s.fps <= 1000 {
		return time.Duration(float64(time.Second) / s.fps)
	}
	return 40 * time.Millisecond
}

func (s *streamClock) at(ms float64) time.Duration {
	var t time.Duration
	ok := !math.IsNaN(ms) && !math.IsInf(ms, 0) && ms >= 0 && ms < float64(math.MaxInt64/int64(time.Millisecond)/2)
	if ok {
		t = s.base + time.Duration(ms*float64(time.Millisecond))
		ok = !s.haveFrame || t > s.prev
	}
	if !ok {
		t = s.prev + s.period()
		if !s.haveFrame {
			t = s.base
		}
	}
	s.prev, s.haveFrame = t, true
	return t
}

// segment starts a new segment of the stream (after a reconnect).
func (s *streamClock) segment(fps float64) {
	if s.haveFrame {
		s.base = s.prev + s.period()
	}
	s.fps = fps
}

func sane(v, limit float64) float64 {
	if math.IsNaN(v) || v < 0 || v > limit {
		return 0
	}
	return v
}

// grab decodes the next frame without converting it to BGR (the cheaper half
// of Read) and reports whether a frame was decoded. gocv's Grab returns no
// status, so success is the FFmpeg backend's frame position advancing; other
// backends may not report a position, so only files on FFmpeg use it.
func grab(vc *gocv.VideoCapture) bool {
	before := vc.Get(gocv.VideoCapturePosFrames)
	vc.Grab(1)
	return vc.Get(gocv.VideoCapturePosFrames) > before
}

// runFile reads a file to its end. Returns io.EOF, ErrTruncated+io.EOF,
// ErrTooDamaged or ctx.Err(). With grabSkip, frames that EveryN sampling
// drops are only grabbed (decoded, not converted): about a third less work
// per dropped frame on vtest.avi.
func (c *Capture) runFile(ctx context.Context, vc *gocv.VideoCapture, grabSkip bool) error {
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	conv := newConverter(&c.cfg)
	defer conv.Close()

	declared := int64(sane(vc.Get(gocv.VideoCaptureFrameCount), 1<<40))
	clock := streamClock{fps: sane(vc.Get(gocv.VideoCaptureFPS), 1000)}
	c.update(func(s *Stats) { s.Declared = declared })
	c.cfg.Log.Debug().Str("input", c.name).Int64("declared_frames", declared).Float64("fps", clock.fps).Msg("video file opened")
	sampler := Sampler{EveryN: c.cfg.EveryN, FPS: c.cfg.FPS}
	var seq, damaged int64
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		grabOnly := grabSkip && sampler.Skips(seq)
		var ok bool
		if grabOnly {
			ok = grab(vc)
		} else {
			ok = vc.Read(&m)
		}
		if !ok {
			if declared == 0 || seq >= declared {
				return io.EOF
			}
			// Before the declared end: a damaged frame. Retry a few times
			// (FFmpeg skips undecodable packets on the next read), then end.
			failures++
			damaged++
			pos := int64(sane(vc.Get(gocv.VideoCapturePosFrames), 1<<40))
			c.update(func(s *Stats) {
				s.Damaged = damaged
				s.LastErr = fmt.Errorf("%w: read failed at frame %d of %d", ErrDecode, pos, declared)
			})
			if damaged > int64(c.cfg.MaxDamaged) {
				return fmt.Errorf("%w (got=%d, max=%d) in %s", ErrTooDamaged, damaged, c.cfg.MaxDamaged, c.name)
			}
			if failures > c.cfg.RetryReads {
				break
			}
			continue
		}
		now := c.cfg.Now()
		if grabOnly {
			// Nothing to check or convert: sampling drops this frame.
		} else if err := checkMat(&m); err != nil {
			failures++
			damaged++
			c.update(func(s *Stats) { s.Damaged = damaged; s.LastErr = err })
			if damaged > int64(c.cfg.MaxDamaged) {
				return fmt.Errorf("%w (got=%d, max=%d) in %s: last: %w", ErrTooDamaged, damaged, c.cfg.MaxDamaged, c.name, err)
			}
			continue
		}
		failures = 0
		t := clock.at(vc.Get(gocv.VideoCapturePosMsec))
		s := seq
		seq++
		keep := sampler.Keep(s, t)
		c.update(func(st *Stats) {
			st.Decoded = seq
			if keep {
				st.Emitted++
			}
		})
		if !keep {
			continue
		}
		f := Frame{Seq: s, Captured: now, StreamTime: t}
		if err := conv.fill(&m, &f); err != nil {
			return err // checkMat passed, so this is a bug, not damage
		}
		if _, err := c.q.Push(ctx, f); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %w: %s decoded %d of %d declared frames (%d damaged reads)",
		ErrTruncated, io.EOF, c.name, seq, declared, damaged)
}

// runLive opens, reads and reopens a live stream until ctx ends or the
// reconnect limit is reached.
func (c *Capture) runLive(ctx context.Context, open opener) error {
	m := gocv.NewMat()
	defer m.Close()
	conv := newConverter(&c.cfg)
	defer conv.Close()
	sampler := Sampler{EveryN: c.cfg.EveryN, FPS: c.cfg.FPS}
	var clock streamClock
	var seq int64
	attempt := 0 // consecutive attempts without a frame
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !first {
			if c.cfg.MaxReconnects > 0 && attempt > c.cfg.MaxReconnects {
				c.mu.Lock()
				last := c.st.LastErr
				c.mu.Unlock()
				return fmt.Errorf("%w (max=%d) for %s: last: %w", ErrReconnects, c.cfg.MaxReconnects, c.name, last)
			}
			d := c.cfg.Backoff.delay(attempt-1, rand.Float64())
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			c.update(func(s *Stats) { s.Reconnects++ })
		}
		attempt++
		vc, err := open()
		if err != nil {
			c.update(func(s *Stats) { s.LastErr = err })
			c.cfg.Log.Debug().Str("input", c.name).Int("attempt", attempt).Err(err).Msg("video open failed")
			continue
		}
		clock.segment(sane(vc.Get(gocv.VideoCaptureFPS), 1000))
		c.cfg.Log.Info().Str("input", c.name).Str("kind", c.kind.String()).Int("attempt", attempt).Float64("fps", clock.fps).Msg("video stream connected")
		err = c.readLive(ctx, vc, &m, conv, &sampler, &clock, &seq, &attempt)
		vc.Close()
		if err != nil {
			return err
		}
	}
}

// readLive reads frames from one connection until it fails (returns nil: the
// caller reconnects) or ctx ends (returns ctx.Err()).
func (c *Capture) readLive(ctx context.Context, vc *gocv.VideoCapture, m *gocv.Mat, conv *converter,
	sampler *Sampler, clock *streamClock, seq *int64, attempt *int) error {
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !vc.Read(m) {
			failures++
			if failures > c.cfg.RetryReads {
				c.update(func(s *Stats) { s.LastErr = fmt.Errorf("%w: %s stopped delivering frames", ErrOpen, c.name) })
				return nil
			}
			continue
		}
		now := c.cfg.Now()
		if err := checkMat(m); err != nil {
			c.update(func(s *Stats) { s.Damaged++; s.LastErr = err })
			failures++
			if failures > c.cfg.RetryReads {
				return nil
			}
			continue
		}
		failures = 0
		*attempt = 0
		t := clock.at(vc.Get(gocv.VideoCapturePosMsec))
		s := *seq
		*seq++
		keep := sampler.Keep(s, t)
		c.update(func(st *Stats) {
			st.Decoded = *seq
			if keep {
				st.Emitted++
			}
		})
		if !keep {
			continue
		}
		f := Frame{Seq: s, Captured: now, StreamTime: t}
		if err := conv.fill(m, &f); err != nil {
			return err
		}
		if _, err := c.q.Push(ctx, f); err != nil {
			return err
		}
	}
}
