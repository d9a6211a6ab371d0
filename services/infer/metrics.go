package infer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"vireo/pkg/ops"

	"vireo/pkg/batch"
)

// metrics are the service's Prometheus collectors, labelled by model.
type metrics struct {
	frames   *prometheus.CounterVec   // model
	batches  *prometheus.CounterVec   // model, trigger
	size     *prometheus.HistogramVec // model
	run      *prometheus.HistogramVec // model, version: seconds per batch on the backend
	latency  *prometheus.HistogramVec // model, source: capture to published result
	wait     *prometheus.HistogramVec // model: seconds a frame waited in the batcher
	swapTime *prometheus.HistogramVec // model: new serving version seen to serving
	version  *prometheus.GaugeVec     // model, version: 1 for the version serving
	errors   *prometheus.CounterVec   // model, reason
	messages *prometheus.CounterVec   // model, outcome (ack, nak, term)
	swaps    *prometheus.CounterVec   // model
	backend  *prometheus.GaugeVec     // backend, math, blas_core: 1 for the backend this service runs on
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "frames_total",
			Help: "Frames whose results were published.",
		}, []string{"model"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "batches_total",
			Help: "Batches run, by the batcher's flush trigger (size, preferred, delay, explicit).",
		}, []string{"model", "trigger"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "batch_size",
			Help:    "Frames per batch run.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}, []string{"model"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "inference_seconds",
			Help:    "Time to run one batch on the backend (normalise, forward, post-process), by model version.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"model", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "latency_seconds",
			Help:    "End-to-end latency: a frame's capture (or an image's receipt) to its published result, by source.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"model", "source"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "queue_wait_seconds",
			Help:    "Time a frame waited in the batcher, from its message's arrival to its batch run.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"model"}),
		swapTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "model_swap_seconds",
			Help:    "Model swap duration: a new serving version seen to serving it (load, warm-up, wait for a batch boundary).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"model"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "model_version_info",
			Help: "1 for the model version this worker serves.",
		}, []string{"model", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "errors_total",
			Help: "Errors by reason (malformed_arrow, wrong_model, input_size, predict, publish, load, max_deliver).",
		}, []string{"model", "reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "messages_total",
			Help: "Frame batch messages by outcome (ack, nak, term).",
		}, []string{"model", "outcome"}),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "model_swaps_total",
			Help: "Model versions switched to (the first load counts).",
		}, []string{"model"}),
		backend: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "vireo", Subsystem: "infer", Name: "backend_info",
			Help: "1 for the compute backend this service runs on (cpu or cuda), its math mode (fp32, fp16, bf16) and, on the CPU, the OpenBLAS kernels in use.",
		}, []string{"backend", "math", "blas_core"}),
	}
	for _, c := range []prometheus.Collector{m.frames, m.batches, m.size, m.run, m.latency, m.wait, m.swapTime, m.version, m.errors, m.messages, m.swaps, m.backend} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("infer: register metrics: %w", err)
		}
	}
	return m, nil
}

// trigger names the flush trigger that moved between two batcher stats.
func trigger(before, after batch.Stats) string {
	switch {
	case after.FlushSize > before.FlushSize:
		return batch.TriggerSize.String()
	case after.FlushPreferred > before.FlushPreferred:
		return batch.TriggerPreferred.String()
	case after.FlushDelay > before.FlushDelay:
		return batch.TriggerDelay.String()
	case after.FlushExplicit > before.FlushExplicit:
		return batch.TriggerExplicit.String()
	}
	return batch.TriggerNone.String()
}

// MetricNames lists the metric families the service exports (for checks of
// dashboards and alerts against them).
func MetricNames() []string {
	var r ops.NameRecorder
	_, _ = newMetrics(&r)
	return r.Names()
}
