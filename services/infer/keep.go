package infer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/schema"
)

// ReasonKeep counts frames whose copy in FRAMES_KEEP could not be stored
// (errors_total{reason="keep"}).
const ReasonKeep = "keep"

// keep stores the input frame of every result of a job as a one-frame
// Arrow batch on <p>.kept.<model>.<source>.<seq> (FRAMES_KEEP, kept for
// Config.KeepWindow), so a correction naming (source, seq) can get its
// pixels back. The sender publishes the kept frames right after the
// results, and the acker awaits both before the messages are acked, so a
// frame whose result was acked is kept. (A frame whose result failed may
// be kept too: its message is redelivered, and the kept copy, stored
// under the same Nats-Msg-Id, is deduplicated.)
//
// Keeping is best effort: a frame that cannot be kept is logged and
// counted, and its message is still acked (its result was published; a
// correction naming it gets a clear "frame not kept" error at intake).
func (w *worker) keep(j *pubJob) {
	if w.cfg.NoKeep {
		return
	}
	j.keeps = make([]jetstream.PubAckFuture, 0, len(j.frames))
	for i, f := range j.frames {
		if _, failed := j.failed[j.refs[i].st]; failed {
			continue
		}
		if err := w.keepOne(f, j.results[i].ModelVersion, &j.keeps); err != nil {
			j.bad++
			w.log.Warn().Err(err).Str("source", f.Source).Uint64("seq", f.Seq).Msg("keep frame")
		}
	}
}

// awaitKept waits for the kept frames' acks (within ctx, the job's
// publish bound) and counts the frames not kept.
func (w *worker) awaitKept(ctx context.Context, j *pubJob) {
	for _, f := range j.keeps {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			j.bad++
			w.log.Warn().Err(err).Str("subject", f.Msg().Subject).Msg("keep frame")
		case <-ctx.Done():
			j.bad++
		}
	}
	if j.bad > 0 {
		w.s.met.errors.WithLabelValues(w.model, ReasonKeep).Add(float64(j.bad))
	}
}

func (w *worker) keepOne(f schema.Frame, version string, futs *[]jetstream.PubAckFuture) error {
	subj, err := w.s.subj.Kept(w.model, f.Source, f.Seq)
	if err != nil {
		return err
	}
	b, err := schema.EncodeFrames(w.mem, w.model, []schema.Frame{f})
	if err != nil {
		return fmt.Errorf("encode kept frame: %w", err)
	}
	id, err := schema.MsgID(f.Source, f.Seq)
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(schema.HeaderSchemaVersion, fmt.Sprint(schema.Version))
	m.Header.Set(HeaderKeptVersion, version)
	fut, err := w.s.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subj, err)
	}
	*futs = append(*futs, fut)
	return nil
}

// HeaderKeptVersion on a kept frame names the model version whose result
// it produced.
const HeaderKeptVersion = "Vireo-Model-Version"

// keepWindowMax bounds Config.KeepWindow (a year).
const keepWindowMax = 365 * 24 * time.Hour
