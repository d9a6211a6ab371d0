package frames

import (
	"context"
	"errors"
	"fmt"
	"time"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("frames: invalid config")

// Models is what the service needs from the model store: the serving
// version's manifest, for the input size frames are resized to.
// *modelstore.Store implements it.
type Models interface {
	ServingManifest(ctx context.Context, modelName string) (modelstore.Pointer, model.Manifest, error)
}

var _ Models = (*modelstore.Store)(nil)

// Config of the frames service. The zero value plus defaults runs every
// source registered in the SOURCES bucket.
type Config struct {
	// Prefix is the subject prefix ("" means schema.DefaultPrefix).
	Prefix string `json:"prefix"`
	// Replicas of the streams and buckets this service creates.
	Replicas int `json:"replicas"`
	// NoProvision skips creating/updating the streams and buckets at start.
	NoProvision bool `json:"no_provision"`

	// BatchFrames is the most frames in one published batch (fewer when
	// the frames would not fit schema.FramesMaxMsgSize or the server's max
	// payload). BatchDelay is how long a batch waits for more frames after
	// its first one.
	BatchFrames int           `json:"batch_frames"`
	BatchDelay  time.Duration `json:"batch_delay"`
	// MaxInFlight is how many batches of one source may wait for their
	// JetStream ack; a file source waits when it is reached (flow control),
	// a live source keeps capturing and its capture ring drops the oldest
	// frames meanwhile.
	MaxInFlight int `json:"max_in_flight"`
	// PublishTimeout bounds the wait for one publish ack; PublishRetries is
	// how many times a file source republishes a batch whose ack failed
	// (same Nats-Msg-Id, so a batch stored twice is deduplicated) before
	// the source fails. Live sources drop (and count) a failed batch.
	PublishTimeout time.Duration `json:"publish_timeout"`
	PublishRetries int           `json:"publish_retries"`

	// LiveQueue is the capture ring of live sources (URL, device) in
	// frames: small keeps latency low; the oldest frame is dropped when it
	// is full.
	LiveQueue int `json:"live_queue"`
	// MaxReconnects ends a live source (reason failed) after this many
	// failed reconnects in a row; -1 means retry forever.
	MaxReconnects int `json:"max_reconnects"`
	// BackoffMin and BackoffMax bound the reconnect backoff of live sources.
	BackoffMin time.Duration `json:"backoff_min"`
	BackoffMax time.Duration `json:"backoff_max"`
	// ModelRetry is how often a source whose model has no serving version
	// yet asks the model store again.
	ModelRetry time.Duration `json:"model_retry"`
	// Poll is how long one wait for a frame lasts before the source checks
	// its capture's state (reconnect errors, drops).
	Poll time.Duration `json:"poll"`

	// ModelsImpl, when set, is used instead of opening the model store
	// (`vireo up` shares one; tests). Run does not close it.
	ModelsImpl Models `json:"-"`
}

func (c *Config) setDefaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.BatchFrames == 0 {
		c.BatchFrames = 8
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = 20 * time.Millisecond
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.PublishRetries == 0 {
		c.PublishRetries = 3
	}
	if c.LiveQueue == 0 {
		c.LiveQueue = 2
	}
	if c.MaxReconnects == 0 {
		c.MaxReconnects = 30
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.ModelRetry == 0 {
		c.ModelRetry = 2 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
}

// Validate reports the first unusable field (after defaults).
func (c Config) Validate() error {
	if _, err := schema.NewSubjects(c.Prefix); err != nil {
		return fmt.Errorf("%w: prefix: %w", ErrConfig, err)
	}
	bad := func(field string, got any, want string) error {
		return fmt.Errorf("%w: %s (got=%v, want %s)", ErrConfig, field, got, want)
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return bad("replicas", c.Replicas, "1..5")
	case c.BatchFrames < 1 || c.BatchFrames > schema.MaxFramesPerBatch:
		return bad("batch_frames", c.BatchFrames, fmt.Sprintf("1..%d", schema.MaxFramesPerBatch))
	case c.BatchDelay < 0 || c.BatchDelay > 10*time.Second:
		return bad("batch_delay", c.BatchDelay, "0..10s")
	case c.MaxInFlight < 1 || c.MaxInFlight > 1024:
		return bad("max_in_flight", c.MaxInFlight, "1..1024")
	case c.PublishTimeout <= 0:
		return bad("publish_timeout", c.PublishTimeout, "> 0")
	case c.PublishRetries < 0 || c.PublishRetries > 100:
		return bad("publish_retries", c.PublishRetries, "0..100")
	case c.LiveQueue < 1 || c.LiveQueue > 1024:
		return bad("live_queue", c.LiveQueue, "1..1024")
	case c.MaxReconnects < -1 || c.MaxReconnects == 0:
		return bad("max_reconnects", c.MaxReconnects, ">= 1, or -1 for unlimited")
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return bad("backoff", fmt.Sprintf("%v..%v", c.BackoffMin, c.BackoffMax), "0 < min <= max")
	case c.ModelRetry <= 0:
		return bad("model_retry", c.ModelRetry, "> 0")
	case c.Poll <= 0:
		return bad("poll", c.Poll, "> 0")
	}
	return nil
}

// Check applies the defaults to a copy of c and validates it: what Run will
// accept (for command-line validation).
func (c Config) Check() error {
	c.setDefaults()
	return c.Validate()
}
