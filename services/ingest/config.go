package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
	"vireo/pkg/video"
)

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("ingest: invalid config")

// Models is what ingest reads from the model store. *modelstore.Store
// implements it.
type Models interface {
	ServingManifest(ctx context.Context, modelName string) (modelstore.Pointer, model.Manifest, error)
	List(ctx context.Context) ([]string, error)
	Versions(ctx context.Context, modelName string) ([]modelstore.Version, error)
	File(ctx context.Context, modelName, version, name string) ([]byte, error)
}

var _ Models = (*modelstore.Store)(nil)

// Config of the ingest service.
type Config struct {
	// Prefix is the subject prefix ("" means schema.DefaultPrefix).
	Prefix string `json:"prefix"`
	// Replicas of the streams and buckets this service creates.
	Replicas int `json:"replicas"`
	// NoProvision skips creating/updating the streams and buckets at start.
	NoProvision bool `json:"no_provision"`
	// Addr is the HTTP API's listen address (also /metrics, /healthz,
	// /readyz).
	Addr string `json:"addr"`

	// MaxBodyBytes bounds an image body (HTTP and NATS, where the server's
	// max payload may bound it further); MaxWidth,
	// MaxHeight and MaxPixels bound what its header may declare, checked
	// before any pixel is decoded (decompression bombs).
	MaxBodyBytes int   `json:"max_body_bytes"`
	MaxWidth     int   `json:"max_width"`
	MaxHeight    int   `json:"max_height"`
	MaxPixels    int64 `json:"max_pixels"`
	// MaxJSONBytes bounds a JSON request body (source registration).
	MaxJSONBytes int64 `json:"max_json_bytes"`
	// MaxInFlight bounds concurrent predictions (HTTP and NATS together);
	// one more is refused with 429 / reason "busy".
	MaxInFlight int `json:"max_in_flight"`
	// PredictTimeout bounds the wait for a prediction's result.
	PredictTimeout time.Duration `json:"predict_timeout"`
	// RequestTimeout bounds model store and bucket calls of a request.
	RequestTimeout time.Duration `json:"request_timeout"`
	// ManifestTTL is how long a model's serving manifest is cached.
	ManifestTTL time.Duration `json:"manifest_ttl"`

	// ModelsImpl, when set, is used instead of opening the model store.
	ModelsImpl Models `json:"-"`
	// OnListen, when set, receives the HTTP listener's address (tests use
	// Addr "127.0.0.1:0").
	OnListen func(net.Addr) `json:"-"`
}

func (c *Config) setDefaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	lim := video.DefaultImageLimits()
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = lim.MaxBytes
	}
	if c.MaxWidth == 0 {
		c.MaxWidth = lim.MaxWidth
	}
	if c.MaxHeight == 0 {
		c.MaxHeight = lim.MaxHeight
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = lim.MaxPixels
	}
	if c.MaxJSONBytes == 0 {
		c.MaxJSONBytes = 64 << 10
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 64
	}
	if c.PredictTimeout == 0 {
		c.PredictTimeout = 30 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ManifestTTL == 0 {
		c.ManifestTTL = time.Second
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
	case c.MaxBodyBytes < 1 || c.MaxBodyBytes > 256<<20:
		return bad("max_body_bytes", c.MaxBodyBytes, "1..256 MiB")
	case c.MaxWidth < 1 || c.MaxWidth > schema.MaxOriginalDim:
		return bad("max_width", c.MaxWidth, fmt.Sprintf("1..%d", schema.MaxOriginalDim))
	case c.MaxHeight < 1 || c.MaxHeight > schema.MaxOriginalDim:
		return bad("max_height", c.MaxHeight, fmt.Sprintf("1..%d", schema.MaxOriginalDim))
	case c.MaxPixels < 1:
		return bad("max_pixels", c.MaxPixels, "> 0")
	case c.MaxJSONBytes < 1024:
		return bad("max_json_bytes", c.MaxJSONBytes, ">= 1024")
	case c.MaxInFlight < 1:
		return bad("max_in_flight", c.MaxInFlight, ">= 1")
	case c.PredictTimeout <= 0:
		return bad("predict_timeout", c.PredictTimeout, "> 0")
	case c.RequestTimeout <= 0:
		return bad("request_timeout", c.RequestTimeout, "> 0")
	case c.ManifestTTL < 0:
		return bad("manifest_ttl", c.ManifestTTL, ">= 0")
	}
	return nil
}

func (c Config) limits() video.ImageLimits {
	return video.ImageLimits{MaxBytes: c.MaxBodyBytes, MaxWidth: c.MaxWidth, MaxHeight: c.MaxHeight, MaxPixels: c.MaxPixels}
}

// Check applies the defaults to a copy of c and validates it: what Run will
// accept (for command-line validation).
func (c Config) Check() error {
	c.setDefaults()
	return c.Validate()
}
