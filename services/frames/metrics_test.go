package frames

import (
	"testing"
	"time"

	"vireo/pkg/ops/metricstest"
)

// TestMetricsParseAndMove: /metrics passes the Prometheus text parser
// (names by convention), and the batch-size histogram counts every
// published batch of Megamind.avi (every 10th frame: 27 frames).
func TestMetricsParseAndMove(t *testing.T) {
	p := dataFile(t, "Megamind.avi")
	e := newEnv(t, 64, 48)
	r := e.start(Config{}, nil)
	before := metricstest.Render(t, r.reg)
	if n := before.Count("vireo_frames_batch_size", nil); n != 0 {
		t.Fatalf("batch_size has %d samples before any frame", n)
	}
	eosC, _ := e.events("mm")
	e.register("mm", "file://"+p, 10)
	eos := waitEOS(t, eosC, 60*time.Second)
	if eos.Frames != 27 {
		t.Fatalf("end of stream %+v, want 27 frames", eos)
	}
	after := metricstest.Render(t, r.reg)
	after.Require(t, "vireo_frames_published_total", "vireo_frames_batches_total", "vireo_frames_batch_size", "vireo_frames_sources_running")
	l := map[string]string{"model": testModel, "source": "mm"}
	if v := after.Value("vireo_frames_published_total", l); v != 27 {
		t.Errorf("published_total{source=mm} = %v, want 27", v)
	}
	batches := after.Value("vireo_frames_batches_total", map[string]string{"model": testModel})
	if n := after.Count("vireo_frames_batch_size", nil); n == 0 || float64(n) != batches {
		t.Errorf("batch_size count %d, batches_total %v: want equal and > 0", n, batches)
	}
	if s := after["vireo_frames_batch_size"].GetMetric()[0].GetHistogram().GetSampleSum(); s != 27 {
		t.Errorf("batch_size sum %v, want 27 frames", s)
	}
}
