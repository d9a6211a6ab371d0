// Package ops is what every Vireo service shares to be operated: the
// dependencies a service's Run receives (NATS connection, logger, metrics
// registry, health), the /metrics, /healthz and /readyz handlers, and a
// graceful HTTP server loop.
//
// Health: /healthz answers 200 while the process serves HTTP (liveness);
// /readyz answers 200 only when every registered check is nil (readiness),
// else 503 with a JSON object naming each failing check and its reason.
// Checks are set by the goroutine that owns the state they describe
// (Health is safe for concurrent use).
package ops
