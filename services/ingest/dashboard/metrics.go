package dashboard

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"vireo/pkg/ops"
)

type metrics struct {
	clients prometheus.Gauge   // open event streams
	dropped prometheus.Counter // events dropped from full client queues (oldest first)
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vireo_ingest_dashboard_clients", Help: "Dashboard event streams open.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vireo_ingest_dashboard_events_dropped_total", Help: "Dashboard events dropped (oldest first) because a client's queue was full.",
		}),
	}
	for _, c := range []prometheus.Collector{m.clients, m.dropped} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("dashboard: register metrics: %w", err)
		}
	}
	return m, nil
}

// MetricNames lists the metric families the dashboard exports.
func MetricNames() []string {
	var r ops.NameRecorder
	_, _ = newMetrics(&r)
	return r.Names()
}
