package frames

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"vireo/pkg/ops"
)

// metrics of the frames service. Sources are few and named by their
// operators, so they are a label.
type metrics struct {
	frames    *prometheus.CounterVec // {model, source}: frames published (acked)
	dropped   *prometheus.CounterVec // {model, source, reason}: frames dropped (backpressure, publish_failed)
	batches   *prometheus.CounterVec // {model}
	errors    *prometheus.CounterVec // {reason}
	retries   *prometheus.CounterVec // {model}: republished batches
	skipped   prometheus.Counter     // registrations not read again: already ended (EndRecord)
	running   prometheus.Gauge
	ackWait   prometheus.Histogram // seconds a source waited for a free publish slot
	batchSize prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_frames_published_total", Help: "Frames published to FRAMES and acknowledged.",
		}, []string{"model", "source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_frames_dropped_total", Help: "Frames a live source dropped, by reason: backpressure (oldest first) or publish_failed.",
		}, []string{"model", "source", "reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_frames_batches_total", Help: "Arrow frame batches published.",
		}, []string{"model"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_frames_errors_total", Help: "Errors published on <p>.errors.frames, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vireo_frames_publish_retries_total", Help: "Batches republished after a failed ack (file sources).",
		}, []string{"model"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vireo_frames_sources_skipped_total", Help: "Registrations not read again because their revision already ended (EndRecord).",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vireo_frames_sources_running", Help: "Sources being read now.",
		}),
		ackWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vireo_frames_backpressure_seconds", Help: "Time a source waited for a publish ack because MaxInFlight batches were unacknowledged.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vireo_frames_batch_size", Help: "Frames per published batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
	}
	for _, c := range []prometheus.Collector{m.frames, m.dropped, m.batches, m.errors, m.retries, m.skipped, m.running, m.ackWait, m.batchSize} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("frames: register metrics: %w", err)
		}
	}
	return m, nil
}

// MetricNames lists the metric families the service exports (for checks of
// dashboards and alerts against them).
func MetricNames() []string {
	var r ops.NameRecorder
	_, _ = newMetrics(&r)
	return r.Names()
}
