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

// keep stores the input frame of every published result as a one-frame
// Arrow batch on <p>.kept.<model>.<source>.<seq> (FRAMES_KEEP, kept for
// Config.KeepWindow), so a correction naming (source, seq) can get its
// pixels back. It runs after publish and before the messages are acked,
// for the frames whose results were published (not in failed), and waits
// for the stream's acks so a frame whose result was acked is kept.
//
// Keeping is best effort: a frame that cannot be kept is logged and
// counted, and its message is still acked (its result was published; a
// correction naming it gets a clear "frame not kept" error at intake).
func (w *worker) keep(ctx context.Context, refs []ref, results []schema.Result, failed map[*msgState]error) {
	if w.cfg.NoKeep {
		return
	}
	var futs []jetstream.PubAckFuture
	bad := 0
	for i, r := range refs {
		if failed[r.st] != nil || r.st.done {
			continue
		}
		f := r.st.fb.Frame(r.i)
		if err := w.keepOne(f, results[i].ModelVersion, &futs); err != nil {
			bad++
			w.log.Warn().Err(err).Str("source", f.Source).Uint64("seq", f.Seq).Msg("keep frame")
		}
	}
	// Bounded, and not cut short when ctx ends meanwhile (as in publish).
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.PublishTimeout)
	defer cancel()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			bad++
			w.log.Warn().Err(err).Str("subject", f.Msg().Subject).Msg("keep frame")
		case <-pctx.Done():
			bad++
		}
	}
	if bad > 0 {
		w.s.met.errors.WithLabelValues(w.model, ReasonKeep).Add(float64(bad))
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
