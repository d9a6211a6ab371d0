package video

import (
	"math"
	"slices"
	"testing"
	"time"
)

func keptSeqs(s Sampler, n int, ts func(i int) time.Duration) []int64 {
	var out []int64
	for i := range n {
		if s.Keep(int64(i), ts(i)) {
			out = append(out, int64(i))
		}
	}
	return out
}

func TestSamplerEveryN(t *testing.T) {
	got := keptSeqs(Sampler{EveryN: 5}, 795, func(i int) time.Duration { return 0 })
	if len(got) != 159 || got[0] != 0 || got[158] != 790 {
		t.Fatalf("every 5th of 795: got %d frames (%v..%v), want 159 (0..790)", len(got), got[0], got[len(got)-1])
	}
	for _, s := range []Sampler{{EveryN: 5}, {EveryN: 1}, {FPS: 2}, {}} {
		for seq := range int64(20) {
			skips := s.Skips(seq)
			if skips && s.Keep(seq, time.Duration(seq)*time.Second) {
				t.Fatalf("%+v: Skips(%d) but Keep kept it", s, seq)
			}
			if s.EveryN == 5 && skips != (seq%5 != 0) {
				t.Fatalf("every 5th: Skips(%d) = %v", seq, skips)
			}
			if s.EveryN != 5 && skips {
				t.Fatalf("%+v: Skips(%d) without EveryN", s, seq)
			}
		}
	}
	if all := keptSeqs(Sampler{EveryN: 1}, 7, func(int) time.Duration { return 0 }); len(all) != 7 {
		t.Fatalf("every 1st: got %d, want 7", len(all))
	}
}

func TestSamplerFPS(t *testing.T) {
	at10 := func(i int) time.Duration { return time.Duration(i) * 100 * time.Millisecond }
	// 2 fps out of 10 fps: every 5th frame.
	got := keptSeqs(Sampler{FPS: 2}, 795, at10)
	if len(got) != 159 || got[1] != 5 || got[158] != 790 {
		t.Fatalf("2 of 10 fps: got %d frames %v..., want 159 (0,5,..,790)", len(got), got[:3])
	}
	// 3 fps: grid 0, 333.3, 666.7, 1000 ms -> frames at 0, 400, 700, 1000 ms.
	got = keptSeqs(Sampler{FPS: 3}, 11, at10)
	if want := []int64{0, 4, 7, 10}; !slices.Equal(got, want) {
		t.Fatalf("3 of 10 fps: got %v, want %v", got, want)
	}
	// Target above the source rate keeps everything.
	if got = keptSeqs(Sampler{FPS: 30}, 50, at10); len(got) != 50 {
		t.Fatalf("30 of 10 fps: got %d, want 50", len(got))
	}
	// A gap in the stream: one frame after the gap, then back on the grid.
	gap := func(i int) time.Duration {
		if i >= 3 {
			return 5*time.Second + time.Duration(i)*100*time.Millisecond
		}
		return time.Duration(i) * 100 * time.Millisecond
	}
	got = keptSeqs(Sampler{FPS: 1}, 20, gap)
	// times: 0,100,200, 5300,5400,...; grid 1s: keep 0, 5300 (k->6: 6000ms), 6000 is i=10, 7000 is i=20 (excluded).
	if want := []int64{0, 3, 10}; !slices.Equal(got, want) {
		t.Fatalf("fps with gap: got %v, want %v", got, want)
	}
	// Deterministic: same input, same output.
	a := keptSeqs(Sampler{FPS: 7.3}, 500, at10)
	b := keptSeqs(Sampler{FPS: 7.3}, 500, at10)
	if !slices.Equal(a, b) {
		t.Fatal("fps sampling is not deterministic")
	}
	want := int(math.Floor(49.9*7.3)) + 1 // grid points in [0, 49.9s]
	if len(a) != want {
		t.Fatalf("7.3 fps over 49.9 s: got %d, want %d", len(a), want)
	}
}

func TestStreamClock(t *testing.T) {
	c := streamClock{fps: 10}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	steps := []struct {
		in   float64
		want time.Duration
	}{
		{0, 0},
		{100, ms(100)},
		{0, ms(200)},            // backend reset: previous + period
		{math.NaN(), ms(300)},   // invalid
		{-5, ms(400)},           // invalid
		{1000, ms(1000)},        // jump forward is kept
		{math.Inf(1), ms(1100)}, // invalid
		{1100, ms(1200)},        // not after previous
		{1300, ms(1300)},        // fine again
	}
	for i, s := range steps {
		if got := c.at(s.in); got != s.want {
			t.Fatalf("step %d: at(%v) = %v, want %v", i, s.in, got, s.want)
		}
	}
	c.segment(0) // reconnect; unknown fps -> 40 ms period
	if got := c.at(0); got != ms(1400) {
		t.Fatalf("after reconnect: got %v, want 1.4s", got)
	}
	if got := c.at(math.NaN()); got != ms(1440) {
		t.Fatalf("unknown fps fallback: got %v, want 1.44s", got)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	cases := []struct {
		k    int
		r    float64
		want time.Duration
	}{
		{0, 0, 100 * time.Millisecond},
		{1, 0, 200 * time.Millisecond},
		{3, 0, 800 * time.Millisecond},
		{4, 0, time.Second},
		{60, 0, time.Second},
		{0, 0.5, 75 * time.Millisecond},
		{4, 0.999999, 500*time.Millisecond + 500*time.Nanosecond},
	}
	for _, c := range cases {
		if got := b.delay(c.k, c.r); got != c.want {
			t.Errorf("delay(%d, %v) = %v, want %v", c.k, c.r, got, c.want)
		}
	}
}
