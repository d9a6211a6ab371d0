package video

import (
	"context"
	"sync"
)

// ring is the bounded hand-off between a capture loop (one producer) and
// its consumer. It has two overflow policies:
//
//   - dropOldest (live sources): Push never blocks; when the ring is full the
//     oldest queued item is discarded and counted.
//   - lossless (files): Push blocks until there is room, ctx is done or the
//     ring is closed; nothing is ever discarded.
//
// close(err) ends the ring: Push then fails with ErrClosed, and Pop returns
// the items still queued, then err. The zero value is not usable; use newRing.
type ring[T any] struct {
	mu         sync.Mutex
	buf        []T
	head, n    int
	dropOldest bool
	dropped    uint64
	closed     bool
	err        error

	readable chan struct{} // cap 1: "an item may be available"
	writable chan struct{} // cap 1: "room may be available"
	done     chan struct{} // closed by close()
}

func newRing[T any](capacity int, dropOldest bool) *ring[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &ring[T]{
		buf:        make([]T, capacity),
		dropOldest: dropOldest,
		readable:   make(chan struct{}, 1),
		writable:   make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Push queues v. With dropOldest it never blocks and reports whether an old
// item was discarded to make room. Without it, it blocks while the ring is
// full; it returns ctx.Err() if ctx ends first and ErrClosed if the ring is
// closed (v is then not queued).
func (r *ring[T]) Push(ctx context.Context, v T) (dropped bool, err error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return false, ErrClosed
		}
		if r.n < len(r.buf) {
			r.buf[(r.head+r.n)%len(r.buf)] = v
			r.n++
			r.mu.Unlock()
			signal(r.readable)
			return false, nil
		}
		if r.dropOldest {
			// Full: overwrite the oldest slot and advance head.
			r.buf[r.head] = v
			r.head = (r.head + 1) % len(r.buf)
			r.dropped++
			r.mu.Unlock()
			signal(r.readable)
			return true, nil
		}
		r.mu.Unlock()
		select {
		case <-r.writable:
		case <-r.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Pop returns the oldest queued item, blocking until one is queued, the ring
// is closed (queued items are still returned first, then the close error) or
// ctx is done (ctx.Err()).
func (r *ring[T]) Pop(ctx context.Context) (T, error) {
	var zero T
	for {
		r.mu.Lock()
		if r.n > 0 {
			v := r.buf[r.head]
			r.buf[r.head] = zero // let the GC have it
			r.head = (r.head + 1) % len(r.buf)
			r.n--
			more := r.n > 0
			r.mu.Unlock()
			signal(r.writable)
			if more {
				signal(r.readable)
			}
			return v, nil
		}
		if r.closed {
			err := r.err
			r.mu.Unlock()
			return zero, err
		}
		r.mu.Unlock()
		select {
		case <-r.readable:
		case <-r.done:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// close ends the ring with err (what Pop returns once the ring is drained).
// Only the first call has an effect.
func (r *ring[T]) close(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.err = err
	close(r.done)
}

// Dropped returns how many items dropOldest has discarded.
func (r *ring[T]) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Len returns the number of queued items.
func (r *ring[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
