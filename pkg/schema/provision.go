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
		if err := retryPlacement(ctx, func() error { _, err := js.CreateOrUpdateStream(ctx, cfg); return err }); err != nil {
			return fmt.Errorf("schema: provision stream %s: %w", cfg.Name, err)
		}
	}
	for _, kv := range []jetstream.KeyValueConfig{s.ModelsKV(replicas), s.SourcesKV(replicas)} {
		if err := retryPlacement(ctx, func() error { _, err := js.CreateOrUpdateKeyValue(ctx, kv); return err }); err != nil {
			return fmt.Errorf("schema: provision KV %s: %w", kv.Bucket, err)
		}
	}
	obj := s.ModelFilesStore(replicas)
	if err := retryPlacement(ctx, func() error { _, err := js.CreateOrUpdateObjectStore(ctx, obj); return err }); err != nil {
		return fmt.Errorf("schema: provision object store %s: %w", obj.Bucket, err)
	}
	return nil
}

// placementWait bounds how long Provision retries a placement refusal.
const placementWait = 30 * time.Second

// retryPlacement runs create, again while JetStream answers "no suitable
// peers for placement" (err_code 10005): in a cluster that is forming, or
// whose route to one server hiccups, the meta leader briefly counts a
// peer as offline and refuses a replicated stream it will place a moment
// later. It gives up after placementWait or when ctx ends, returning the
// last error; any other error returns at once.
func retryPlacement(ctx context.Context, create func() error) error {
	deadline := time.Now().Add(placementWait)
	wait := 100 * time.Millisecond
	for {
		err := create()
		var je jetstream.JetStreamError
		if err == nil || !errors.As(err, &je) || je.APIError() == nil || je.APIError().ErrorCode != jsErrCodeNoSuitablePeers || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// jsErrCodeNoSuitablePeers is JetStream's "no suitable peers for
// placement" (JSClusterNoPeersErrF in the server).
const jsErrCodeNoSuitablePeers jetstream.ErrorCode = 10005

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
