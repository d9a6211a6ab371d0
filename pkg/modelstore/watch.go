package modelstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Watcher delivers serving-pointer changes. Use Store.Watch.
type Watcher struct {
	kw      jetstream.KeyWatcher
	updates chan Pointer
	stop    chan struct{}
	once    sync.Once
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

// Watch delivers modelName's serving pointer (every model's when modelName
// is "") on Updates: first the current pointer(s), then each change as it
// is written. Deleted keys and undecodable values are skipped (the latter
// recorded, see Err). The channel is closed after Stop or when ctx is done.
func (s *Store) Watch(ctx context.Context, modelName string) (*Watcher, error) {
	key := "*" // every model key; counter keys contain '.'
	if modelName != "" {
		if err := checkModel(modelName); err != nil {
			return nil, err
		}
		key = modelName
	}
	kw, err := s.kv.Watch(ctx, key, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("modelstore: watch %q: %w", key, err)
	}
	w := &Watcher{kw: kw, updates: make(chan Pointer), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(ctx)
	return w, nil
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer close(w.updates)
	defer func() { _ = w.kw.Stop() }()
	in := w.kw.Updates()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case e, ok = <-in:
			if !ok {
				return
			}
		}
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue // nil: end of the initial values
		}
		p, err := decodePointer(e)
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			continue
		}
		select {
		case w.updates <- p:
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		}
	}
}

// Updates is the channel of pointers; closed when the watcher ends.
func (w *Watcher) Updates() <-chan Pointer { return w.updates }

// Err returns the last pointer that could not be decoded, if any.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watcher and waits for its goroutine. Safe to call more
// than once and after ctx is done.
func (w *Watcher) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}
