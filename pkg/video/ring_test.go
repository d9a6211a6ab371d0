package video

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

func TestRingLosslessFIFOAndClose(t *testing.T) {
	ctx := context.Background()
	r := newRing[int](3, false)
	for i := range 3 {
		if dropped, err := r.Push(ctx, i); err != nil || dropped {
			t.Fatalf("push %d: dropped=%v err=%v", i, dropped, err)
		}
	}
	// Full and lossless: Push blocks until ctx ends.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := r.Push(cctx, 99); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push on full lossless ring: got err=%v, want DeadlineExceeded", err)
	}
	r.close(io.EOF)
	for i := range 3 {
		v, err := r.Pop(ctx)
		if err != nil || v != i {
			t.Fatalf("pop: got (%d, %v), want (%d, nil)", v, err, i)
		}
	}
	if _, err := r.Pop(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("pop after drain: got %v, want io.EOF", err)
	}
	if _, err := r.Push(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after close: got %v, want ErrClosed", err)
	}
	if r.Dropped() != 0 {
		t.Fatalf("lossless ring dropped %d", r.Dropped())
	}
}

func TestRingBlockedPushWakesOnPopAndClose(t *testing.T) {
	ctx := context.Background()
	r := newRing[int](1, false)
	if _, err := r.Push(ctx, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := r.Push(ctx, 1); done <- err }()
	if v, err := r.Pop(ctx); v != 0 || err != nil {
		t.Fatalf("pop: got (%d, %v)", v, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked push after pop: %v", err)
	}
	go func() { _, err := r.Push(ctx, 2); done <- err }()
	r.close(io.EOF)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked push after close: got %v, want ErrClosed", err)
	}
}

func TestRingDropOldestKeepsNewest(t *testing.T) {
	ctx := context.Background()
	r := newRing[int](3, true)
	drops := 0
	for i := range 10 {
		dropped, err := r.Push(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if dropped {
			drops++
		}
	}
	if drops != 7 || r.Dropped() != 7 {
		t.Fatalf("drops: got reported=%d counted=%d, want 7", drops, r.Dropped())
	}
	for _, want := range []int{7, 8, 9} {
		if v, err := r.Pop(ctx); err != nil || v != want {
			t.Fatalf("pop: got (%d, %v), want %d", v, err, want)
		}
	}
}

// A slow consumer: it takes one item, then stalls while the producer pushes
// everything; every item is either received, dropped or still queued, the
// received ones are in order, and exactly total-1-cap were dropped.
func TestRingDropOldestSlowConsumer(t *testing.T) {
	const total, capacity = 1000, 4
	ctx := context.Background()
	r := newRing[int](capacity, true)
	gate := make(chan struct{})
	var got []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			v, err := r.Pop(ctx)
			if err != nil {
				return
			}
			got = append(got, v)
			if len(got) == 1 {
				<-gate // stall
			}
		}
	}()
	// Wait until the consumer holds item 0, so the count below is exact.
	if _, err := r.Push(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for r.Len() != 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < total; i++ {
		if _, err := r.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	r.close(io.EOF)
	wg.Wait()
	if want := uint64(total - 1 - capacity); r.Dropped() != want {
		t.Fatalf("dropped: got=%d want=%d", r.Dropped(), want)
	}
	want := []int{0, 996, 997, 998, 999}
	if len(got) != len(want) {
		t.Fatalf("received: got=%v want=%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("received: got=%v want=%v", got, want)
		}
	}
}

// Concurrent producer and a consumer that sleeps: invariants only.
func TestRingDropOldestConcurrent(t *testing.T) {
	const total = 2000
	ctx := context.Background()
	r := newRing[int](2, true)
	var got []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			v, err := r.Pop(ctx)
			if err != nil {
				return
			}
			got = append(got, v)
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for i := range total {
		if _, err := r.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	r.close(io.EOF)
	wg.Wait()
	if uint64(len(got))+r.Dropped() != total {
		t.Fatalf("received %d + dropped %d != %d", len(got), r.Dropped(), total)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	if got[len(got)-1] != total-1 {
		t.Fatalf("newest item lost: last received %d", got[len(got)-1])
	}
}

func TestRingPopHonoursCtx(t *testing.T) {
	r := newRing[int](1, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Pop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
