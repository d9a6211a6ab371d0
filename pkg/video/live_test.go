package video

import (
	"context"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// fileAsLive opens a video file through the live loop: each "connection"
// plays the file once, then reads fail and the loop reconnects.
func fileAsLive(path string) opener {
	return func() (*gocv.VideoCapture, error) {
		vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
		if err != nil || !vc.IsOpened() {
			vc.Close()
			return nil, ErrOpen
		}
		return vc, nil
	}
}

// A slow consumer of a live source: the capture loop never waits, the oldest
// frames are dropped and counted, and what arrives is in seq order.
func TestLiveDropsOldestForSlowConsumer(t *testing.T) {
	p := dataFile(t, "vtest.avi")
	cfg := testConfig(32, 32)
	cfg.setDefaults(true)
	src := startLive(context.Background(), KindURL, "vtest-live", cfg, fileAsLive(p))
	defer src.Close()
	ctx := context.Background()
	var seqs []int64
	f, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seqs = append(seqs, f.Seq)
	// Stall: the loop keeps decoding into the 2-slot ring.
	checkFor(t, 30*time.Second, func() bool { return src.Stats().Decoded >= 100 })
	for range 5 {
		f, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, f.Seq)
	}
	closeWithin(t, src, 20*time.Second)
	st := src.Stats()
	queued := int64(src.q.Len())
	if st.Dropped < 90 {
		t.Fatalf("dropped: got %d, want >= 90 (stats %+v)", st.Dropped, st)
	}
	if got := int64(len(seqs)) + st.Dropped + queued; got != st.Emitted {
		t.Fatalf("received %d + dropped %d + queued %d != emitted %d", len(seqs), st.Dropped, queued, st.Emitted)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seqs out of order: %v", seqs)
		}
	}
	if seqs[1] < 90 {
		t.Fatalf("after the stall the consumer got an old frame (seq %d), want one of the newest", seqs[1])
	}
}

// When a live stream stops delivering, the loop reconnects; seq and stream
// time keep increasing across the reconnect.
func TestLiveReconnectContinuesSeq(t *testing.T) {
	p := dataFile(t, "tree.avi") // 68 frames decode, then reads fail
	cfg := testConfig(16, 16)
	cfg.QueueLen = 512 // keep everything; this test is about seq, not drops
	cfg.Backoff = Backoff{Min: time.Millisecond, Max: time.Millisecond}
	cfg.setDefaults(true)
	src := startLive(context.Background(), KindURL, "tree-live", cfg, fileAsLive(p))
	defer src.Close()
	var prev Frame
	for i := range 150 {
		f, err := src.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != int64(i) {
			t.Fatalf("frame %d: seq %d", i, f.Seq)
		}
		if i > 0 && f.StreamTime <= prev.StreamTime {
			t.Fatalf("frame %d: stream time %v not after %v", i, f.StreamTime, prev.StreamTime)
		}
		prev = f
	}
	if st := src.Stats(); st.Reconnects < 2 || st.Dropped != 0 {
		t.Fatalf("stats: %+v", st)
	}
}
