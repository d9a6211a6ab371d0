package video

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// An HTTP stream through the real OpenURL path: a local server serves
// tree.avi; FFmpeg reads it over HTTP, the stream "ends" after its 68
// decodable frames, and the source reconnects and keeps counting seqs.
func TestURLHTTPStream(t *testing.T) {
	p := dataFile(t, "tree.avi")
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeFile(w, r, p)
	}))
	defer srv.Close()

	cfg := testConfig(32, 24)
	cfg.QueueLen = 256 // lossless in practice for this test: it checks seqs
	cfg.Backoff = Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond, Jitter: 0.1}
	src, err := OpenURL(context.Background(), srv.URL+"/"+filepath.Base(p), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 100 { // more than one pass of the file
		f, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v (stats %+v)", i, err, src.Stats())
		}
		if f.Seq != int64(i) || f.OrigWidth != 320 || f.OrigHeight != 240 || len(f.Pixels) != 32*24*3 {
			t.Fatalf("frame %d: seq=%d orig=%dx%d pixels=%d", i, f.Seq, f.OrigWidth, f.OrigHeight, len(f.Pixels))
		}
	}
	closeWithin(t, src, 20*time.Second)
	st := src.Stats()
	if st.Kind != KindURL || st.Reconnects < 1 || hits.Load() < 2 || !errors.Is(st.End, ErrClosed) {
		t.Fatalf("stats: %+v, server hits %d", st, hits.Load())
	}
}

// A server that answers 404: every open fails and is retried.
func TestURLHTTPNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	cfg := testConfig(8, 8)
	cfg.Backoff = Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	cfg.MaxReconnects = 3
	src, err := OpenURL(context.Background(), srv.URL+"/missing.avi", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, end := drain(t, src)
	if !errors.Is(end, ErrReconnects) || src.Stats().Reconnects != 3 {
		t.Fatalf("end: %v, stats %+v", end, src.Stats())
	}
}
