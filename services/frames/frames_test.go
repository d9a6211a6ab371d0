package frames

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/pkg/model/modeltest"
	"vireo/pkg/video"
)

// vtest.avi (795 frames) sampled every 5th frame: exactly 159 frames, seqs
// 0, 5, ..., 790 in stream order, none twice, each batch's Msg-Id is
// <source>/<first seq>, and an end-of-stream event with the same counts.
func TestFileEveryFifthFrame(t *testing.T) {
	p := dataFile(t, "vtest.avi")
	e := newEnv(t, 64, 48)
	r := e.start(Config{}, nil)
	eosC, errs := e.events("vtest")
	e.register("vtest", "file://"+p, 5)
	eos := waitEOS(t, eosC, 60*time.Second)
	if eos.Reason != "eof" || eos.Frames != 159 || eos.LastSeq != 790 || eos.Dropped != 0 || eos.Model != testModel {
		t.Fatalf("end of stream: %+v (want eof, 159 frames, last seq 790, 0 dropped)", eos)
	}
	select {
	case er := <-errs:
		t.Fatalf("unexpected error message: %+v", er)
	default:
	}
	got := e.storedFrames("vtest")
	if len(got) != 159 {
		t.Fatalf("stored frames: got %d, want 159", len(got))
	}
	firstOfMsg := map[string]uint64{}
	for i, sf := range got {
		f := sf.frame
		if f.Seq != uint64(5*i) {
			t.Fatalf("frame %d: seq %d (want %d): out of order, missing or duplicated", i, f.Seq, 5*i)
		}
		if f.Width != 64 || f.Height != 48 || f.Channels != 3 || f.OrigWidth != 768 || f.OrigHeight != 576 {
			t.Fatalf("frame %d: size %dx%dx%d from %dx%d (want 64x48x3 from 768x576)", i, f.Width, f.Height, f.Channels, f.OrigWidth, f.OrigHeight)
		}
		if _, ok := firstOfMsg[sf.msgID]; !ok {
			firstOfMsg[sf.msgID] = f.Seq
			if want := fmt.Sprintf("vtest/%d", f.Seq); sf.msgID != want {
				t.Fatalf("frame %d: Nats-Msg-Id %q (want %q, the batch's first frame)", i, sf.msgID, want)
			}
		}
	}
	if v := counterValue(t, r.reg, "vireo_frames_published_total", map[string]string{"source": "vtest"}); v != 159 {
		t.Fatalf("vireo_frames_published_total = %v, want 159", v)
	}

	// The ended registration is recorded: a restarted service does not read
	// the file again.
	rec, err := e.kv.Get(testCtx(t), EndKey("vtest"))
	if err != nil || !strings.Contains(string(rec.Value()), `"reason":"eof"`) {
		t.Fatalf("end record: %v %v", err, rec)
	}
	r.stop(t)
	r2 := e.start(Config{}, nil)
	checkFor(t, 20*time.Second, func() error {
		if v := counterValue(t, r2.reg, "vireo_frames_sources_skipped_total", nil); v != 1 {
			return fmt.Errorf("skipped sources %v (want 1)", v)
		}
		return nil
	})
	r2.stop(t)
	if n := len(e.storedFrames("vtest")); n != 159 {
		t.Fatalf("after a restart: %d frames stored (want still 159)", n)
	}
}

// A model that takes one grey channel (as the bundled fashion models do)
// gets the video's frames as grey, OpenCV's BGR2GRAY of the resized colour
// frame, every sampled frame once.
func TestGreyModelVideo(t *testing.T) {
	p := dataFile(t, "vtest.avi")
	b, m := modeltest.TinyGreyClassifier(t, 28, 28, [3]string{"a", "b", "c"})
	e := newEnvModel(t, 28, 28, b, m)
	e.keepPixels = true
	e.start(Config{}, nil)
	eosC, _ := e.events("vtest")
	e.register("vtest", "file://"+p, 40)
	eos := waitEOS(t, eosC, 60*time.Second)
	got := e.storedFrames("vtest")
	if eos.Reason != "eof" || eos.Frames != 20 || len(got) != 20 {
		t.Fatalf("end of stream %+v, %d frames stored (want eof, 20 frames)", eos, len(got))
	}
	src, err := video.OpenFile(testCtx(t), p, video.Config{Width: 28, Height: 28, EveryN: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i, sf := range got {
		f := sf.frame
		if f.Seq != uint64(40*i) || f.Channels != 1 || f.Width != 28 || f.Height != 28 || len(f.Pixels) != 28*28 {
			t.Fatalf("frame %d: seq %d, %dx%dx%d, %d bytes (want seq %d, 28x28x1, 784 bytes)", i, f.Seq, f.Width, f.Height, f.Channels, len(f.Pixels), 40*i)
		}
		c, err := src.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if want := video.BGRToGrey(c.Pixels); !bytes.Equal(f.Pixels, want) {
			t.Fatalf("frame %d: pixels are not the grey of the colour frame", i)
		}
	}
}

// tree.avi declares 444 frames and only 68 decode: the 68 are published,
// then an error message (reason truncated) names the source and the
// end-of-stream event carries the detail; nothing crashes.
func TestDamagedFileTree(t *testing.T) {
	p := dataFile(t, "tree.avi")
	e := newEnv(t, 32, 24)
	e.start(Config{}, nil)
	eosC, errs := e.events("tree")
	e.register("tree", p, 0)
	er := waitError(t, errs, 60*time.Second)
	eos := waitEOS(t, eosC, 60*time.Second)
	if er.Source != "tree" || er.Model != testModel || er.Reason != "truncated" || !strings.Contains(er.Error, "68 of 444") {
		t.Fatalf("error message: %+v (want reason truncated, 68 of 444)", er)
	}
	if eos.Reason != "eof" || eos.Frames != 68 || eos.LastSeq != 67 || !strings.Contains(eos.Detail, "truncated") {
		t.Fatalf("end of stream: %+v (want eof, 68 frames, last seq 67, detail truncated)", eos)
	}
	if n := len(e.storedFrames("tree")); n != 68 {
		t.Fatalf("stored %d frames, want 68", n)
	}
}

// Megamind_bugy.avi is named as damaged, yet FFmpeg decodes all 270 of its
// frames (pkg/video's TestFileMegamind): it must simply end, cleanly.
func TestMegamindBugy(t *testing.T) {
	p := dataFile(t, "Megamind_bugy.avi")
	e := newEnv(t, 32, 24)
	e.start(Config{}, nil)
	eosC, errs := e.events("bugy")
	e.register("bugy", p, 0)
	eos := waitEOS(t, eosC, 60*time.Second)
	if eos.Reason != "eof" || eos.Frames != 270 || eos.Detail != "" {
		t.Fatalf("end of stream: %+v (want eof, 270 frames)", eos)
	}
	select {
	case er := <-errs:
		t.Fatalf("unexpected error message: %+v", er)
	default:
	}
	if n := len(e.storedFrames("bugy")); n != 270 {
		t.Fatalf("stored %d frames, want 270", n)
	}
}

// A missing file, an unreachable URL and a registration naming a file that
// is not a video each give a clear error and a failed end of stream.
func TestBadSourcesFailClearly(t *testing.T) {
	e := newEnv(t, 16, 16)
	e.start(Config{MaxReconnects: 2, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, nil)
	for _, c := range []struct {
		id, url, reason, detail string
	}{
		{"missing", "/nonexistent/dir/video.avi", "invalid_source", "no such file"},
		{"unreachable", "http://127.0.0.1:1/video.avi", "source_unreachable", "reconnect"},
		{"notvideo", "/usr/share/doc/opencv-doc/examples/data/data01.xml", "open_failed", "cannot open"},
	} {
		t.Run(c.id, func(t *testing.T) {
			if strings.HasPrefix(c.url, dataDir) {
				dataFile(t, strings.TrimPrefix(c.url, dataDir+"/"))
			}
			eosC, errs := e.events(c.id)
			e.register(c.id, c.url, 0)
			er := waitError(t, errs, 60*time.Second)
			eos := waitEOS(t, eosC, 60*time.Second)
			t.Logf("error: %+v", er)
			t.Logf("end: %+v", eos)
			if c.reason != "" && er.Reason != c.reason {
				t.Fatalf("reason %q (want %q): %+v", er.Reason, c.reason, er)
			}
			if eos.Reason != "failed" || eos.Frames != 0 || !strings.Contains(strings.ToLower(eos.Detail), c.detail) {
				t.Fatalf("end of stream: %+v (want failed, 0 frames, detail with %q)", eos, c.detail)
			}
		})
	}
}

// A still image registered as a source gives one frame and ends.
func TestStillImageSource(t *testing.T) {
	p := dataFile(t, "messi5.jpg")
	e := newEnv(t, 40, 30)
	e.start(Config{}, nil)
	eosC, _ := e.events("messi")
	e.register("messi", p, 0)
	eos := waitEOS(t, eosC, 30*time.Second)
	got := e.storedFrames("messi")
	if eos.Reason != "eof" || eos.Frames != 1 || len(got) != 1 || got[0].frame.OrigWidth != 548 || got[0].frame.OrigHeight != 342 {
		t.Fatalf("end %+v, frames %+v", eos, got)
	}
}

// Backpressure on a live source: an HTTP stream (tree.avi served over HTTP,
// replayed on every reconnect) published over a NATS link throttled to
// ~64 KB/s. The capture keeps decoding and drops the oldest frames; every
// drop is counted in the metric and the end-of-stream event, and what was
// published is in seq order.
func TestLiveBackpressureCountsDrops(t *testing.T) {
	p := dataFile(t, "tree.avi")
	e := newEnv(t, 64, 48) // 9 KiB per frame
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, p) }))
	defer httpSrv.Close()
	th := newThrottle(t, strings.TrimPrefix(e.srv.ClientURL(), "nats://"), 64<<10)
	slow, err := nats.Connect(th.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.Close)
	r := e.start(Config{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, MaxInFlight: 1}, slow)
	eosC, _ := e.events("live")
	e.register("live", httpSrv.URL+"/tree.avi", 0)
	labels := map[string]string{"source": "live"}
	checkFor(t, 60*time.Second, func() error {
		d := counterValue(t, r.reg, "vireo_frames_dropped_total", labels)
		pub := counterValue(t, r.reg, "vireo_frames_published_total", labels)
		if d < 20 || pub < 8 {
			return fmt.Errorf("dropped %v, published %v (want >= 20 and >= 8)", d, pub)
		}
		return nil
	})
	if err := e.kv.Delete(testCtx(t), "live"); err != nil {
		t.Fatal(err)
	}
	eos := waitEOS(t, eosC, 60*time.Second)
	t.Logf("end: %+v", eos)
	if eos.Reason != "deleted" || eos.Dropped < 20 {
		t.Fatalf("end of stream: %+v (want deleted with >= 20 dropped)", eos)
	}
	if d := counterValue(t, r.reg, "vireo_frames_dropped_total", labels); d != float64(eos.Dropped) {
		t.Fatalf("metric dropped %v, end of stream dropped %d", d, eos.Dropped)
	}
	got := e.storedFrames("live")
	if uint64(len(got)) != eos.Frames {
		t.Fatalf("stored %d frames, end of stream says %d published", len(got), eos.Frames)
	}
	for i := 1; i < len(got); i++ {
		if got[i].frame.Seq <= got[i-1].frame.Seq {
			t.Fatalf("seqs out of order at %d: %d after %d", i, got[i].frame.Seq, got[i-1].frame.Seq)
		}
	}
	if last := got[len(got)-1].frame.Seq; uint64(len(got))+eos.Dropped > last+1 {
		t.Fatalf("published %d + dropped %d > frames decoded (last seq %d)", len(got), eos.Dropped, last)
	}
}
