package main

import (
	"context"
	"io"

	"vireo/pkg/ops"
)

// runService is the shared tail of the one-service commands (ingest,
// frames, infer, retrain): connect to NATS, build the logger and the
// metrics registry, and run the service with /metrics, /healthz and
// /readyz on metricsAddr (none when empty: ingest serves them on its API
// mux).
func runService(ctx context.Context, name string, nf *natsFlags, logFormat, metricsAddr string, stderr io.Writer, run func(context.Context, ops.Deps) error) error {
	log := serviceLogger(logFormat, stderr)
	nc, _, err := nf.connect(name)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := ops.NewRegistry()
	deps := ops.Deps{NC: nc, Log: log, Metrics: reg, Health: ops.NewHealth()}
	return runWithOps(ctx, metricsAddr, reg, deps, func(ctx context.Context) error { return run(ctx, deps) })
}
