package infer

import (
	"errors"
	"fmt"
	"time"

	"vireo/pkg/kernels"
	"vireo/pkg/schema"
)

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("infer: invalid config")

// Config of the infer service. The zero value plus defaults serves every
// model in the store on the CPU.
type Config struct {
	// Prefix is the subject prefix ("" means schema.DefaultPrefix).
	Prefix string `json:"prefix"`
	// Models to serve; empty means every model that has (or gets) a serving
	// version in the model store.
	Models []string `json:"models"`
	// Backend is the compute backend by name ("cpu", "cuda") and Threads
	// caps the CPU backend's threads (0: GOMAXPROCS).
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	// Math is the backend's operand precision for its matrix products and
	// convolutions: "fp32" (default), or "fp16"/"bf16" on the cuda
	// backend (backend.Config.Math).
	Math string `json:"math"`
	// Replicas of the streams, buckets and consumers this service creates
	// (1 for one server, 3 in the compose cluster).
	Replicas int `json:"replicas"`
	// NoProvision skips creating/updating the streams and buckets at start
	// (schema.Provision); the consumer is always created or updated.
	NoProvision bool `json:"no_provision"`
	// NoKeep turns off keeping the input frame of every published result
	// in FRAMES_KEEP (for corrections that name a frame by source and seq).
	NoKeep bool `json:"no_keep"`
	// KeepWindow is how long kept frames stay in FRAMES_KEEP (its max age
	// when this service provisions the streams).
	KeepWindow time.Duration `json:"keep_window"`

	// MaxBatch is the largest batch run at once (the batcher's MaxBatch and
	// the predictor's largest program).
	MaxBatch int `json:"max_batch"`
	// MaxDelay is how long the oldest queued frame may wait for a fuller
	// batch.
	MaxDelay time.Duration `json:"max_delay"`
	// PreferredSizes are batch sizes to form when possible.
	PreferredSizes []int `json:"preferred_sizes"`
	// SourceShare caps one source's share of a batch while other sources
	// wait, in (0,1].
	SourceShare float64 `json:"source_share"`
	// MaxQueued is how many frames may wait in the batcher before the
	// worker stops taking messages (one message's frames always fit).
	MaxQueued int `json:"max_queued"`
	// PullMaxMessages and PullMaxBytes bound the frame messages buffered
	// in the client per model (the bytes in flight from the server); the
	// bytes must hold the largest frame batch (schema.FramesMaxMsgSize) and
	// stay within the consumer's schema.InferMaxReqBytes.
	PullMaxMessages int `json:"pull_max_messages"`
	PullMaxBytes    int `json:"pull_max_bytes"`
	// MaxInFlight is how many computed batches may be publishing their
	// results (awaiting the stream's acks) while the next batch runs; their
	// messages are acked when their publishes are. A batch's acks wait for
	// the stream's writes (with sync_interval always, an fsync per result
	// and per kept frame), which at small batches can take longer than
	// the next batch's compute: with 2 the loop stalled on them.
	MaxInFlight int `json:"max_in_flight"`

	// NakDelay is the redelivery delay after a transient failure.
	NakDelay time.Duration `json:"nak_delay"`
	// ProgressEvery is how often a held message is told InProgress
	// (under schema.InferAckWait).
	ProgressEvery time.Duration `json:"progress_every"`
	// PublishTimeout bounds the wait for the results' publish acks.
	PublishTimeout time.Duration `json:"publish_timeout"`
	// DrainTimeout bounds the work on queued frames at shutdown.
	DrainTimeout time.Duration `json:"drain_timeout"`

	// BackendImpl, when set, is used instead of opening Backend; Run does
	// not close it (`vireo up` shares one backend between services).
	BackendImpl kernels.Backend `json:"-"`
}

func (c *Config) setDefaults() {
	if c.Backend == "" {
		c.Backend = "cpu"
	}
	if c.Math == "" {
		c.Math = kernels.MathFP32
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 16
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 5 * time.Millisecond
	}
	if c.SourceShare == 0 {
		c.SourceShare = 0.5
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = 4 * c.MaxBatch
	}
	if c.PullMaxMessages == 0 {
		c.PullMaxMessages = schema.InferMaxBatch
	}
	if c.PullMaxBytes == 0 {
		c.PullMaxBytes = 2 * schema.FramesMaxMsgSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4
	}
	if c.NakDelay == 0 {
		c.NakDelay = time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = schema.InferAckWait / 3
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.KeepWindow == 0 {
		c.KeepWindow = schema.FramesKeepWindow
	}
}

// Validate reports the first unusable field (after defaults).
func (c Config) Validate() error {
	if _, err := schema.NewSubjects(c.Prefix); err != nil {
		return fmt.Errorf("%w: prefix: %w", ErrConfig, err)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if err := schema.ValidateModel(m); err != nil {
			return fmt.Errorf("%w: models: %w", ErrConfig, err)
		}
		if seen[m] {
			return fmt.Errorf("%w: models: %q listed twice", ErrConfig, m)
		}
		seen[m] = true
	}
	bad := func(field string, got any, want string) error {
		return fmt.Errorf("%w: %s (got=%v, want %s)", ErrConfig, field, got, want)
	}
	switch {
	case c.Threads < 0:
		return bad("threads", c.Threads, ">=0")
	case c.Math == "" || kernels.CheckMath(c.Math) != nil:
		return bad("math", c.Math, "fp32, fp16 or bf16")
	case c.Replicas < 1 || c.Replicas > 5:
		return bad("replicas", c.Replicas, "1..5")
	case c.MaxBatch < 1 || c.MaxBatch > schema.MaxFramesPerBatch:
		return bad("max_batch", c.MaxBatch, fmt.Sprintf("1..%d", schema.MaxFramesPerBatch))
	case c.MaxDelay < 0 || c.MaxDelay > time.Minute:
		return bad("max_delay", c.MaxDelay, "0..1m")
	case !(c.SourceShare > 0 && c.SourceShare <= 1):
		return bad("source_share", c.SourceShare, "in (0,1]")
	case c.MaxQueued < c.MaxBatch:
		return bad("max_queued", c.MaxQueued, fmt.Sprintf(">= max_batch (%d)", c.MaxBatch))
	case c.PullMaxMessages < 1 || c.PullMaxMessages > schema.InferMaxBatch:
		return bad("pull_max_messages", c.PullMaxMessages, fmt.Sprintf("1..%d (the consumer's max request batch)", schema.InferMaxBatch))
	case c.PullMaxBytes < schema.FramesMaxMsgSize || c.PullMaxBytes > schema.InferMaxReqBytes:
		return bad("pull_max_bytes", c.PullMaxBytes, fmt.Sprintf("%d..%d", schema.FramesMaxMsgSize, schema.InferMaxReqBytes))
	case c.MaxInFlight < 1 || c.MaxInFlight > 64:
		return bad("max_in_flight", c.MaxInFlight, "1..64")
	case c.NakDelay <= 0:
		return bad("nak_delay", c.NakDelay, "> 0")
	case c.ProgressEvery <= 0 || c.ProgressEvery >= schema.InferAckWait:
		return bad("progress_every", c.ProgressEvery, fmt.Sprintf("in (0, %v)", schema.InferAckWait))
	case c.PublishTimeout <= 0:
		return bad("publish_timeout", c.PublishTimeout, "> 0")
	case c.DrainTimeout <= 0:
		return bad("drain_timeout", c.DrainTimeout, "> 0")
	case c.KeepWindow < time.Minute || c.KeepWindow > keepWindowMax:
		return bad("keep_window", c.KeepWindow, fmt.Sprintf("1m..%v", keepWindowMax))
	}
	for _, s := range c.PreferredSizes {
		if s < 1 || s > c.MaxBatch {
			return bad("preferred_sizes", c.PreferredSizes, fmt.Sprintf("each in 1..%d", c.MaxBatch))
		}
	}
	return nil
}

// Check validates c as Run will, after defaults, without changing c.
func (c Config) Check() error {
	c.setDefaults()
	return c.Validate()
}
