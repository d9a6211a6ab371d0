package batch

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Errors returned by the batcher. Each is wrapped with details (%w).
var (
	// ErrQueueFull is returned by Add when MaxQueue items are already queued.
	ErrQueueFull = errors.New("batch: queue full")
	// ErrInvalidItem is returned by Add for an item it cannot schedule.
	ErrInvalidItem = errors.New("batch: invalid item")
	// ErrInvalidPolicy is returned by New for a policy that cannot work.
	ErrInvalidPolicy = errors.New("batch: invalid policy")
)

// Trigger says why a batch was flushed.
type Trigger int

// Flush triggers, one counter each in Stats.
const (
	// TriggerNone: no batch is due.
	TriggerNone Trigger = iota
	// TriggerSize: MaxBatch items were queued.
	TriggerSize
	// TriggerPreferred: a preferred batch size could be filled.
	TriggerPreferred
	// TriggerDelay: the oldest item waited MaxDelay.
	TriggerDelay
	// TriggerExplicit: ForceFlush was called before any other trigger.
	TriggerExplicit
)

func (t Trigger) String() string {
	switch t {
	case TriggerNone:
		return "none"
	case TriggerSize:
		return "size"
	case TriggerPreferred:
		return "preferred"
	case TriggerDelay:
		return "delay"
	case TriggerExplicit:
		return "explicit"
	}
	return fmt.Sprintf("Trigger(%d)", int(t))
}

// Reason says why an item was rejected.
type Reason string

// Rejection reasons, one counter each in Stats.
const (
	// ReasonQueueFull: Add found MaxQueue items queued (ErrQueueFull).
	ReasonQueueFull Reason = "queue_full"
	// ReasonTimeout: the item waited longer than its queue timeout.
	ReasonTimeout Reason = "timeout"
	// ReasonInvalid: Add was given an item it cannot schedule (ErrInvalidItem).
	ReasonInvalid Reason = "invalid"
)

// Item is one unit of work waiting for a batch. The batcher reads Source,
// Priority, Arrived and Timeout and carries Value untouched.
type Item[T any] struct {
	// Source names the stream the item came from (a camera, a client);
	// fairness is computed per source. The empty string is a valid source.
	Source string
	// Priority: higher values are batched first. Any int is valid.
	Priority int
	// Arrived is when the item entered the system (the owner's clock, or the
	// message's publish time). Delays and timeouts count from it. Required.
	Arrived time.Time
	// Timeout overrides Policy.QueueTimeout for this item when > 0.
	Timeout time.Duration
	// Value is the payload (a frame, a message to ack).
	Value T
}

// Rejection is an item the batcher gave up on, with the reason.
type Rejection[T any] struct {
	Item   Item[T]
	Reason Reason
}

// Policy configures a Batcher. The zero value is usable: see setDefaults.
type Policy struct {
	// MaxBatch is the largest batch (default 8).
	MaxBatch int
	// MaxDelay is how long the oldest item may wait for a fuller batch
	// (Triton's max_queue_delay). 0 means no waiting.
	MaxDelay time.Duration
	// PreferredSizes are batch sizes to form when possible (Triton's
	// preferred_batch_size), each in [1, MaxBatch]. Order does not matter.
	PreferredSizes []int
	// MaxQueue bounds the number of queued items (default 16*MaxBatch).
	MaxQueue int
	// QueueTimeout rejects items that waited longer (0: never).
	QueueTimeout time.Duration
	// SourceShare is the largest fraction of a batch one source may take
	// while other sources of the same priority wait, in (0, 1]
	// (default 1: no cap).
	SourceShare float64
}

func (p *Policy) setDefaults() {
	if p.MaxBatch == 0 {
		p.MaxBatch = 8
	}
	if p.MaxQueue == 0 {
		p.MaxQueue = 16 * p.MaxBatch
	}
	if p.SourceShare == 0 {
		p.SourceShare = 1
	}
}

// Validate reports the first problem with the policy (after defaults).
func (p Policy) Validate() error {
	switch {
	case p.MaxBatch < 1:
		return fmt.Errorf("%w: MaxBatch (got=%d, want>=1)", ErrInvalidPolicy, p.MaxBatch)
	case p.MaxQueue < p.MaxBatch:
		return fmt.Errorf("%w: MaxQueue (got=%d, want>=MaxBatch=%d)", ErrInvalidPolicy, p.MaxQueue, p.MaxBatch)
	case p.MaxDelay < 0:
		return fmt.Errorf("%w: MaxDelay (got=%v, want>=0)", ErrInvalidPolicy, p.MaxDelay)
	case p.QueueTimeout < 0:
		return fmt.Errorf("%w: QueueTimeout (got=%v, want>=0)", ErrInvalidPolicy, p.QueueTimeout)
	case !(p.SourceShare > 0 && p.SourceShare <= 1): // also rejects NaN
		return fmt.Errorf("%w: SourceShare (got=%v, want in (0,1])", ErrInvalidPolicy, p.SourceShare)
	}
	for _, s := range p.PreferredSizes {
		if s < 1 || s > p.MaxBatch {
			return fmt.Errorf("%w: PreferredSizes (got=%d, want in [1,%d])", ErrInvalidPolicy, s, p.MaxBatch)
		}
	}
	return nil
}

// Stats is a snapshot of the batcher's counters.
type Stats struct {
	Queued int // items waiting now

	Added   uint64 // items accepted by Add
	Batches uint64 // batches returned by Flush and ForceFlush
	Batched uint64 // items in those batches

	FlushSize      uint64 // batches per trigger
	FlushPreferred uint64
	FlushDelay     uint64
	FlushExplicit  uint64

	RejectedQueueFull uint64 // rejections per reason
	RejectedTimeout   uint64
	RejectedInvalid   uint64
}

// fifo is the queue of one (priority, source) pair, oldest first.
type fifo[T any] struct {
	source string
	items  []Item[T]
}

// level holds the queues of one priority, sources in first-seen order.
type level[T any] struct {
	priority int
	queues   []*fifo[T]
	bySource map[string]*fifo[T]
	next     int // round-robin cursor into queues, rotated per batch
	n        int
}

// Batcher forms batches from queued items. Use New; see the package doc for
// ownership (one goroutine) and the policies.
type Batcher[T any] struct {
	p         Policy
	preferred []int       // sorted ascending, deduplicated
	levels    []*level[T] // sorted by priority, highest first
	n         int
	expired   []Rejection[T] // swept by Flush, handed out by Expired
	stats     Stats
}

// New returns a Batcher with the policy, after defaults and validation.
func New[T any](p Policy) (*Batcher[T], error) {
	p.setDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pref := slices.Clone(p.PreferredSizes)
	slices.Sort(pref)
	pref = slices.Compact(pref)
	p.PreferredSizes = pref
	return &Batcher[T]{p: p, preferred: pref}, nil
}

// Policy returns the policy in use (after defaults).
func (b *Batcher[T]) Policy() Policy {
	p := b.p
	p.PreferredSizes = slices.Clone(b.preferred)
	return p
}

// Len returns the number of queued items, including any whose deadline has
// passed but that no Flush or Expired call has swept yet.
func (b *Batcher[T]) Len() int { return b.n }

// Stats returns a snapshot of the counters.
func (b *Batcher[T]) Stats() Stats {
	s := b.stats
	s.Queued = b.n
	return s
}

// Add queues it. It never blocks: with MaxQueue items queued it returns an
// error wrapping ErrQueueFull and the owner must reject the item itself.
// flush reports that a batch is due by size or preferred size, so the owner
// can call Flush now rather than wait for its timer.
func (b *Batcher[T]) Add(it Item[T]) (flush bool, err error) {
	switch {
	case it.Arrived.IsZero():
		b.stats.RejectedInvalid++
		return false, fmt.Errorf("%w: source %q: Arrived is zero (want the arrival time)", ErrInvalidItem, it.Source)
	case it.Timeout < 0:
		b.stats.RejectedInvalid++
		return false, fmt.Errorf("%w: source %q: Timeout (got=%v, want>=0)", ErrInvalidItem, it.Source, it.Timeout)
	case b.n >= b.p.MaxQueue:
		b.stats.RejectedQueueFull++
		return false, fmt.Errorf("%w: source %q (queued=%d, max=%d)", ErrQueueFull, it.Source, b.n, b.p.MaxQueue)
	}
	lv := b.level(it.Priority)
	q := lv.bySource[it.Source]
	if q == nil {
		q = &fifo[T]{source: it.Source}
		lv.bySource[it.Source] = q
		lv.queues = append(lv.queues, q)
	}
	q.items = append(q.items, it)
	lv.n++
	b.n++
	b.stats.Added++
	return b.sizeTrigger() != TriggerNone, nil
}

func (b *Batcher[T]) level(prio int) *level[T] {
	i, found := slices.BinarySearchFunc(b.levels, prio, func(l *level[T], p int) int {
		return p - l.priority // highest first
	})
	if found {
		return b.levels[i]
	}
	lv := &level[T]{priority: prio, bySource: map[string]*fifo[T]{}}
	b.levels = slices.Insert(b.levels, i, lv)
	return lv
}

// sizeTrigger is the trigger due by queue length alone.
func (b *Batcher[T]) sizeTrigger() Trigger {
	switch {
	case b.n == 0:
		return TriggerNone
	case b.n >= b.p.MaxBatch:
		return TriggerSize
	case len(b.preferred) > 0 && b.n >= b.preferred[0]:
		return TriggerPreferred
	}
	return TriggerNone
}

func (b *Batcher[T]) deadline(it *Item[T]) (time.Time, bool) {
	t := it.Timeout
	if t == 0 {
		t = b.p.QueueTimeout
	}
	if t == 0 {
		return time.Time{}, false
	}
	return it.Arrived.Add(t), true
}

// sweep moves items whose deadline is at or before now to b.expired.
func (b *Batcher[T]) sweep(now time.Time) {
	for _, lv := range b.levels {
		for _, q := range lv.queues {
			kept := q.items[:0]
			for _, it := range q.items {
				if d, ok := b.deadline(&it); ok && !now.Before(d) {
					b.expired = append(b.expired, Rejection[T]{Item: it, Reason: ReasonTimeout})
					b.stats.RejectedTimeout++
					lv.n--
					b.n--
					continue
				}
				kept = append(kept, it)
			}
			clear(q.items[len(kept):]) // drop references held by the tail
			q.items = kept
		}
	}
	b.prune()
}

// prune drops empty queues and levels so maps do not grow with every source
// ever seen.
func (b *Batcher[T]) prune() {
	b.levels = slices.DeleteFunc(b.levels, func(lv *level[T]) bool {
		lv.queues = slices.DeleteFunc(lv.queues, func(q *fifo[T]) bool {
			if len(q.items) == 0 {
				delete(lv.bySource, q.source)
				return true
			}
			return false
		})
		if lv.next >= len(lv.queues) {
			lv.next = 0
		}
		return len(lv.queues) == 0
	})
}

// each calls fn on every queued item until fn returns false.
func (b *Batcher[T]) each(fn func(*Item[T]) bool) {
	for _, lv := range b.levels {
		for _, q := range lv.queues {
			for i := range q.items {
				if !fn(&q.items[i]) {
					return
				}
			}
		}
	}
}

// oldest returns the earliest arrival among queued items.
func (b *Batcher[T]) oldest() (time.Time, bool) {
	var t time.Time
	found := false
	b.each(func(it *Item[T]) bool {
		if !found || it.Arrived.Before(t) {
			t, found = it.Arrived, true
		}
		return true
	})
	return t, found
}

// Expired sweeps items whose queue timeout has passed at now and returns
// them, with those already swept by Flush, oldest sweep first. The caller
// owns the returned slice.
func (b *Batcher[T]) Expired(now time.Time) []Rejection[T] {
	b.sweep(now)
	out := b.expired
	b.expired = nil
	return out
}

// Ready reports which trigger makes a batch due at now, or TriggerNone. It
// does not sweep expired items, so it may count an item Flush would reject.
func (b *Batcher[T]) Ready(now time.Time) Trigger {
	if t := b.sizeTrigger(); t != TriggerNone {
		return t
	}
	if o, ok := b.oldest(); ok && !now.Before(o.Add(b.p.MaxDelay)) {
		return TriggerDelay
	}
	return TriggerNone
}

// UntilNext reports how long the owner may wait before it must call Expired
// and Flush: the earlier of the oldest item's MaxDelay deadline and the
// earliest queue-timeout deadline. It returns 0 when a batch is already due
// and false when nothing is queued (no timer needed).
func (b *Batcher[T]) UntilNext(now time.Time) (time.Duration, bool) {
	if b.n == 0 {
		return 0, false
	}
	if b.sizeTrigger() != TriggerNone {
		return 0, true
	}
	next, found := time.Time{}, false
	b.each(func(it *Item[T]) bool {
		t := it.Arrived.Add(b.p.MaxDelay)
		if d, ok := b.deadline(it); ok && d.Before(t) {
			t = d
		}
		if !found || t.Before(next) {
			next, found = t, true
		}
		return true
	})
	if d := next.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// Flush returns the next batch if one is due at now (by size, preferred size
// or delay), after sweeping expired items for Expired; nil when none is due.
// Call it until it returns nil: several batches can be due at once.
func (b *Batcher[T]) Flush(now time.Time) []Item[T] {
	b.sweep(now)
	t := b.Ready(now)
	if t == TriggerNone {
		return nil
	}
	return b.take(t)
}

// ForceFlush returns the next batch even if none is due (counted as
// TriggerExplicit unless another trigger applies); nil when nothing is
// queued. At shutdown, call it until it returns nil.
func (b *Batcher[T]) ForceFlush(now time.Time) []Item[T] {
	b.sweep(now)
	t := b.Ready(now)
	if t == TriggerNone {
		if b.n == 0 {
			return nil
		}
		t = TriggerExplicit
	}
	return b.take(t)
}

// size picks the batch size; b.n > 0. Ready reports TriggerPreferred before
// TriggerDelay, so a delay or explicit flush only takes "all" when no
// preferred size fits.
func (b *Batcher[T]) size() int {
	if b.n >= b.p.MaxBatch {
		return b.p.MaxBatch
	}
	// Largest preferred size the queue can fill.
	for i := len(b.preferred) - 1; i >= 0; i-- {
		if b.preferred[i] <= b.n {
			return b.preferred[i]
		}
	}
	return b.n // delay or explicit with no preferred size that fits: all
}

// take removes and returns a batch for trigger t; b.n > 0.
func (b *Batcher[T]) take(t Trigger) []Item[T] {
	k := b.size()
	capN := max(1, int(math.Floor(b.p.SourceShare*float64(k)+1e-9)))
	out := make([]Item[T], 0, k)
	counts := map[string]int{}
	for _, lv := range b.levels {
		if len(out) == k {
			break
		}
		start := lv.next
		// Phase 1: round-robin up to the cap; phase 2: leftovers, no cap.
		for _, capped := range []bool{true, false} {
			for progress := true; progress && len(out) < k && lv.n > 0; {
				progress = false
				for j := range lv.queues {
					if len(out) == k {
						break
					}
					q := lv.queues[(start+j)%len(lv.queues)]
					if len(q.items) == 0 || (capped && counts[q.source] >= capN) {
						continue
					}
					out = append(out, q.items[0])
					var zero Item[T]
					q.items[0] = zero
					q.items = q.items[1:]
					counts[q.source]++
					lv.n--
					b.n--
					progress = true
				}
			}
		}
		lv.next = (start + 1) % len(lv.queues)
	}
	b.prune()
	b.stats.Batches++
	b.stats.Batched += uint64(len(out))
	switch t {
	case TriggerSize:
		b.stats.FlushSize++
	case TriggerPreferred:
		b.stats.FlushPreferred++
	case TriggerDelay:
		b.stats.FlushDelay++
	default:
		b.stats.FlushExplicit++
	}
	return out
}
