package batch_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"vireo/pkg/batch"
)

// frame stands for what the infer service batches: a decoded frame and the
// JetStream message to ack once its result is published.
type frame struct {
	source string
	seq    uint64
}

// Example_ownerLoop shows the loop that owns a Batcher: it selects on its
// input, a timer armed from UntilNext, and ctx.Done(). The batcher itself
// starts no goroutine and never blocks.
func Example_ownerLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := batch.New[frame](batch.Policy{MaxBatch: 4, MaxDelay: time.Minute, QueueTimeout: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	in := make(chan frame, 10)
	for seq := range uint64(6) {
		in <- frame{source: "cam0", seq: seq}
	}
	close(in)

	run := func(items []batch.Item[frame]) { // stands for inference + publish + ack
		fmt.Printf("batch of %d:", len(items))
		for _, it := range items {
			fmt.Printf(" %s/%d", it.Value.source, it.Value.seq)
		}
		fmt.Println()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var timerC <-chan time.Time
		if d, ok := b.UntilNext(time.Now()); ok {
			timer.Reset(d)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case f, ok := <-in:
			if !ok { // input closed: drain explicitly and stop
				for items := b.ForceFlush(time.Now()); items != nil; items = b.ForceFlush(time.Now()) {
					run(items)
				}
				s := b.Stats()
				fmt.Printf("flushes: size=%d delay=%d explicit=%d\n", s.FlushSize, s.FlushDelay, s.FlushExplicit)
				return
			}
			_, err := b.Add(batch.Item[frame]{Source: f.source, Arrived: time.Now(), Value: f})
			if errors.Is(err, batch.ErrQueueFull) {
				fmt.Println("rejected:", err) // the service naks or publishes an error
				continue
			}
		case <-timerC:
		}
		now := time.Now()
		for _, r := range b.Expired(now) {
			fmt.Println("rejected:", r.Item.Value.seq, r.Reason)
		}
		for items := b.Flush(now); items != nil; items = b.Flush(now) {
			run(items)
		}
	}
	// Output:
	// batch of 4: cam0/0 cam0/1 cam0/2 cam0/3
	// batch of 2: cam0/4 cam0/5
	// flushes: size=1 delay=0 explicit=1
}

// ExampleBatcher_Flush walks a batcher through time passed in by the
// caller: a preferred size is taken as soon as it can be filled, and the
// rest leaves when the oldest item has waited MaxDelay.
func ExampleBatcher_Flush() {
	b, _ := batch.New[int](batch.Policy{MaxBatch: 8, PreferredSizes: []int{4}, MaxDelay: 10 * time.Millisecond})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		flush, _ := b.Add(batch.Item[int]{Source: "cam0", Arrived: t0, Value: i})
		if flush {
			fmt.Println("flush due after", i+1, "items:", len(b.Flush(t0)), "taken")
		}
	}
	d, _ := b.UntilNext(t0.Add(4 * time.Millisecond))
	fmt.Println("wait", d)
	fmt.Println("at 4ms:", b.Flush(t0.Add(4*time.Millisecond)) == nil)
	items := b.Flush(t0.Add(10 * time.Millisecond))
	fmt.Println("at 10ms:", len(items), "taken; delay flushes:", b.Stats().FlushDelay)
	// Output:
	// flush due after 4 items: 4 taken
	// wait 6ms
	// at 4ms: true
	// at 10ms: 2 taken; delay flushes: 1
}
