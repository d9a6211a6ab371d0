package retrain

import "vireo/pkg/ops"

// MetricNames lists the metric families the service exports (for checks of
// dashboards and alerts against them).
func MetricNames() []string {
	var r ops.NameRecorder
	_, _ = newMetrics(&r)
	return r.Names()
}
