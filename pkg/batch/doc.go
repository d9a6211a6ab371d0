// Package batch is Vireo's dynamic batcher: it groups queued items (frames
// waiting for inference) into batches under a Policy modelled on Triton's
// dynamic batcher (max batch size, max queue delay, preferred batch sizes,
// priority levels, per-item queue timeouts) and Benthos' batch policy, plus
// per-source fairness.
//
// # Ownership and blocking
//
// A Batcher has exactly one owner and no goroutine, timer or lock of its own:
// it is not safe for concurrent use, and nothing in it ever blocks or sleeps.
// Time is always passed in (Item.Arrived, and the now argument of Flush,
// ForceFlush, Expired, Ready and UntilNext), so behaviour is deterministic and
// tests need no sleeps. The owner's loop selects on its input, a timer armed
// from UntilNext and ctx.Done():
//
//	for {
//		timerC := nil
//		if d, ok := b.UntilNext(now()); ok { timer.Reset(d); timerC = timer.C }
//		select {
//		case <-ctx.Done(): drain with ForceFlush, return
//		case it := <-in:  b.Add(it) // ErrQueueFull: reject it explicitly
//		case <-timerC:
//		}
//		reject b.Expired(now()); run every b.Flush(now()) until it returns nil
//	}
//
// See Example_ownerLoop for a complete loop.
//
// # Policies
//
//   - Bounded queue: Add never blocks; when MaxQueue items are queued it
//     returns ErrQueueFull and the owner rejects the item (nak, error message).
//   - Size: a batch never holds more than MaxBatch items; when MaxBatch items
//     are queued a batch is due (trigger "size").
//   - Preferred sizes: when at least the smallest preferred size is queued a
//     batch is due, and it takes the largest preferred size that the queue can
//     fill (trigger "preferred"). The owner usually flushes when its device is
//     free, so while a batch runs the queue can grow to a larger preferred size.
//   - Delay: when the oldest queued item has waited MaxDelay, a batch of
//     everything queued (at most MaxBatch) is due (trigger "delay"). With
//     preferred sizes, a preferred size that fits is always taken first, so at
//     the deadline "the largest preferred size available, else all" holds.
//     MaxDelay 0 means no waiting: any queued item makes a batch due.
//   - Explicit: ForceFlush returns the next batch even if none is due (shutdown,
//     or an idle device that prefers a small batch to waiting).
//   - Queue timeout: an item whose Arrived+timeout has passed is never put in a
//     batch; Expired returns it with ReasonTimeout.
//   - Priority: strict. Items of a higher Priority are always batched before
//     any item of a lower one. A steady flood of high-priority items therefore
//     starves lower levels; queue timeouts bound how long a starved item waits
//     (it is rejected with ReasonTimeout instead of waiting for ever), and the
//     producer should keep high priority for a small share of the traffic.
//   - Fairness: SourceShare caps the share of one batch a single source may
//     take while other sources at the same priority level are waiting. The cap
//     for a batch of k items is max(1, floor(SourceShare*k)). Within a level,
//     sources are served round-robin (the starting source rotates from batch to
//     batch) up to the cap; capacity left over when the other sources have
//     nothing more is given back, again round-robin, so a lone source still
//     fills whole batches.
//
// # Invariants (checked by the property test)
//
//   - every added item is returned exactly once: in one batch, or as one
//     rejection (ErrQueueFull at Add, ReasonTimeout from Expired);
//   - len(batch) <= MaxBatch, and no batch holds an item past its deadline;
//   - items of one source and one priority leave in the order they were added;
//   - if an item is left waiting while its source has fewer than the cap in
//     the batch, every item in the batch has at least its priority, and those
//     of the same priority come from sources holding at most the cap.
//
// Counters (Stats) count flushes per trigger and rejections per reason; the
// services export them as Prometheus metrics.
//
// # Cost
//
// Add is O(log priority levels). Flush, ForceFlush, Expired, Ready and
// UntilNext scan the queue, O(queued items): arrival times come from the
// owner and need not be monotonic, and the queue is bounded by MaxQueue
// (default 16*MaxBatch). BenchmarkAddFlush measures the steady state.
package batch
