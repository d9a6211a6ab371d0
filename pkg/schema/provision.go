package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Provision creates every stream and bucket Vireo uses under s's prefix, or
// updates them to these configs when they exist, so `vireo up` and each
// service of a cluster can call it at start without ordering between them.
// replicas is 1 for one server, 3 in the compose cluster; keep is how long
// inference inputs are kept for corrections (FRAMES_KEEP; 0 means
// FramesKeepWindow).
func Provision(ctx context.Context, js jetstream.JetStream, s Subjects, replicas int, keep time.Duration) error {
	if keep == 0 {
		keep = FramesKeepWindow
	}
	for _, cfg := range []jetstream.StreamConfig{
		s.FramesStream(replicas),
		s.ResultsStream(replicas),
		s.CorrectionsStream(replicas),
		s.FramesKeepStream(replicas, keep),
	} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("schema: provision stream %s: %w", cfg.Name, err)
		}
	}
	for _, kv := range []jetstream.KeyValueConfig{s.ModelsKV(replicas), s.SourcesKV(replicas)} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("schema: provision KV %s: %w", kv.Bucket, err)
		}
	}
	obj := s.ModelFilesStore(replicas)
	if _, err := js.CreateOrUpdateObjectStore(ctx, obj); err != nil {
		return fmt.Errorf("schema: provision object store %s: %w", obj.Bucket, err)
	}
	return nil
}

// OpenSources returns the SOURCES bucket, creating it when it is missing
// (a service started with provisioning off against a server nobody has
// provisioned yet). ingest writes registrations into it; frames watches it.
func OpenSources(ctx context.Context, js jetstream.JetStream, s Subjects, replicas int) (jetstream.KeyValue, error) {
	cfg := s.SourcesKV(replicas)
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("schema: sources bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
