package frames

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestPollTick: a deadline from the poll is a tick, also when the source
// has just ended (its queued frames and its end come on the next call:
// treating it as the end lost them, and failed the source with "context
// deadline exceeded"); a cancelled run, another error, or a source whose
// own end is a deadline are not.
func TestPollTick(t *testing.T) {
	dl := context.DeadlineExceeded
	for _, tc := range []struct {
		name             string
		err, ctxErr, end error
		want             bool
	}{
		{"tick", dl, nil, nil, true},
		{"tick as the source ends", dl, nil, io.EOF, true},
		{"tick after a decode failure end", dl, nil, errors.New("decode: broken"), true},
		{"run cancelled", dl, context.Canceled, nil, false},
		{"run timed out", dl, dl, nil, false},
		{"source's own end is a deadline", fmt.Errorf("open url: %w", dl), nil, fmt.Errorf("open url: %w", dl), false},
		{"end of stream", io.EOF, nil, io.EOF, false},
	} {
		if got := pollTick(tc.err, tc.ctxErr, tc.end); got != tc.want {
			t.Errorf("%s: pollTick = %v, want %v", tc.name, got, tc.want)
		}
	}
}
