package video

import (
	"context"
	"errors"
	"image"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// drain reads a source to its end and returns the frames' seqs and the end error.
func drain(t *testing.T, s Source) ([]int64, []Frame, error) {
	t.Helper()
	var seqs []int64
	var frames []Frame
	for {
		f, err := s.Next(context.Background())
		if err != nil {
			return seqs, frames, err
		}
		seqs = append(seqs, f.Seq)
		if len(frames) < 2 {
			frames = append(frames, f)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, live := range []bool{false, true} {
		got := Config{Width: 224, Height: 224}
		got.setDefaults(live)
		got.Now = nil // funcs do not compare
		want := Config{
			Width: 224, Height: 224,
			QueueLen:   8,
			RetryReads: 4,
			MaxDamaged: 256,
			Backoff:    Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2},
			Limits:     ImageLimits{MaxBytes: 32 << 20, MaxWidth: 16384, MaxHeight: 16384, MaxPixels: 40_000_000},
			Log:        zerolog.Logger{},
		}
		if live {
			want.QueueLen = 2
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("live=%v defaults:\n got %+v\nwant %+v", live, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{},
		{Width: 224, Height: 0},
		{Width: 224, Height: 224, EveryN: -1},
		{Width: 224, Height: 224, FPS: -1},
		{Width: 224, Height: 224, FPS: 2, EveryN: 5},
		{Width: 224, Height: 224, QueueLen: 5000},
		{Width: 224, Height: 224, Backoff: Backoff{Min: time.Second, Max: time.Millisecond}},
		{Width: 224, Height: 224, Backoff: Backoff{Min: 1, Max: 2, Jitter: 1}},
		{Width: 224, Height: 224, MaxReconnects: -1},
	}
	for i, c := range bad {
		c.setDefaults(false)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d %+v: got %v, want ErrConfig", i, c, err)
		}
	}
	if _, err := OpenFile(context.Background(), "x.avi", Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("OpenFile with zero config: got %v, want ErrConfig", err)
	}
}

// vtest.avi: 795 frames decode; every 5th gives exactly 159 frames with
// seqs 0, 5, ..., 790; pixels equal a bare gocv read + resize.
func TestFileVtestEvery5th(t *testing.T) {
	p := dataFile(t, "vtest.avi")
	cfg := testConfig(224, 224)
	cfg.EveryN = 5
	src, err := OpenFile(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	seqs, frames, end := drain(t, src)
	if !errors.Is(end, io.EOF) || errors.Is(end, ErrTruncated) {
		t.Fatalf("end: got %v, want plain io.EOF", end)
	}
	if len(seqs) != 159 {
		t.Fatalf("frames: got %d, want 159", len(seqs))
	}
	for i, s := range seqs {
		if s != int64(5*i) {
			t.Fatalf("seq[%d]: got %d, want %d", i, s, 5*i)
		}
	}
	st := src.Stats()
	if st.Decoded != 795 || st.Emitted != 159 || st.Declared != 795 || st.Damaged != 0 || st.Dropped != 0 {
		t.Fatalf("stats: %+v", st)
	}
	f := frames[1]
	if f.OrigWidth != 768 || f.OrigHeight != 576 || f.Width != 224 || f.Height != 224 || len(f.Pixels) != 224*224*3 {
		t.Fatalf("frame 5 sizes: %+v", f)
	}
	if f.StreamTime != 500*time.Millisecond {
		t.Fatalf("frame 5 stream time: got %v, want 500ms (10 fps)", f.StreamTime)
	}

	// The same frame through plain gocv.
	vc, err := gocv.VideoCaptureFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m, r := gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer r.Close()
	for range 6 {
		if !vc.Read(&m) {
			t.Fatal("bare read failed")
		}
	}
	gocv.Resize(m, &r, image.Pt(224, 224), 0, 0, gocv.InterpolationArea)
	matchesArea(t, "frame 5 against gocv Read + Resize(INTER_AREA)", f.Pixels, r.ToBytes(), 0.005)
}

// FPS sampling of a file follows the stream's timestamps and is deterministic:
// vtest.avi is 10 fps, so 2 fps is every 5th frame, and 3 fps keeps exactly
// the seqs the pure Sampler picks for timestamps seq*100ms.
func TestFileFPSSamplingDeterministic(t *testing.T) {
	p := dataFile(t, "vtest.avi")
	run := func(fps float64) []int64 {
		cfg := testConfig(32, 32)
		cfg.FPS = fps
		src, err := OpenFile(context.Background(), p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		seqs, _, end := drain(t, src)
		if !errors.Is(end, io.EOF) {
			t.Fatalf("fps=%v end: %v", fps, end)
		}
		return seqs
	}
	two := run(2)
	if len(two) != 159 || two[1] != 5 || two[158] != 790 {
		t.Fatalf("2 fps: got %d frames, want 159 at seqs 0,5,..,790", len(two))
	}
	three := run(3)
	want := keptSeqs(Sampler{FPS: 3}, 795, func(i int) time.Duration { return time.Duration(i) * 100 * time.Millisecond })
	if !slices.Equal(three, want) {
		t.Fatalf("3 fps: got %d frames %v..., want %d %v...", len(three), three[:5], len(want), want[:5])
	}
	if testing.Short() {
		return
	}
	if again := run(3); !slices.Equal(again, three) {
		t.Fatal("3 fps: second run differs")
	}
}

func TestFileMegamind(t *testing.T) {
	for _, name := range []string{"Megamind.avi", "Megamind_bugy.avi"} {
		t.Run(name, func(t *testing.T) {
			src, err := OpenFile(context.Background(), dataFile(t, name), testConfig(64, 64))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			seqs, frames, end := drain(t, src)
			st := src.Stats()
			t.Logf("%s: decoded=%d declared=%d damaged=%d end=%v", name, st.Decoded, st.Declared, st.Damaged, end)
			if !errors.Is(end, io.EOF) {
				t.Fatalf("end: got %v, want io.EOF", end)
			}
			if int64(len(seqs)) != st.Decoded || st.Decoded != 270 {
				t.Fatalf("got %d frames, decoded %d, want 270", len(seqs), st.Decoded)
			}
			if frames[0].OrigWidth != 720 || frames[0].OrigHeight != 528 {
				t.Fatalf("size: got %dx%d, want 720x528", frames[0].OrigWidth, frames[0].OrigHeight)
			}
		})
	}
}

// tree.avi declares 444 frames; 68 decode. The source must not crash, must
// deliver the 68 and end with ErrTruncated (which also matches io.EOF),
// counting the damaged reads.
func TestFileTreeDamaged(t *testing.T) {
	src, err := OpenFile(context.Background(), dataFile(t, "tree.avi"), testConfig(640, 480))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	seqs, frames, end := drain(t, src)
	if !errors.Is(end, ErrTruncated) || !errors.Is(end, io.EOF) {
		t.Fatalf("end: got %v, want ErrTruncated and io.EOF", end)
	}
	st := src.Stats()
	if len(seqs) != 68 || st.Decoded != 68 || st.Declared != 444 {
		t.Fatalf("got %d frames, stats %+v; want 68 of 444", len(seqs), st)
	}
	if st.Damaged != int64(src.cfg.RetryReads)+1 || !errors.Is(st.LastErr, ErrDecode) || !errors.Is(st.End, ErrTruncated) {
		t.Fatalf("damage accounting: %+v", st)
	}
	if frames[0].OrigWidth != 320 || len(frames[0].Pixels) != 640*480*3 {
		t.Fatalf("upscaled frame: %dx%d, %d bytes", frames[0].OrigWidth, frames[0].OrigHeight, len(frames[0].Pixels))
	}
	// Every 5th (dropped frames only grabbed): the same 68 decode.
	cfg5 := testConfig(32, 32)
	cfg5.EveryN = 5
	src5, err := OpenFile(context.Background(), dataFile(t, "tree.avi"), cfg5)
	if err != nil {
		t.Fatal(err)
	}
	defer src5.Close()
	seqs5, _, end5 := drain(t, src5)
	if st := src5.Stats(); len(seqs5) != 14 || seqs5[13] != 65 || st.Decoded != 68 || !errors.Is(end5, ErrTruncated) {
		t.Fatalf("every 5th of tree.avi: got seqs %v, stats %+v, end %v", seqs5, st, end5)
	}
	// With no tolerance for damage the same file ends with ErrTooDamaged.
	cfg := testConfig(32, 32)
	cfg.MaxDamaged = 1
	cfg.RetryReads = 10
	src2, err := OpenFile(context.Background(), dataFile(t, "tree.avi"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	if _, _, end := drain(t, src2); !errors.Is(end, ErrTooDamaged) {
		t.Fatalf("MaxDamaged=1: got %v, want ErrTooDamaged", end)
	}
}

func TestOpenFileRejects(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.avi")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	random := filepath.Join(dir, "random.avi")
	if err := os.WriteFile(random, randomBytes(64<<10, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	pct := filepath.Join(dir, "img%03d.avi")
	if err := os.WriteFile(pct, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing.avi"), ErrInvalidPath},
		{empty, ErrInvalidPath},
		{dir, ErrInvalidPath},
		{pct, ErrInvalidPath},
		{"", ErrInvalidPath},
		{random, ErrOpen},
	}
	if os.Geteuid() != 0 { // root reads anything
		unreadable := filepath.Join(dir, "unreadable.avi")
		if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			path string
			want error
		}{unreadable, ErrInvalidPath})
	}
	for _, c := range cases {
		src, err := OpenFile(context.Background(), c.path, testConfig(8, 8))
		if !errors.Is(err, c.want) {
			if src != nil {
				src.Close()
			}
			t.Errorf("%q: got %v, want %v", c.path, err, c.want)
		}
	}
}

// Config.Limits apply to the frame size a video declares.
func TestOpenFileFrameSizeLimit(t *testing.T) {
	cfg := testConfig(8, 8)
	cfg.Limits = DefaultImageLimits()
	cfg.Limits.MaxWidth = 640
	if src, err := OpenFile(context.Background(), dataFile(t, "vtest.avi"), cfg); !errors.Is(err, ErrImageTooLarge) {
		if src != nil {
			src.Close()
		}
		t.Fatalf("768-wide video with MaxWidth 640: got %v, want ErrImageTooLarge", err)
	}
}

// Close while the lossless capture loop is blocked on a full queue: Close
// joins it, Next reports ErrClosed, Stats.End is ErrClosed.
func TestFileCloseWhileBlocked(t *testing.T) {
	cfg := testConfig(16, 16)
	cfg.QueueLen = 1
	src, err := OpenFile(context.Background(), dataFile(t, "vtest.avi"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() bool { return src.q.Len() == 1 }) // loop now blocks in Push
	closeWithin(t, src, 20*time.Second)
	if _, err := src.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after close: got %v, want ErrClosed", err)
	}
	st := src.Stats()
	if !errors.Is(st.End, ErrClosed) || st.Dropped != 0 {
		t.Fatalf("stats after close: %+v", st)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// Cancelling the ctx given to OpenFile ends the source with context.Canceled.
func TestFileParentCtxCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src, err := OpenFile(ctx, dataFile(t, "vtest.avi"), testConfig(16, 16))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, _, end := drain(t, src)
	if !errors.Is(end, context.Canceled) {
		t.Fatalf("end: got %v, want context.Canceled", end)
	}
	if st := src.Stats(); st.Decoded >= 795 {
		t.Fatalf("read the whole file after cancel: %+v", st)
	}
}

func TestParseURL(t *testing.T) {
	good := []string{"rtsp://cam.local:554/stream", "RTSPS://10.0.0.1/x", "http://h/v.mjpg", "https://u:p@h:8443/live.m3u8"}
	for _, s := range good {
		if _, err := ParseURL(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{"", "file:///etc/passwd", "/videos/x.avi", "ftp://h/x", "rtsp:///nohost", "rtsp://", "javascript:alert(1)",
		"concat:a.avi|b.avi", "rtsp://h/x y", "rtsp://h/\nx", "udp://1.2.3.4:5"}
	for _, s := range bad {
		if _, err := ParseURL(s); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%q: got %v, want ErrInvalidURL", s, err)
		}
	}
	if _, err := OpenURL(context.Background(), "file:///etc/passwd", testConfig(8, 8)); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("OpenURL(file://): got %v", err)
	}
}

// An unreachable RTSP server: the loop keeps reconnecting with backoff,
// counting attempts, and Close returns promptly.
func TestURLUnreachableReconnects(t *testing.T) {
	cfg := testConfig(8, 8)
	cfg.Backoff = Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond, Jitter: 0.5}
	src, err := OpenURL(context.Background(), "rtsp://127.0.0.1:1/x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() bool { return src.Stats().Reconnects >= 3 })
	closeWithin(t, src, 20*time.Second)
	st := src.Stats()
	if !errors.Is(st.End, ErrClosed) || !errors.Is(st.LastErr, ErrOpen) || st.Decoded != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if _, err := src.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}

	// With a reconnect limit the source ends by itself.
	cfg.MaxReconnects = 2
	src2, err := OpenURL(context.Background(), "rtsp://127.0.0.1:1/x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	_, _, end := drain(t, src2)
	if !errors.Is(end, ErrReconnects) || !errors.Is(end, ErrOpen) {
		t.Fatalf("end: got %v, want ErrReconnects wrapping ErrOpen", end)
	}
	if n := src2.Stats().Reconnects; n != 2 {
		t.Fatalf("reconnects: got %d, want 2", n)
	}
}

// A Next ctx bounds only that call.
func TestNextCtxDoesNotEndSource(t *testing.T) {
	cfg := testConfig(8, 8)
	cfg.Backoff = Backoff{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}
	src, err := OpenURL(context.Background(), "rtsp://127.0.0.1:1/x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if st := src.Stats(); st.End != nil {
		t.Fatalf("source ended: %v", st.End)
	}
}

func TestDevice(t *testing.T) {
	if _, err := OpenDevice(context.Background(), -1, testConfig(8, 8)); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("index -1: got %v", err)
	}
	if _, err := os.Stat(DevicePath(63)); err != nil {
		if _, err := OpenDevice(context.Background(), 63, testConfig(8, 8)); !errors.Is(err, ErrNoDevice) {
			t.Fatalf("missing /dev/video63: got %v, want ErrNoDevice", err)
		}
	}
	devs, _ := filepath.Glob("/dev/video*")
	if len(devs) == 0 {
		t.Skip("no /dev/video* camera on this machine; the capture path of OpenDevice is untested here")
	}
	src, err := OpenDevice(context.Background(), 0, testConfig(64, 48))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("no frame from %s: %v (stats %+v)", DevicePath(0), err, src.Stats())
	}
	if len(f.Pixels) != 64*48*3 {
		t.Fatalf("pixels: %d", len(f.Pixels))
	}
}

// checkFor polls cond until it holds or the deadline (a hang guard, not a
// speed assertion) passes.
func checkFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closeWithin calls Close and fails if it hangs (a deadlock guard).
func closeWithin(t *testing.T, s Source, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(limit):
		t.Fatalf("Close did not return within %v", limit)
	}
}
