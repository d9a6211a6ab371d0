package frames

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"vireo/pkg/schema"
	"vireo/pkg/video"
)

// sourceRun is the state of one source's goroutine (runSource).
type sourceRun struct {
	s         *service
	ctx       context.Context
	id        string
	rev       uint64
	reg       schema.SourceRegistration
	log       zerolog.Logger
	src       video.Source
	live      bool
	pub       *publisher
	subject   string
	maxFrames int
	grey      bool // the model takes one grey channel

	batch          []schema.Frame
	deadline       time.Time
	capDropped     int64 // capture drops already counted
	reconnects     int64 // reconnects already reported
	lastReportedAt time.Time
}

// loop reads frames into batches and publishes them until the source ends
// or the ctx is cancelled, then publishes the rest, awaits the acks and
// reports the end.
func (r *sourceRun) loop() {
	defer r.src.Close()
	var end error
	for end == nil {
		wait := r.s.cfg.Poll
		if len(r.batch) > 0 {
			wait = time.Until(r.deadline)
			if wait <= 0 {
				end = r.flush(r.ctx)
				continue
			}
		}
		nctx, cancel := context.WithTimeout(r.ctx, wait)
		f, err := r.src.Next(nctx)
		cancel()
		r.watchCapture()
		if err != nil {
			if pollTick(err, r.ctx.Err(), r.src.Stats().End) {
				continue // poll tick or batch deadline
			}
			end = err
			break
		}
		pix, ch := f.Pixels, 3
		if r.grey {
			pix, ch = video.BGRToGrey(pix), 1
		}
		r.batch = append(r.batch, schema.Frame{
			Source: r.id, Seq: uint64(f.Seq), Captured: f.Captured,
			OrigWidth: f.OrigWidth, OrigHeight: f.OrigHeight,
			Width: f.Width, Height: f.Height, Channels: ch, Pixels: pix,
		})
		if len(r.batch) == 1 {
			r.deadline = time.Now().Add(r.s.cfg.BatchDelay)
		}
		if len(r.batch) >= r.maxFrames {
			end = r.flush(r.ctx)
		}
	}
	// The source ended, failed to publish, or was stopped: publish what was
	// captured and await every ack on a ctx of its own.
	dctx, cancel := detached(r.ctx, 2*r.s.cfg.PublishTimeout)
	defer cancel()
	if !errors.Is(end, errPublish) {
		if err := r.flush(dctx); err != nil {
			end = err
		}
	}
	if err := r.pub.drain(dctx); err != nil && !errors.Is(end, errPublish) {
		end = err
	}
	r.src.Close()
	r.watchCapture()
	cause := context.Cause(r.ctx)
	switch {
	case errors.Is(cause, errDeleted), errors.Is(cause, errReplaced):
		r.finish("deleted", cause.Error())
	case r.ctx.Err() != nil:
		// Not an end of the source: it is read again when the service
		// restarts (batches already stored are deduplicated by Msg-Id
		// within the FRAMES duplicates window).
		r.log.Info().AnErr("last_error", end).Uint64("frames", r.pub.published).Uint64("dropped", r.pub.dropped).Msg("source stopped: service shutting down")
	default:
		r.end(end, reasonOf(end))
	}
}

// end reports a source that ended by itself: io.EOF is a clean end; an
// error wrapping io.EOF (a truncated file) ends with reason eof and an
// error message; anything else fails the source.
func (r *sourceRun) end(err error, reason string) {
	switch {
	case errors.Is(err, io.EOF) && !errors.Is(err, video.ErrTruncated):
		r.finish("eof", "")
	case errors.Is(err, io.EOF):
		r.s.publishError(r.id, r.reg.Model, r.lastSeq(), reason, fmt.Errorf("source %s: %w", r.id, err))
		r.finish("eof", err.Error())
	default:
		r.s.publishError(r.id, r.reg.Model, r.lastSeq(), reason, fmt.Errorf("source %s: %w", r.id, err))
		r.finish("failed", err.Error())
	}
}

func (r *sourceRun) lastSeq() uint64 {
	if r.pub == nil {
		return 0
	}
	return r.pub.lastSeq
}

// finish publishes the EndOfStream event and, unless the registration was
// deleted, records it under EndKey so a restart does not read it again.
func (r *sourceRun) finish(reason, detail string) {
	if len(detail) > schema.MaxMessageLen {
		detail = detail[:schema.MaxMessageLen]
	}
	eos := schema.EndOfStream{
		SchemaVersion: schema.Version, Event: schema.EventEndOfStream,
		Source: r.id, Model: r.reg.Model, Reason: reason, Detail: detail, TS: time.Now().UTC(),
	}
	if r.pub != nil {
		eos.LastSeq, eos.Frames, eos.Dropped = r.pub.lastSeq, r.pub.published, r.pub.dropped
	}
	if err := eos.Validate(); err != nil {
		r.log.Error().Err(err).Msg("end of stream event invalid")
	}
	r.s.publishEnd(eos)
	r.log.Info().Str("reason", reason).Str("detail", detail).Uint64("frames", eos.Frames).
		Uint64("dropped", eos.Dropped).Uint64("last_seq", eos.LastSeq).Msg("source ended")
	if reason == "deleted" {
		return
	}
	b, _ := json.Marshal(EndRecord{Revision: r.rev, End: eos})
	ctx, cancel := detached(r.ctx, r.s.cfg.PublishTimeout)
	defer cancel()
	if _, err := r.s.kv.Put(ctx, EndKey(r.id), b); err != nil {
		r.log.Warn().Err(err).Msg("record end of source")
	}
}

// watchCapture counts the capture's new drops and reports new reconnect
// failures (at most one error message per Poll).
func (r *sourceRun) watchCapture() {
	st := r.src.Stats()
	if d := st.Dropped - r.capDropped; d > 0 {
		r.capDropped = st.Dropped
		r.pub.drop(uint64(d), DropBackpressure)
	}
	if st.Reconnects > r.reconnects && st.LastErr != nil && time.Since(r.lastReportedAt) >= r.s.cfg.Poll {
		r.reconnects = st.Reconnects
		r.lastReportedAt = time.Now()
		r.s.publishError(r.id, r.reg.Model, 0, "source_unreachable",
			fmt.Errorf("source %s: reconnect %d: %w", r.id, st.Reconnects, st.LastErr))
	}
}

// flush encodes and publishes the current batch.
func (r *sourceRun) flush(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	batch := r.batch
	r.batch = r.batch[:0:0]
	data, err := schema.EncodeFrames(r.s.mem, r.reg.Model, batch)
	if err != nil {
		return fmt.Errorf("%w: encode %d frames: %w", errPublish, len(batch), err)
	}
	id, _ := schema.MsgID(r.id, batch[0].Seq)
	return r.pub.publish(ctx, newMsg(r.subject, id, data), len(batch), batch[len(batch)-1].Seq)
}

// pollTick reports whether err, from a Next bounded by the poll or batch
// deadline, is only that deadline passing (ctxErr: the run's own context;
// end: the source's end so far). A source that ends just after the
// deadline fired (end set, frames still queued) is read on: the next Next
// returns its last frames, then its end. Only a source whose own end is a
// deadline stops here.
func pollTick(err, ctxErr, end error) bool {
	if !errors.Is(err, context.DeadlineExceeded) || ctxErr != nil {
		return false
	}
	return end == nil || !errors.Is(end, context.DeadlineExceeded)
}
