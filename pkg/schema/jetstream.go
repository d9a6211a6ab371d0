package schema

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream, bucket and consumer base names (see Subjects.StreamName).
const (
	StreamFrames      = "FRAMES"
	StreamResults     = "RESULTS"
	StreamCorrections = "CORRECTIONS"
	StreamFramesKeep  = "FRAMES_KEEP"
	BucketModels      = "MODELS"      // KV: serving version per model
	BucketModelFiles  = "MODEL_FILES" // Object Store: ONNX files and manifests
	BucketSources     = "SOURCES"     // KV: source registrations the frames service runs
)

// Defaults of the JetStream configs. The returned configs are plain structs:
// a service may change any field before creating the stream. JetStream
// reserves each stream's MaxBytes up front, so the defaults are sized to
// fit a laptop's `vireo up`: all streams together reserve 1 GiB of memory
// and 16 GiB of file store (the server refuses a stream that does not fit,
// with "insufficient storage resources"); production raises them.
const (
	FramesMaxAge      = 10 * time.Minute
	FramesMaxBytes    = 1 << 30 // memory storage: bounded so a stalled infer cannot exhaust RAM
	FramesMaxMsgSize  = 8 << 20 // one Arrow batch; the server's max_payload must allow it
	FramesDuplicates  = 2 * time.Minute
	ResultsMaxAge     = 24 * time.Hour
	ResultsMaxBytes   = 4 << 30
	CorrectionsBytes  = 8 << 30 // generous for JSON (DiscardNew: a full stream refuses, never drops)
	CorrectionsMsgMax = MaxImageBytes + 1<<20
	CorrectionsDups   = 10 * time.Minute
	FramesKeepWindow  = 24 * time.Hour
	FramesKeepBytes   = 4 << 30
	ModelHistory      = 64 // KV history: the audit trail of serving versions (max 64)
	SourcesHistory    = 8  // KV history of a source registration
	InferAckWait      = 30 * time.Second
	InferMaxDeliver   = 5
	InferMaxAckPend   = 64       // frame batches in flight per consumer
	InferMaxBatch     = 16       // messages per pull request
	InferMaxReqBytes  = 32 << 20 // bytes per pull request: well under a client's 64 MiB pending limit
	InferMaxExpires   = 30 * time.Second
)

// FramesStream is FRAMES: Arrow frame batches, memory storage (frames can
// be re-read from their source, and the sync cost of file storage with
// sync_interval always must not fall on the frame path), limits retention
// with max age and max bytes, DiscardOld (live sources drop the oldest),
// and a duplicates window for Nats-Msg-Id dedupe.
func (s Subjects) FramesStream(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              s.StreamName(StreamFrames),
		Description:       "Vireo frame batches (Arrow IPC), one message per batch",
		Subjects:          []string{s.FramesAll()},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          FramesMaxBytes,
		Discard:           jetstream.DiscardOld,
		MaxAge:            FramesMaxAge,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        FramesMaxMsgSize,
		Storage:           jetstream.MemoryStorage,
		Replicas:          replicas,
		Duplicates:        FramesDuplicates,
		Metadata:          map[string]string{MetaVersion: itoa(Version)},
	}
}

// ResultsStream is RESULTS: JSON and Arrow results, file storage, limits
// retention with max age and max bytes.
func (s Subjects) ResultsStream(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              s.StreamName(StreamResults),
		Description:       "Vireo results: JSON per frame and Arrow batches",
		Subjects:          []string{s.ResultsAll()},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          ResultsMaxBytes,
		Discard:           jetstream.DiscardOld,
		MaxAge:            ResultsMaxAge,
		MaxMsgsPerSubject: -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        FramesDuplicates,
		Metadata:          map[string]string{MetaVersion: itoa(Version)},
	}
}

// CorrectionsStream is CORRECTIONS: the users' work, never discarded: file
// storage, no max age, DiscardNew (when the generous byte limit is reached
// the stream refuses new corrections with an error instead of dropping old
// ones), DenyDelete and DenyPurge, and a duplicates window so a retried
// submit is stored once. Run the server with sync_interval always.
func (s Subjects) CorrectionsStream(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              s.StreamName(StreamCorrections),
		Description:       "Vireo corrections (JSON); never discarded",
		Subjects:          []string{s.CorrectionsAll()},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          CorrectionsBytes,
		Discard:           jetstream.DiscardNew,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        CorrectionsMsgMax,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        CorrectionsDups,
		DenyDelete:        true,
		DenyPurge:         true,
		Metadata:          map[string]string{MetaVersion: itoa(Version)},
	}
}

// FramesKeepStream is FRAMES_KEEP: the frame behind each published result,
// one single-frame Arrow batch per subject <p>.kept.<model>.<source>.<seq>
// (Subjects.Kept), kept for window (0: FramesKeepWindow) so a correction
// that names (source, seq) can fetch its pixels with a direct get of the
// last message on that subject. File storage, limits, DiscardOld.
func (s Subjects) FramesKeepStream(replicas int, window time.Duration) jetstream.StreamConfig {
	if window <= 0 {
		window = FramesKeepWindow
	}
	return jetstream.StreamConfig{
		Name:              s.StreamName(StreamFramesKeep),
		Description:       "Vireo frames that produced results, for corrections",
		Subjects:          []string{s.KeptAll()},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          FramesKeepBytes,
		Discard:           jetstream.DiscardOld,
		MaxAge:            window,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        FramesMaxMsgSize,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        FramesDuplicates,
		AllowDirect:       true,
		Metadata:          map[string]string{MetaVersion: itoa(Version)},
	}
}

// InferConsumer is the durable pull consumer that infer replicas of model
// share on FRAMES: explicit acks (after the results are published), AckWait
// with InProgress for long batches, bounded redeliveries, and bounded pulls
// (MaxAckPending, MaxRequestBatch, MaxRequestMaxBytes) so no replica can
// hold or request more than it can process.
func (s Subjects) InferConsumer(model string, replicas int) (jetstream.ConsumerConfig, error) {
	subj, err := s.Frames(model)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	return jetstream.ConsumerConfig{
		Durable:            "infer-" + model,
		Description:        "Vireo infer workers for model " + model,
		DeliverPolicy:      jetstream.DeliverAllPolicy,
		AckPolicy:          jetstream.AckExplicitPolicy,
		AckWait:            InferAckWait,
		MaxDeliver:         InferMaxDeliver,
		FilterSubject:      subj,
		ReplayPolicy:       jetstream.ReplayInstantPolicy,
		MaxWaiting:         64,
		MaxAckPending:      InferMaxAckPend,
		MaxRequestBatch:    InferMaxBatch,
		MaxRequestExpires:  InferMaxExpires,
		MaxRequestMaxBytes: InferMaxReqBytes,
		Replicas:           replicas,
		Metadata:           map[string]string{MetaVersion: itoa(Version)},
	}, nil
}

// ModelsKV is the KV bucket of serving versions: key <model>, value the
// serving version's manifest reference. History keeps the pointer's past
// values as an audit trail (and the rollback targets). File storage.
func (s Subjects) ModelsKV(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      s.StreamName(BucketModels),
		Description: "Vireo serving version per model (history: audit trail)",
		History:     ModelHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Metadata:    map[string]string{MetaVersion: itoa(Version)},
	}
}

// ModelFilesStore is the Object Store bucket of model files (ONNX and
// manifest per version). File storage, no TTL: versions are the users' work.
func (s Subjects) ModelFilesStore(replicas int) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      s.StreamName(BucketModelFiles),
		Description: "Vireo model files (ONNX + manifest per version)",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Metadata:    map[string]string{MetaVersion: itoa(Version)},
	}
}

// SourcesKV is the KV bucket of video sources: key <source id> (a valid
// name, so never containing '.'), value the JSON SourceRegistration. The
// frames service watches the bucket: a new or changed key (re)starts that
// source, a deleted key stops it. Keys "<id>.<suffix>" (never a source id)
// are free for per-source state such as a status. File storage: the
// registrations are the users' configuration.
func (s Subjects) SourcesKV(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      s.StreamName(BucketSources),
		Description: "Vireo video sources (JSON SourceRegistration per source id)",
		History:     SourcesHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Metadata:    map[string]string{MetaVersion: itoa(Version)},
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
