package infer

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/schema"
)

// pubJob is one computed batch in the publish stage. The loop hands it
// over after predict and takes it back on worker.sent; in between only the
// stage's goroutines touch it, one after the other (sender, then acker).
// They read the held messages' immutable parts (reply subject, frames) and
// never their loop-owned state (pending, done): a message is released only
// when the loop settles its last job.
type pubJob struct {
	refs    []ref
	frames  []schema.Frame // the inputs: views into the held messages' Arrow buffers
	results []schema.Result

	futs   []pubFuture              // results: JSON per frame, then the Arrow batch
	keeps  []jetstream.PubAckFuture // kept frames
	bad    int                      // frames that could not be kept
	failed map[*msgState]error      // messages with a result not published
}

// pubFuture is one publish ack awaited; st is nil for the Arrow result
// batch, which concerns every message of the job.
type pubFuture struct {
	f  jetstream.PubAckFuture
	st *msgState
}

// publishStage is the worker's sender and acker goroutines. The sender
// encodes and publishes a job's results and kept frames without waiting;
// the acker awaits their acks in job order and hands the job back to the
// loop. So the results of batch N are encoded, sent and stored while batch
// N+1 runs on the backend, and at most Config.MaxInFlight batches are
// between predict and settle (the loop counts them in worker.inflight;
// every channel holds that many, so no send in the stage ever blocks the
// loop for longer than its own bound).
type publishStage struct {
	w     *worker
	toAck chan *pubJob
	wg    sync.WaitGroup
}

func (w *worker) startPublish() *publishStage {
	p := &publishStage{w: w, toAck: make(chan *pubJob, w.cfg.MaxInFlight)}
	p.wg.Go(func() {
		defer close(p.toAck)
		for j := range w.toSend {
			w.send(j)
			p.toAck <- j
		}
	})
	p.wg.Go(func() {
		for j := range p.toAck {
			w.await(j)
			w.sent <- j
		}
	})
	return p
}

// stop ends the stage once the jobs handed to it are through, and joins
// its goroutines. The loop has settled every job before (awaitInFlight).
func (p *publishStage) stop() {
	close(p.w.toSend)
	p.wg.Wait()
}

// send publishes each result as JSON on <p>.results.<model>.<source> (and
// to the message's reply subject), the batch as Arrow on
// <p>.results.arrow.<model>, and (unless NoKeep) each input frame on
// FRAMES_KEEP, all asynchronously.
func (w *worker) send(j *pubJob) {
	j.failed = map[*msgState]error{}
	j.futs = make([]pubFuture, 0, len(j.results)+1)
	for i := range j.results {
		r := &j.results[i]
		st := j.refs[i].st
		if r.LatencyMS = ms(time.Since(r.TS)); r.LatencyMS < 0 {
			r.LatencyMS = 0
		}
		data, err := json.Marshal(r)
		if err != nil {
			j.failed[st] = err
			continue
		}
		subj, err := w.s.subj.Results(w.model, r.Source)
		if err != nil {
			j.failed[st] = err
			continue
		}
		m := nats.NewMsg(subj)
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, r.Source+"/"+strconv.FormatUint(r.Seq, 10)+"/"+r.ModelVersion)
		f, err := w.s.js.PublishMsgAsync(m)
		if err != nil {
			j.failed[st] = fmt.Errorf("publish %s: %w", subj, err)
			continue
		}
		j.futs = append(j.futs, pubFuture{f, st})
		if st.reply != "" {
			if err := w.s.deps.NC.Publish(st.reply, data); err != nil {
				w.log.Warn().Err(err).Str("subject", st.reply).Msg("reply")
			}
		}
	}
	if arrowBytes, err := schema.EncodeResults(w.mem, w.model, j.results); err != nil {
		w.log.Error().Err(err).Msg("encode arrow results")
		j.failAll(err)
	} else {
		subj, _ := w.s.subj.ResultsArrow(w.model)
		m := nats.NewMsg(subj)
		m.Data = arrowBytes
		m.Header.Set(schema.HeaderSchemaVersion, strconv.Itoa(schema.Version))
		if f, err := w.s.js.PublishMsgAsync(m); err != nil {
			j.failAll(err)
		} else {
			j.futs = append(j.futs, pubFuture{f, nil})
		}
	}
	w.keep(j)
}

func (j *pubJob) failAll(err error) {
	for _, r := range j.refs {
		j.failed[r.st] = err
	}
}

// await waits for the acks of a job's publishes, bounded by PublishTimeout
// and not cut short when the worker's ctx ends (shutdown), so a published
// batch is acked, not given back and run again after a restart.
func (w *worker) await(j *pubJob) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PublishTimeout)
	defer cancel()
	for _, p := range j.futs {
		var err error
		select {
		case <-p.f.Ok():
		case err = <-p.f.Err():
		case <-ctx.Done():
			err = fmt.Errorf("publish ack: %w", ctx.Err())
		}
		if err == nil {
			continue
		}
		if p.st != nil {
			j.failed[p.st] = err
		} else {
			j.failAll(err)
		}
	}
	w.awaitKept(ctx, j)
	if len(j.failed) > 0 {
		w.s.met.errors.WithLabelValues(w.model, ReasonPublish).Inc()
		for _, err := range j.failed {
			w.log.Warn().Err(err).Int("messages", len(j.failed)).Msg("publish failed; messages given back")
			break
		}
	}
}
