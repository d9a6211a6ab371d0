// Package infer is Vireo's inference service: it pulls Arrow frame batches
// from JetStream, re-batches frames across messages and sources, runs the
// serving model version on a compute backend and publishes one result per
// frame.
//
// # Entry point
//
//	err := infer.Run(ctx, infer.Config{Models: []string{"people"}}, ops.Deps{NC: nc, Log: log})
//
// Run serves cfg.Models, or with none every model that has or gets a
// serving version in the model store (pkg/modelstore), until ctx is done;
// it creates the streams and buckets unless cfg.NoProvision, and opens the
// backend by name unless cfg.BackendImpl is given. Readiness checks (on
// deps.Health): "infer" (started), "infer-model:<m>" (a version is loaded
// and warmed), "infer-consumer:<m>" (the consumer is bound), and
// "infer-models" in every-model mode until a first model appears.
//
// # Kept frames
//
// Unless cfg.NoKeep, each published result's input frame is stored as a
// one-frame Arrow batch on <p>.kept.<model>.<source>.<seq> (FRAMES_KEEP,
// max age cfg.KeepWindow, 24 h by default; one message per subject; header
// Vireo-Model-Version) before the message is acked, so a correction that
// names (source, seq) can get the pixels back with a direct get. Keeping
// is best effort: a failure is logged and counted as
// errors_total{reason="keep"} but does not hold the result back.
//
// # Per model: one owning loop
//
// A worker per model owns a durable pull consumer (schema.InferConsumer,
// shared by every replica, so replicas split the work), a pkg/batch
// Batcher and the serving predict.Predictor. Its loop selects on the next
// message, a batch whose results are out, the batcher's deadline timer, a
// newly loaded version, an InProgress ticker and ctx, and runs due batches
// itself: no goroutine per batch. Bytes in flight are bounded: the client
// buffers at most PullMaxMessages messages, each pull asks for at most
// PullMaxBytes, the consumer's callback hands over at most PullMaxMessages
// more (a buffered channel, so messages arrive while a batch runs), the
// loop stops taking messages while MaxQueued frames wait, and the server
// holds back deliveries past schema.InferMaxAckPend unacked messages.
// Before forming a batch the loop takes every message already handed over
// (up to MaxQueued frames): at saturation the next batch is full, not
// whatever arrived in the first MaxDelay after the last one.
//
// # Publish stage
//
// Publishing overlaps compute. After predict, the loop hands the batch to
// the publish stage (publish.go; two goroutines the worker owns and joins)
// and forms the next batch. The sender encodes and publishes the results
// and kept frames asynchronously; the acker awaits their acks in batch
// order (PublishTimeout) and hands the batch back; the loop then acks or
// gives back its messages. At most MaxInFlight batches are between
// predict and settle; the loop waits for the oldest before handing over
// one more. A message is still acked only after the result of every one of
// its frames is acked by the stream (its frames may span batches: it is
// settled when the last is back).
//
// For each message: DecodeFrames (malformed Arrow, another model's batch
// or frames of the wrong input size are poison: Term, and a JSON
// schema.Error on <p>.errors.infer and to the Vireo-Reply subject if any);
// each frame is queued in the batcher by source (fairness, SourceShare).
// For each batch: predict, then per frame the JSON Result on
// <p>.results.<model>.<source> with Nats-Msg-Id "<source>/<seq>/<version>"
// (a redelivered frame's result is stored once by the RESULTS stream's
// duplicate window), the JSON to the message's Vireo-Reply subject when
// set, and the batch as an Arrow result batch on <p>.results.arrow.<model>
// (not deduplicated: analytics may see a redelivered frame twice), and
// the input frame of every result is kept (below); then the publish acks
// are awaited and each message whose frames are all published is acked.
// A failure (predict, publish) gives the messages of the batch back with
// NakWithDelay; after schema.InferMaxDeliver deliveries a message is
// terminated with reason max_deliver.
//
// # Model versions
//
// One loader goroutine per worker watches the model's KV pointer, loads
// and warms each new version beside the serving one, and hands it to the
// loop, which switches between two batches and closes the old version: no
// frame is dropped, frames queued at the switch run on the new version,
// and every Result carries model_version. A version that fails to load is
// reported (log, errors_total{reason="load"}, <p>.errors.infer) and the
// old one keeps serving. Frames already queued that do not fit a new
// version's input size are terminated with reason input_size.
//
// # Shutdown
//
// When ctx is done the worker stops consuming (messages buffered in the
// client or handed over but not taken are given back with Nak), runs and
// publishes the frames already queued within DrainTimeout, settles the
// batches in the publish stage, gives back anything left, and joins its
// publish stage and loader; Run returns after every worker has.
//
// # Metrics
//
// vireo_infer_frames_total, _batches_total{trigger}, _batch_size,
// _inference_seconds{version} (one batch on the backend),
// _latency_seconds{source} (end to end: capture to published result),
// _queue_wait_seconds (arrival to batch run), _errors_total{reason},
// _messages_total{outcome=ack|nak|term}, _model_swaps_total,
// _model_swap_seconds (new version seen to serving),
// _model_version_info{version} (1 for the serving version), each
// labelled by model.
package infer
