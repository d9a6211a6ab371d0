package ingest

import (
	"testing"

	"vireo/pkg/ops/metricstest"
)

// TestMetricsParseAndMove: ingest's /metrics passes the Prometheus text
// parser (names by convention); the prediction histogram counts each
// prediction and rejected inputs are counted by reason.
func TestMetricsParseAndMove(t *testing.T) {
	e := newEnv(t, Config{}, true)
	before := metricstest.Scrape(t, e.base+"/metrics")
	if n := before.Count("vireo_ingest_predict_seconds", nil); n != 0 {
		t.Fatalf("predict_seconds has %d samples before any image", n)
	}
	img := readData(t, "messi5.jpg")
	for range 3 {
		if status, body := e.do("POST", "/v1/models/"+testModel+"/predict?source=cam-1", "image/jpeg", img); status != 200 {
			t.Fatalf("predict: %d %s", status, body)
		}
	}
	if status, _ := e.do("POST", "/v1/models/"+testModel+"/predict", "image/jpeg", nil); status != 400 {
		t.Fatalf("empty body: status %d, want 400", status)
	}
	after := metricstest.Scrape(t, e.base+"/metrics")
	after.Require(t, "vireo_ingest_requests_total", "vireo_ingest_rejected_total", "vireo_ingest_images_total",
		"vireo_ingest_predict_seconds", "vireo_ingest_dashboard_clients")
	if n := after.Count("vireo_ingest_predict_seconds", nil); n != 3 {
		t.Errorf("predict_seconds count %d, want 3", n)
	}
	if v := after.Value("vireo_ingest_rejected_total", map[string]string{"reason": "empty_body"}); v != 1 {
		t.Errorf("rejected_total{reason=empty_body} = %v, want 1", v)
	}
}
