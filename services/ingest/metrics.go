package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"vireo/pkg/ops"
	"vireo/services/ingest/dashboard"
)

type metrics struct {
	requests *prometheus.CounterVec // {api}: http route pattern or "nats"
	rejected *prometheus.CounterVec // {reason}
	images   *prometheus.CounterVec // {model}: images published for inference
	latency  prometheus.Histogram   // seconds from request to result
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_ingest_requests_total", Help: "Requests by API (HTTP route or nats).",
		}, []string{"api"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_ingest_rejected_total", Help: "Rejected requests by reason (each also published on <p>.errors.ingest).",
		}, []string{"reason"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_ingest_images_total", Help: "Images decoded and published for inference.",
		}, []string{"model"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vireo_ingest_predict_seconds", Help: "Prediction latency: request received to result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.rejected, m.images, m.latency} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return m, nil
}

// MetricNames lists the metric families the service exports, its
// dashboard's included (for checks of dashboards and alerts against them).
func MetricNames() []string {
	var r ops.NameRecorder
	_, _ = newMetrics(&r)
	return append(r.Names(), dashboard.MetricNames()...)
}
