package schema

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestRetryPlacement: a "no suitable peers" refusal (a cluster whose meta
// leader counts a peer offline for a moment) is retried until the create
// succeeds; any other error is returned at once, as is the refusal when
// ctx ends.
func TestRetryPlacement(t *testing.T) {
	noPeers := fmt.Errorf("wrapped: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"})
	calls := 0
	err := retryPlacement(context.Background(), func() error {
		if calls++; calls < 3 {
			return noPeers
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("after two refusals: %v in %d calls, want success in 3", err, calls)
	}
	other := &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}
	calls = 0
	if err := retryPlacement(context.Background(), func() error { calls++; return other }); !errors.Is(err, other) || calls != 1 {
		t.Fatalf("other error: %v in %d calls, want it returned after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	if err := retryPlacement(ctx, func() error { calls++; return noPeers }); !errors.Is(err, noPeers) || calls != 1 {
		t.Fatalf("ended ctx: %v in %d calls, want the refusal after 1", err, calls)
	}
}
