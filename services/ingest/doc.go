// Package ingest is Vireo's front door: the HTTP API of DESIGN.md and the
// NATS image subject. It validates and bounds every input before anything
// decodes it, and answers each rejected input with a clear 4xx JSON
// schema.Error {error, reason, source, seq, model} that it also publishes
// on <p>.errors.ingest.
//
// # Entry point
//
//	err := ingest.Run(ctx, ingest.Config{Addr: ":8080"}, ops.Deps{NC: nc, Log: log, Metrics: reg, Health: h})
//
// Run creates the streams and buckets (schema.Provision) unless
// cfg.NoProvision, opens the model store unless cfg.ModelsImpl is given,
// serves HTTP on cfg.Addr with /metrics (when deps.Metrics is also a
// prometheus.Gatherer), /healthz and /readyz on the same mux, and
// subscribes to <p>.ingest.image.* in queue group QueueGroup (replicas
// share it). Readiness check "nats": the subscription is in place.
//
// # HTTP API
//
//	POST   /v1/models/{model}/predict[?source=<name>]  JPEG/PNG body -> JSON schema.Result
//	GET    /v1/models                                   [ModelInfo]
//	GET    /v1/models/{model}/versions                  [modelstore.Version]
//	GET    /v1/models/{model}/versions/{version}/plots/{loss|lr}.png
//	                                                    a version's training plot (PNG;
//	                                                    404 plot_not_found when none)
//	POST   /v1/sources  {id?, url, model, fps | every_n} -> 201 SourceInfo
//	GET    /v1/sources                                  [SourceInfo]
//	DELETE /v1/sources/{id}                             204
//
// routes registers one handler per pattern; the corrections, rollback and
// retrain routes (a later issue) slot in there the same way.
//
// # Dashboard
//
// The web dashboard (package dashboard) is registered on the same mux:
// GET / and /static/ (embedded HTML/CSS/JS), GET /v1/events (server-sent
// events fed by NATS subscriptions to results, end-of-stream events,
// errors and serving-version changes) and
// GET /v1/models/{model}/sources/{source}/frames/{seq} (a kept frame as
// PNG). Run runs its event feed and joins it, after its streams, at
// shutdown.
//
// # A prediction
//
// HTTP predict and a NATS message on <p>.ingest.image.<source> (header
// Vireo-Model) take the same path: the model's serving manifest (cached
// for ManifestTTL; unknown model 404 / reason model_not_found); the body
// bounded by MaxBodyBytes (a Content-Length over it is refused before
// reading); video.SniffImage checks the magic number, the structure and
// the declared size against MaxWidth/MaxHeight/MaxPixels from the header
// alone, so a decompression bomb is refused (413 image_too_large) before
// OpenCV sees a byte; then video.DecodeImage decodes and resizes to the
// model's input (one grey channel, OpenCV's BGR2GRAY weights, for a
// one-channel model such as the bundled fashion models; other channel
// counts are 422 unsupported_model). The frame is published with JetStream (ack awaited) as a
// one-frame Arrow batch on <p>.frames.<model>, Nats-Msg-Id
// schema.MsgID(source, seq) where seq is a strictly increasing nanosecond
// clock, and header schema.HeaderReply naming a fresh inbox; infer answers
// there with the JSON Result (returned as is) or a JSON Error (422 with
// infer's reason). No answer within PredictTimeout is 504 timeout. A NATS
// message without a reply subject is fire-and-forget: its result goes to
// <p>.results.<model>.<source> only.
//
// Reasons: empty_body, body_too_large, image_too_large,
// unsupported_format (415), truncated_image, invalid_image, invalid_model,
// invalid_source, missing_model, model_not_found (404), busy (429, more
// than MaxInFlight predictions), timeout (504), invalid_json,
// invalid_registration, source_exists (409), source_not_found (404),
// invalid_version, unknown_plot and plot_not_found (404).
//
// # Sources
//
// Registrations are JSON schema.SourceRegistration values in the SOURCES
// KV bucket under their id (generated "src-<hex>" when absent), which the
// frames service watches: POST creates the key (409 if it exists; the
// model must have a serving version), DELETE deletes it and the frames
// service's end record (frames.EndKey), GET lists them with their state
// ("registered", or "ended" with the end-of-stream event).
//
// # Concurrency and shutdown
//
// HTTP requests run on net/http's goroutines; each NATS image runs on a
// goroutine of its own, at most MaxInFlight predictions at once (HTTP and
// NATS together), all joined by Run. When ctx is done the HTTP server shuts
// down gracefully, the NATS subscription drains, and Run returns once every
// request in flight has been answered.
//
// # Metrics
//
// vireo_ingest_requests_total{api}, _rejected_total{reason},
// _images_total{model}, _predict_seconds.
package ingest
