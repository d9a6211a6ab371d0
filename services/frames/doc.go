// Package frames is Vireo's frames service: it reads the video sources
// registered in the SOURCES KV bucket (files, RTSP/HTTP streams, camera
// devices, still images) with pkg/video, samples them, resizes each frame
// to its model's input size and publishes Arrow frame batches to the FRAMES
// stream on <p>.frames.<model>, where infer consumes them.
//
// # Entry point
//
//	err := frames.Run(ctx, frames.Config{}, ops.Deps{NC: nc, Log: log, Metrics: reg, Health: h})
//
// Run creates the streams and buckets (schema.Provision) unless
// cfg.NoProvision, opens the model store unless cfg.ModelsImpl is given,
// and runs until ctx is done. It serves no HTTP: the host serves
// deps.Metrics and deps.Health (`vireo frames --metrics-addr`, `vireo up`).
// Readiness check "sources": the registrations present at start were read.
//
// # Which sources run
//
// The SOURCES bucket (schema.Subjects.SourcesKV) maps a source id to a
// JSON schema.SourceRegistration {url, model, every_n | fps}. One goroutine
// owns the bucket watch: a new key starts that source, a changed key
// restarts it (the old reading ends with reason "deleted"), a deleted key
// stops it (end-of-stream reason "deleted"). When a source ends by itself
// (end of file, or a failure), the service records an EndRecord under
// EndKey(id) ("<id>.end", never a source id); a registration revision with
// a record is not read again after a restart. A source stopped because the
// service shuts down is read again from the start on the next run (frame
// batches already stored are deduplicated by Nats-Msg-Id within the FRAMES
// duplicates window).
//
// URLs: a path or file:///path is a video file, or a still image when the
// file starts with a JPEG or PNG signature; rtsp, rtsps, http and https
// are live streams that reconnect with exponential backoff (BackoffMin ..
// BackoffMax, ending after MaxReconnects failed attempts in a row);
// device://<n> is a camera. Everything is validated by pkg/video before
// OpenCV sees it (gocv v0.31 aborts the process on an OpenCV exception).
//
// The model's input size is read from its serving manifest when the source
// starts (Models: *modelstore.Store); a source whose model has no serving
// version yet waits for one (checking every ModelRetry; the wait is
// reported once on <p>.errors.frames). Frames are BGR; for a model that
// takes one channel (the fashion models) they are converted to grey with
// OpenCV's BGR2GRAY weights (video.BGRToGrey), as ingest does for images.
//
// # One goroutine per source
//
// Each source has one goroutine that owns its video.Source (which owns one
// capture goroutine of its own, joined by Close) and its publisher. It
// collects frames into a batch of up to BatchFrames (fewer when they would
// not fit schema.FramesMaxMsgSize or the server's max payload), waiting at
// most BatchDelay after the first, encodes it (schema.EncodeFrames) and
// publishes it asynchronously with headers Nats-Msg-Id =
// schema.MsgID(source, first seq) and Vireo-Schema-Version. At most
// MaxInFlight batches await their ack; then the goroutine waits for the
// oldest (flow control). Batches are published in seq order.
//
//   - Files and still images are lossless: while the goroutine waits, the
//     capture blocks. A batch whose ack fails is republished (same Msg-Id)
//     up to PublishRetries times, then the source fails.
//   - Live sources (URL, device) never make the camera wait: their capture
//     ring (LiveQueue frames) drops the oldest frame while the goroutine
//     waits, and a batch whose ack fails is dropped. Every dropped frame is
//     counted: vireo_frames_dropped_total{model,source,reason} and the
//     end-of-stream event's "dropped".
//
// # Events and errors
//
// Each source ends with one schema.EndOfStream on <p>.events.<source>:
// reason "eof" (end of file; a truncated file such as tree.avi also gets a
// detail), "failed" (cannot open, unreachable, too damaged, publish failed,
// unsupported model) or "deleted". Problems are published as schema.Error
// on <p>.errors.frames with a reason: truncated, invalid_source,
// open_failed, source_unreachable (also while a live source reconnects, at
// most once per Poll), too_damaged, too_large, invalid_image,
// publish_failed, invalid_registration, model_not_found, unsupported_model.
//
// # Shutdown
//
// When ctx is done every source stops reading, publishes the frames it has
// already captured, awaits its outstanding acks (bounded by
// PublishTimeout), closes its capture and returns; Run returns after the
// watch and every source goroutine have ended.
//
// # Metrics
//
// vireo_frames_published_total{model,source}, _dropped_total{model,source},
// _batches_total{model}, _errors_total{reason},
// _publish_retries_total{model}, _sources_running, _sources_skipped_total, _backpressure_seconds
// (waits for a free publish slot), _batch_size.
package frames
