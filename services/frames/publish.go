package frames

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// publisher publishes one source's batches to JetStream with at most
// MaxInFlight unacknowledged (flow control), in order, and keeps the
// source's counts. It belongs to the source's goroutine.
type publisher struct {
	js     jetstream.JetStream
	cfg    *Config
	met    *metrics
	model  string
	source string
	live   bool
	log    zerolog.Logger

	q         []flight
	published uint64 // frames acknowledged
	dropped   uint64 // frames dropped (capture ring, failed publishes of a live source)
	lastSeq   uint64 // seq of the last acknowledged frame
}

type flight struct {
	fut     jetstream.PubAckFuture
	msg     *nats.Msg
	n       int
	lastSeq uint64
}

// publish sends msg (n frames, the last with seq lastSeq), first waiting
// for the oldest ack while MaxInFlight batches are unacknowledged.
func (p *publisher) publish(ctx context.Context, msg *nats.Msg, n int, lastSeq uint64) error {
	if len(p.q) >= p.cfg.MaxInFlight {
		t0 := time.Now()
		for len(p.q) >= p.cfg.MaxInFlight {
			if err := p.settleOldest(ctx); err != nil {
				return err
			}
		}
		p.met.ackWait.Observe(time.Since(t0).Seconds())
	}
	fut, err := p.js.PublishMsgAsync(copyMsg(msg))
	if err != nil {
		return p.failed(ctx, flight{msg: msg, n: n, lastSeq: lastSeq}, err)
	}
	p.q = append(p.q, flight{fut: fut, msg: msg, n: n, lastSeq: lastSeq})
	p.met.batchSize.Observe(float64(n))
	return nil
}

// drain waits for every outstanding ack.
func (p *publisher) drain(ctx context.Context) error {
	for len(p.q) > 0 {
		if err := p.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settleOldest waits for the oldest ack (at most PublishTimeout, whatever
// ctx says: a stopping source still learns the fate of what it sent) and
// handles a failure with ctx.
func (p *publisher) settleOldest(ctx context.Context) error {
	f := p.q[0]
	t := time.NewTimer(p.cfg.PublishTimeout)
	defer t.Stop()
	var err error
	select {
	case <-f.fut.Ok():
	case err = <-f.fut.Err():
	case <-t.C:
		err = fmt.Errorf("no ack within %v", p.cfg.PublishTimeout)
	}
	p.q = p.q[1:]
	if err != nil {
		return p.failed(ctx, f, err)
	}
	p.acked(f)
	return nil
}

func (p *publisher) acked(f flight) {
	p.published += uint64(f.n)
	p.lastSeq = f.lastSeq
	p.met.frames.WithLabelValues(p.model, p.source).Add(float64(f.n))
	p.met.batches.WithLabelValues(p.model).Inc()
}

// Reasons of vireo_frames_dropped_total.
const (
	// DropBackpressure: a live source's capture dropped its oldest frame
	// because the publisher did not keep up.
	DropBackpressure = "backpressure"
	// DropPublishFailed: a live source's batch whose publish failed.
	DropPublishFailed = "publish_failed"
)

func (p *publisher) drop(n uint64, reason string) {
	p.dropped += n
	p.met.dropped.WithLabelValues(p.model, p.source, reason).Add(float64(n))
}

// failed handles a batch whose publish failed: a live source drops it
// (counted); a file source republishes it synchronously (the same
// Nats-Msg-Id: if the first attempt was stored after all, the stream
// deduplicates it) up to PublishRetries times, then fails.
func (p *publisher) failed(ctx context.Context, f flight, cause error) error {
	id := f.msg.Header.Get(jetstream.MsgIDHeader)
	if p.live {
		p.log.Warn().Err(cause).Str("msg_id", id).Int("frames", f.n).Msg("batch dropped: publish failed")
		p.drop(uint64(f.n), DropPublishFailed)
		return nil
	}
	backoff := 100 * time.Millisecond
	for try := 1; try <= p.cfg.PublishRetries; try++ {
		p.met.retries.WithLabelValues(p.model).Inc()
		p.log.Warn().Err(cause).Str("msg_id", id).Int("try", try).Msg("republishing batch")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: batch %s: %w", errPublish, id, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
		_, err := p.js.PublishMsg(pctx, copyMsg(f.msg))
		cancel()
		if err == nil {
			p.acked(f)
			return nil
		}
		cause = err
	}
	return fmt.Errorf("%w: batch %s after %d retries: %w", errPublish, id, p.cfg.PublishRetries, cause)
}

// copyMsg returns a fresh message with msg's subject, header and data (the
// async publish sets a reply subject on the message it is given).
func copyMsg(msg *nats.Msg) *nats.Msg {
	m := nats.NewMsg(msg.Subject)
	m.Data = msg.Data
	for k, v := range msg.Header {
		m.Header[k] = v
	}
	return m
}
