package retrain

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	runs        *prometheus.CounterVec // model, outcome
	corrections *prometheus.CounterVec // model, outcome
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "retrain", Name: "runs_total",
			Help: "Retrain runs by outcome (promoted, rejected, failed).",
		}, []string{"model", "outcome"}),
		corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vireo", Subsystem: "retrain", Name: "corrections_total",
			Help: "Corrections received by outcome (accepted, invalid_correction, frame_not_kept).",
		}, []string{"model", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.corrections} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("retrain: register metrics: %w", err)
		}
	}
	return m, nil
}
