package batch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// at returns t0+n ms.
func at(n int) time.Time { return t0.Add(ms(n)) }

func mustNew(t *testing.T, p Policy) *Batcher[int] {
	t.Helper()
	b, err := New[int](p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	return b
}

func add(t *testing.T, b *Batcher[int], src string, prio, v, arrivedMs int) bool {
	t.Helper()
	flush, err := b.Add(Item[int]{Source: src, Priority: prio, Arrived: at(arrivedMs), Value: v})
	if err != nil {
		t.Fatalf("Add(%s/%d): %v", src, v, err)
	}
	return flush
}

func values(items []Item[int]) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out
}

func sources(items []Item[int]) string {
	var sb strings.Builder
	for _, it := range items {
		sb.WriteString(it.Source)
	}
	return sb.String()
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want string // substring of the error, "" for none
	}{
		{"zero value gets defaults", Policy{}, ""},
		{"negative batch", Policy{MaxBatch: -1}, "MaxBatch (got=-1"},
		{"queue smaller than batch", Policy{MaxBatch: 8, MaxQueue: 4}, "MaxQueue (got=4, want>=MaxBatch=8)"},
		{"negative delay", Policy{MaxDelay: -1}, "MaxDelay"},
		{"negative timeout", Policy{QueueTimeout: -1}, "QueueTimeout"},
		{"share above one", Policy{SourceShare: 1.5}, "SourceShare (got=1.5"},
		{"negative share", Policy{SourceShare: -0.1}, "SourceShare"},
		{"preferred above max", Policy{MaxBatch: 4, PreferredSizes: []int{2, 5}}, "PreferredSizes (got=5, want in [1,4])"},
		{"preferred zero", Policy{PreferredSizes: []int{0}}, "PreferredSizes (got=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New[int](tt.p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want ErrInvalidPolicy containing %q", err, tt.want)
			}
		})
	}
	b := mustNew(t, Policy{})
	if p := b.Policy(); p.MaxBatch != 8 || p.MaxQueue != 128 || p.SourceShare != 1 {
		t.Fatalf("defaults = %+v, want MaxBatch 8, MaxQueue 128, SourceShare 1", p)
	}
}

func TestAddErrors(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 2, MaxQueue: 2, MaxDelay: time.Hour})
	if _, err := b.Add(Item[int]{Source: "a"}); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("Add without Arrived: err = %v, want ErrInvalidItem", err)
	}
	if _, err := b.Add(Item[int]{Source: "a", Arrived: t0, Timeout: -1}); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("Add with negative timeout: err = %v, want ErrInvalidItem", err)
	}
	add(t, b, "a", 0, 1, 0)
	add(t, b, "a", 0, 2, 0)
	_, err := b.Add(Item[int]{Source: "a", Arrived: t0, Value: 3})
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), "queued=2, max=2") {
		t.Fatalf("Add to full queue: err = %v, want ErrQueueFull with queued=2, max=2", err)
	}
	s := b.Stats()
	if s.RejectedInvalid != 2 || s.RejectedQueueFull != 1 || s.Added != 2 || s.Queued != 2 {
		t.Fatalf("stats = %+v, want 2 invalid, 1 queue full, 2 added, 2 queued", s)
	}
	// Space frees up after a flush.
	if got := values(b.Flush(at(0))); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Flush = %v, want [1 2]", got)
	}
	add(t, b, "a", 0, 3, 1)
}

func TestMaxBatchAndDelay(t *testing.T) {
	tests := []struct {
		name     string
		p        Policy
		arrivals []int // arrival ms of items valued 0..n-1
		now      int
		want     [][]int // batches Flush returns at now, in order
		trigger  Trigger // trigger of the first batch
		until    time.Duration
		untilOK  bool
	}{
		{"empty", Policy{MaxBatch: 4, MaxDelay: ms(10)}, nil, 100, nil, TriggerNone, 0, false},
		{"not yet due", Policy{MaxBatch: 4, MaxDelay: ms(10)}, []int{0, 3}, 5, nil, TriggerNone, ms(5), true},
		{"delay due at exactly the deadline", Policy{MaxBatch: 4, MaxDelay: ms(10)}, []int{0, 3}, 10, [][]int{{0, 1}}, TriggerDelay, 0, true},
		{"size", Policy{MaxBatch: 3, MaxDelay: time.Hour}, []int{0, 1, 2, 3}, 3, [][]int{{0, 1, 2}}, TriggerSize, 0, true},
		{"size twice then delay", Policy{MaxBatch: 2, MaxDelay: ms(10)}, []int{0, 1, 2, 3, 4}, 20, [][]int{{0, 1}, {2, 3}, {4}}, TriggerSize, 0, true},
		{"zero delay flushes at once", Policy{MaxBatch: 4}, []int{0}, 0, [][]int{{0}}, TriggerDelay, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, tt.p)
			for i, a := range tt.arrivals {
				add(t, b, "s", 0, i, a)
			}
			d, ok := b.UntilNext(at(tt.now))
			if d != tt.until || ok != tt.untilOK {
				t.Fatalf("UntilNext = %v, %v, want %v, %v", d, ok, tt.until, tt.untilOK)
			}
			if got := b.Ready(at(tt.now)); got != tt.trigger {
				t.Fatalf("Ready = %v, want %v", got, tt.trigger)
			}
			var got [][]int
			for batch := b.Flush(at(tt.now)); batch != nil; batch = b.Flush(at(tt.now)) {
				got = append(got, values(batch))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("batches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddReportsFlush(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 8, PreferredSizes: []int{3, 6}, MaxDelay: time.Hour})
	var flags []bool
	for i := range 4 {
		flags = append(flags, add(t, b, "s", 0, i, 0))
	}
	if want := []bool{false, false, true, true}; !slices.Equal(flags, want) {
		t.Fatalf("Add flush flags = %v, want %v", flags, want)
	}
}

func TestPreferredSizes(t *testing.T) {
	tests := []struct {
		name    string
		n       int // items queued at t=0
		now     int // ms
		want    []int
		trigger string
	}{
		{"below smallest preferred, not due", 2, 5, nil, ""},
		{"below smallest preferred, delay takes all", 2, 10, []int{2}, "delay"},
		{"smallest preferred reached", 4, 0, []int{4}, "preferred"},
		{"between preferred sizes takes the largest that fits", 7, 0, []int{6}, "preferred"},
		{"between preferred sizes at the deadline takes the largest that fits", 7, 10, []int{6}, "preferred"},
		{"max batch", 13, 0, []int{10}, "size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, Policy{MaxBatch: 10, PreferredSizes: []int{6, 4}, MaxDelay: ms(10)})
			for i := range tt.n {
				add(t, b, "s", 0, i, 0)
			}
			batch := b.Flush(at(tt.now))
			var got []int
			if batch != nil {
				got = []int{len(batch)}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("batch sizes = %v, want %v", got, tt.want)
			}
			s := b.Stats()
			trig := map[string]uint64{"size": s.FlushSize, "preferred": s.FlushPreferred, "delay": s.FlushDelay, "explicit": s.FlushExplicit}
			for name, c := range trig {
				want := uint64(0)
				if name == tt.trigger {
					want = 1
				}
				if c != want {
					t.Errorf("flush counter %s = %d, want %d (stats %+v)", name, c, want, s)
				}
			}
		})
	}
}

func TestForceFlush(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 3, MaxDelay: time.Hour})
	if got := b.ForceFlush(t0); got != nil {
		t.Fatalf("ForceFlush on empty = %v, want nil", got)
	}
	for i := range 5 {
		add(t, b, "s", 0, i, 0)
	}
	var got [][]int
	for batch := b.ForceFlush(t0); batch != nil; batch = b.ForceFlush(t0) {
		got = append(got, values(batch))
	}
	if fmt.Sprint(got) != "[[0 1 2] [3 4]]" {
		t.Fatalf("ForceFlush batches = %v, want [[0 1 2] [3 4]]", got)
	}
	if s := b.Stats(); s.FlushSize != 1 || s.FlushExplicit != 1 || s.Batches != 2 || s.Batched != 5 {
		t.Fatalf("stats = %+v, want 1 size + 1 explicit flush of 5 items", s)
	}
}

func TestPriority(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 3, MaxDelay: time.Hour})
	add(t, b, "a", 0, 1, 0)
	add(t, b, "a", 5, 2, 1)
	add(t, b, "b", -1, 3, 2)
	add(t, b, "b", 5, 4, 3)
	add(t, b, "c", 9, 5, 4)
	got := values(b.Flush(at(5)))
	if want := []int{5, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("first batch = %v, want %v (priority 9, then 5 in arrival order)", got, want)
	}
	got = values(b.ForceFlush(at(5)))
	if want := []int{1, 3}; !slices.Equal(got, want) {
		t.Fatalf("second batch = %v, want %v", got, want)
	}
}

// TestPriorityStarvation documents that priority is strict: a steady flood
// of high-priority items keeps low-priority ones waiting until their queue
// timeout rejects them.
func TestPriorityStarvation(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 2, MaxDelay: ms(1), QueueTimeout: ms(10)})
	add(t, b, "low", 0, -1, 0)
	for i := range 20 {
		add(t, b, "high", 1, i, i)
		add(t, b, "high", 1, i, i)
		for _, it := range b.Flush(at(i)) {
			if it.Source == "low" {
				t.Fatalf("low-priority item batched at %d ms during a high-priority flood", i)
			}
		}
	}
	rej := b.Expired(at(20))
	if len(rej) != 1 || rej[0].Item.Value != -1 || rej[0].Reason != ReasonTimeout {
		t.Fatalf("Expired = %+v, want the starved low-priority item with reason timeout", rej)
	}
}

func TestQueueTimeout(t *testing.T) {
	b := mustNew(t, Policy{MaxBatch: 4, MaxDelay: ms(50), QueueTimeout: ms(20)})
	add(t, b, "a", 0, 1, 0)                                                     // deadline 20
	b.Add(Item[int]{Source: "a", Arrived: at(0), Timeout: ms(5), Value: 2})     // deadline 5
	b.Add(Item[int]{Source: "b", Arrived: at(0), Timeout: time.Hour, Value: 3}) // deadline 1h, delay 50
	if d, ok := b.UntilNext(at(0)); d != ms(5) || !ok {
		t.Fatalf("UntilNext = %v, %v, want 5ms (the earliest timeout)", d, ok)
	}
	if got := b.Flush(at(5)); got != nil {
		t.Fatalf("Flush at 5ms = %v, want nil (only a timeout is due)", values(got))
	}
	rej := b.Expired(at(5))
	if len(rej) != 1 || rej[0].Item.Value != 2 || rej[0].Reason != ReasonTimeout {
		t.Fatalf("Expired at 5ms = %+v, want item 2 (timeout)", rej)
	}
	if d, _ := b.UntilNext(at(5)); d != ms(15) {
		t.Fatalf("UntilNext at 5ms = %v, want 15ms", d)
	}
	// Flush at the delay deadline sweeps item 1 first; Expired hands it out.
	if got := values(b.Flush(at(50))); !slices.Equal(got, []int{3}) {
		t.Fatalf("Flush at 50ms = %v, want [3]", got)
	}
	rej = b.Expired(at(50))
	if len(rej) != 1 || rej[0].Item.Value != 1 {
		t.Fatalf("Expired at 50ms = %+v, want item 1", rej)
	}
	if s := b.Stats(); s.RejectedTimeout != 2 || s.Queued != 0 {
		t.Fatalf("stats = %+v, want 2 timeouts, none queued", s)
	}
}

func TestFairness(t *testing.T) {
	tests := []struct {
		name   string
		share  float64
		queued map[string]int // items per source, added round by round
		want   map[string]int // per-source count in the first batch of 8
	}{
		{"four sources flooding", 0.25, map[string]int{"a": 20, "b": 20, "c": 20, "d": 20}, map[string]int{"a": 2, "b": 2, "c": 2, "d": 2}},
		{"one flood, one trickle", 0.25, map[string]int{"a": 20, "b": 1}, map[string]int{"a": 7, "b": 1}},
		{"lone source gets capacity back", 0.25, map[string]int{"a": 20}, map[string]int{"a": 8}},
		{"two floods share evenly past the cap", 0.25, map[string]int{"a": 20, "b": 20}, map[string]int{"a": 4, "b": 4}},
		{"no cap is plain arrival order per source", 1, map[string]int{"a": 20, "b": 20}, map[string]int{"a": 4, "b": 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, Policy{MaxBatch: 8, MaxQueue: 100, MaxDelay: time.Hour, SourceShare: tt.share})
			// Source "a" floods first: all of its items arrive before the others'.
			srcs := []string{"a", "b", "c", "d"}
			v := 0
			for _, s := range srcs {
				for range tt.queued[s] {
					add(t, b, s, 0, v, v)
					v++
				}
			}
			got := map[string]int{}
			for _, it := range b.Flush(at(v)) {
				got[it.Source]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("batch share = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFairnessRotatesLeftover(t *testing.T) {
	// Cap of 1 in a batch of 2 with three sources: the source left out
	// rotates, so no source waits two batches in a row.
	b := mustNew(t, Policy{MaxBatch: 2, MaxQueue: 100, MaxDelay: time.Hour, SourceShare: 0.5})
	for i := range 30 {
		add(t, b, string(rune('a'+i%3)), 0, i, i)
	}
	var got []string
	for range 6 {
		got = append(got, sources(b.Flush(at(30))))
	}
	left := map[string]int{}
	for i, s := range got {
		for _, src := range []string{"a", "b", "c"} {
			if !strings.Contains(s, src) {
				left[src]++
				if i > 0 && !strings.Contains(got[i-1], src) {
					t.Fatalf("source %s left out of two batches in a row: %v", src, got)
				}
			}
		}
	}
	if left["a"] != 2 || left["b"] != 2 || left["c"] != 2 {
		t.Fatalf("batches %v: sources left out %v, want 2 each", got, left)
	}
}

// TestProperties drives random arrival sequences and checks the package
// invariants after every step.
func TestProperties(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range seeds {
		propertyRun(t, uint64(seed))
	}
}

type tracked struct {
	it    Item[int]
	order int // add order within (source, priority)
}

func propertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := Policy{
		MaxBatch:    1 + rng.IntN(12),
		MaxDelay:    ms(rng.IntN(20)),
		SourceShare: []float64{0.25, 0.5, 1, 0.3}[rng.IntN(4)],
	}
	p.MaxQueue = p.MaxBatch + rng.IntN(40)
	if rng.IntN(2) == 0 {
		p.QueueTimeout = ms(5 + rng.IntN(40))
	}
	for range rng.IntN(3) {
		p.PreferredSizes = append(p.PreferredSizes, 1+rng.IntN(p.MaxBatch))
	}
	b, err := New[int](p)
	if err != nil {
		t.Fatalf("seed %d: New(%+v): %v", seed, p, err)
	}
	capOf := func(k int) int { return max(1, int(p.SourceShare*float64(k)+1e-9)) }
	nSources := 1 + rng.IntN(5)
	nPrios := 1 + rng.IntN(3)

	pending := map[int]tracked{} // by value
	done := map[int]string{}     // value -> how it left
	lastOrder := map[string]int{}
	nextOrder := map[string]int{}
	now := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d policy %+v: %s", seed, p, fmt.Sprintf(format, args...))
	}
	finish := func(v int, how string) {
		t.Helper()
		if prev, ok := done[v]; ok {
			fail("item %d left twice: %s then %s", v, prev, how)
		}
		if _, ok := pending[v]; !ok {
			fail("item %d left (%s) but was never queued", v, how)
		}
		done[v] = how
		delete(pending, v)
	}
	deadline := func(it Item[int]) (time.Time, bool) {
		d := it.Timeout
		if d == 0 {
			d = p.QueueTimeout
		}
		return it.Arrived.Add(d), d > 0
	}
	checkBatch := func(batch []Item[int], nowT time.Time) {
		t.Helper()
		if len(batch) == 0 || len(batch) > p.MaxBatch {
			fail("batch size %d, want 1..%d", len(batch), p.MaxBatch)
		}
		counts := map[string]int{}
		for _, it := range batch {
			counts[it.Source]++
			if d, ok := deadline(it); ok && !nowT.Before(d) {
				fail("item %d batched at %v past its deadline %v", it.Value, nowT, d)
			}
			key := fmt.Sprint(it.Source, "/", it.Priority)
			o := pending[it.Value].order
			if o <= lastOrder[key] {
				fail("FIFO broken for %s: order %d after %d", key, o, lastOrder[key])
			}
			lastOrder[key] = o
			finish(it.Value, "batch")
		}
		c := capOf(len(batch))
		waiting := 0
		for _, w := range pending {
			if d, ok := deadline(w.it); ok && !nowT.Before(d) {
				continue // swept, not waiting
			}
			waiting++
			if counts[w.it.Source] >= c {
				continue
			}
			for _, it := range batch {
				if it.Priority < w.it.Priority {
					fail("item %d (prio %d) batched while %d (prio %d) waits", it.Value, it.Priority, w.it.Value, w.it.Priority)
				}
				if it.Priority == w.it.Priority && counts[it.Source] > c {
					fail("source %s took %d > cap %d of a batch of %d while %s (with %d) waits",
						it.Source, counts[it.Source], c, len(batch), w.it.Source, counts[w.it.Source])
				}
			}
		}
		// Caps never waste capacity: a batch is full whenever enough items
		// were waiting (leftover capacity is given back).
		if len(batch)+waiting >= p.MaxBatch && len(batch) != p.MaxBatch && len(p.PreferredSizes) == 0 {
			fail("batch of %d with %d more waiting, want MaxBatch=%d", len(batch), waiting, p.MaxBatch)
		}
	}

	v := 0
	for range 400 {
		switch op := rng.IntN(10); {
		case op < 5: // add
			it := Item[int]{
				Source:   string(rune('a' + rng.IntN(nSources))),
				Priority: rng.IntN(nPrios),
				Arrived:  at(now),
				Value:    v,
			}
			if rng.IntN(4) == 0 {
				it.Timeout = ms(1 + rng.IntN(30))
			}
			key := fmt.Sprint(it.Source, "/", it.Priority)
			nextOrder[key]++
			pending[v] = tracked{it: it, order: nextOrder[key]}
			flush, err := b.Add(it)
			switch {
			case errors.Is(err, ErrQueueFull):
				if b.Len() != p.MaxQueue {
					fail("ErrQueueFull with %d queued, max %d", b.Len(), p.MaxQueue)
				}
				finish(v, "queue_full")
			case err != nil:
				fail("Add: %v", err)
			case flush != (b.Ready(at(now)) == TriggerSize || b.Ready(at(now)) == TriggerPreferred):
				fail("Add flush=%v but Ready=%v", flush, b.Ready(at(now)))
			}
			v++
		case op < 7: // time passes
			now += rng.IntN(8)
		case op < 9: // the owner's timer loop
			for _, r := range b.Expired(at(now)) {
				if d, ok := deadline(r.Item); !ok || at(now).Before(d) || r.Reason != ReasonTimeout {
					fail("item %d rejected (%s) at %d before its deadline", r.Item.Value, r.Reason, now)
				}
				finish(r.Item.Value, "timeout")
			}
			for batch := b.Flush(at(now)); batch != nil; batch = b.Flush(at(now)) {
				checkBatch(batch, at(now))
			}
			for _, r := range b.Expired(at(now)) {
				finish(r.Item.Value, "timeout")
			}
			// Nothing due is left behind.
			if tr := b.Ready(at(now)); tr != TriggerNone {
				fail("after flushing, Ready = %v with %d queued", tr, b.Len())
			}
			if d, ok := b.UntilNext(at(now)); ok != (b.Len() > 0) || (ok && d <= 0) {
				fail("UntilNext = %v, %v with %d queued", d, ok, b.Len())
			}
		default:
			if batch := b.ForceFlush(at(now)); batch != nil {
				checkBatch(batch, at(now))
			}
		}
		if b.Len() > p.MaxQueue {
			fail("queued %d > MaxQueue %d", b.Len(), p.MaxQueue)
		}
	}
	// Drain: every item must come out exactly once.
	for batch := b.ForceFlush(at(now)); batch != nil; batch = b.ForceFlush(at(now)) {
		checkBatch(batch, at(now))
	}
	for _, r := range b.Expired(at(now)) {
		finish(r.Item.Value, "timeout")
	}
	if len(pending) != 0 || len(done) != v {
		fail("%d items still pending, %d of %d accounted for", len(pending), len(done), v)
	}
	s := b.Stats()
	if s.Batched+s.RejectedTimeout+s.RejectedQueueFull != uint64(v) || s.Added+s.RejectedQueueFull != uint64(v) {
		fail("stats %+v do not add up to %d items", s, v)
	}
	if s.FlushSize+s.FlushPreferred+s.FlushDelay+s.FlushExplicit != s.Batches {
		fail("stats %+v: flush triggers do not add up to batches", s)
	}
}

func TestTriggerString(t *testing.T) {
	got := fmt.Sprint(TriggerNone, TriggerSize, TriggerPreferred, TriggerDelay, TriggerExplicit, Trigger(9))
	if want := "none size preferred delay explicit Trigger(9)"; got != want {
		t.Fatalf("triggers = %q, want %q", got, want)
	}
}

func BenchmarkAddFlush(b *testing.B) {
	bt, err := New[int](Policy{MaxBatch: 32, MaxQueue: 1024, MaxDelay: ms(5), SourceShare: 0.25, QueueTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	srcs := []string{"cam0", "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "cam7"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		if flush, _ := bt.Add(Item[int]{Source: srcs[i%len(srcs)], Arrived: now, Value: i}); flush {
			bt.Flush(now)
		}
	}
}
