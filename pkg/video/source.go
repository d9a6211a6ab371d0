package video

import (
	"context"
	"time"
)

// Source yields frames in seq order until it ends.
//
// Next blocks until a frame is available, the source ends or ctx is done.
// When the source ends, Next returns its end error from then on:
//   - io.EOF: a file (or an Images list) was read to its end;
//   - an error wrapping both ErrTruncated and io.EOF: a file ended before the
//     frame count its container declares (damaged file);
//   - ErrTooDamaged, ErrReconnects, ErrOpen, ...: a failure, with its cause;
//   - context.Canceled / DeadlineExceeded: the ctx given to Open* ended;
//   - ErrClosed: Close was called.
//
// A ctx given to Next only bounds that call (Next returns ctx.Err() and the
// source keeps going). Close stops the source, joins its goroutine and
// releases every OpenCV object; it is safe to call more than once and from
// any goroutine. Stats may be called at any time.
type Source interface {
	Next(ctx context.Context) (Frame, error)
	Stats() Stats
	Close() error
}

// Kind says what a source reads.
type Kind int

const (
	KindFile Kind = iota + 1
	KindURL
	KindDevice
	KindImages
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindURL:
		return "url"
	case KindDevice:
		return "device"
	case KindImages:
		return "images"
	}
	return "unknown"
}

// Live reports whether the kind drops the oldest frame under backpressure.
func (k Kind) Live() bool { return k == KindURL || k == KindDevice }

// Stats are a source's counters (a snapshot).
type Stats struct {
	Kind Kind
	// Decoded: frames decoded successfully; the next frame gets Seq=Decoded.
	Decoded int64
	// Emitted: frames kept by sampling and handed to the queue.
	Emitted int64
	// Dropped: frames a live source discarded (oldest first) because the
	// consumer was behind. Always 0 for files. The consumer received
	// Emitted - Dropped - (still queued) frames.
	Dropped int64
	// Damaged: frames skipped because they failed to decode before the
	// declared end of a file, or decoded to an empty/malformed image; for
	// Images, inputs that failed validation or decoding.
	Damaged int64
	// Reconnects: open attempts of a live source after the first one.
	Reconnects int64
	// Declared: the frame count the file's container declares (0: unknown).
	Declared int64
	// LastErr: the last non-fatal error (damaged frame, failed open).
	LastErr error
	// End: nil while the source runs, then why it ended (see Source).
	End error
	// Started: when the source was opened.
	Started time.Time
}
