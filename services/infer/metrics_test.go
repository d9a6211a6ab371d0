package infer

import (
	"fmt"
	"testing"
	"time"

	"vireo/pkg/ops/metricstest"
)

// TestMetricsParseAndMove: /metrics passes the Prometheus text parser
// (names by convention), and the histograms count every frame that flows.
func TestMetricsParseAndMove(t *testing.T) {
	e := newEnv(t)
	svc := e.start(Config{})
	before := metricstest.Render(t, svc.reg)
	before.Require(t, "vireo_infer_model_swaps_total", "vireo_infer_model_swap_seconds", "vireo_infer_model_version_info", "vireo_infer_backend_info")
	if v := before.Value("vireo_infer_backend_info", map[string]string{"backend": "cpu", "math": "fp32"}); v != 1 {
		t.Errorf("backend_info{backend=cpu,math=fp32} = %v, want 1", v)
	}
	if v := before.Value("vireo_infer_model_version_info", map[string]string{"model": "tiny", "version": "v0001"}); v != 1 {
		t.Errorf("model_version_info{version=v0001} = %v, want 1", v)
	}
	if n := before.Count("vireo_infer_inference_seconds", nil); n != 0 {
		t.Fatalf("inference_seconds has %d samples before any frame", n)
	}
	sources := []string{"cam1", "cam2"}
	e.publishFrames(sources, 0, 10, 2)
	e.waitResults(20)
	var after metricstest.Families
	checkFor(t, 10*time.Second, func() error { // results are published before the counters move
		after = metricstest.Render(t, svc.reg)
		if n := after.Count("vireo_infer_latency_seconds", nil); n != 20 {
			return fmt.Errorf("latency samples %d, want 20", n)
		}
		return nil
	})
	after.Require(t, "vireo_infer_frames_total", "vireo_infer_batches_total", "vireo_infer_batch_size",
		"vireo_infer_inference_seconds", "vireo_infer_latency_seconds", "vireo_infer_queue_wait_seconds", "vireo_infer_messages_total")
	for _, src := range sources {
		if n := after.Count("vireo_infer_latency_seconds", map[string]string{"model": "tiny", "source": src}); n != 10 {
			t.Errorf("latency_seconds{source=%s} count %d, want 10", src, n)
		}
	}
	if n := after.Count("vireo_infer_queue_wait_seconds", map[string]string{"model": "tiny"}); n != 20 {
		t.Errorf("queue_wait_seconds count %d, want 20 (one per frame)", n)
	}
	batches := after.Count("vireo_infer_batch_size", nil)
	if batches == 0 || after.Count("vireo_infer_inference_seconds", map[string]string{"version": "v0001"}) != batches {
		t.Errorf("batch_size count %d and inference_seconds{version=v0001} count %d: want equal and > 0",
			batches, after.Count("vireo_infer_inference_seconds", nil))
	}
}
