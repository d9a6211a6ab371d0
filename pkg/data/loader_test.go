package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// memDataset is items in memory; failAt makes Get fail there.
type memDataset struct {
	items  []Item
	failAt int
}

func (m *memDataset) Len() int { return len(m.items) }
func (m *memDataset) Get(i int) (Item, error) {
	if i == m.failAt {
		return Item{}, fmt.Errorf("%w: item%d.png: broken", ErrData, i)
	}
	return m.items[i], nil
}

func synthetic(n, w, h, c int) *memDataset {
	d := &memDataset{failAt: -1}
	for i := 0; i < n; i++ {
		it := Item{Name: fmt.Sprint(i), Width: w, Height: h, Channels: c, Pixels: make([]byte, w*h*c),
			Label: i % 3, Labels: []int{i % 3, 3}, Mask: make([]byte, w*h), Points: []float32{0.5, -0.25}}
		for k := range it.Pixels {
			it.Pixels[k] = byte((i*7 + k*13) % 256)
		}
		for k := range it.Mask {
			it.Mask[k] = byte((i + k) % 3)
		}
		d.items = append(d.items, it)
	}
	return d
}

func drain(t *testing.T, ds Dataset, meta Meta, cfg LoaderConfig) []*Batch {
	t.Helper()
	ctx := context.Background()
	bs, err := Load(ctx, ds, meta, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	var out []*Batch
	for {
		b, err := bs.Next(ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func TestLoaderDeterministic(t *testing.T) {
	ds := synthetic(37, 20, 16, 3)
	meta := Meta{Task: Segment, Classes: []string{"a", "b", "void"}, VoidClass: 2}
	cfg := LoaderConfig{BatchSize: 8, Size: 12, Shuffle: true, Seed: 42, Epoch: 1,
		Augment: &Augment{Dihedral: true, MaxRotate: 20, MaxZoom: 1.3, MaxLighting: 0.3, MaxWarp: 0.2}}
	one := cfg
	one.Workers = 1
	two := cfg
	two.Workers, two.Prefetch = 2, 1
	a, b := drain(t, ds, meta, one), drain(t, ds, meta, two)
	if len(a) != 5 || a[4].N != 5 {
		t.Fatalf("got %d batches, last of %d; want 5, last of 5", len(a), a[len(a)-1].N)
	}
	var seen []int
	for k := range a {
		if !slices.Equal(a[k].Index, b[k].Index) || !slices.Equal(a[k].X, b[k].X) || !slices.Equal(a[k].Y, b[k].Y) {
			t.Fatalf("batch %d differs between 1 and 2 workers", k)
		}
		seen = append(seen, a[k].Index...)
	}
	if slices.Equal(seen, sortedCopy(seen)) {
		t.Fatal("shuffle kept dataset order")
	}
	if !slices.Equal(sortedCopy(seen), seqInts(37)) {
		t.Fatalf("not a permutation: %v", seen)
	}
	next := cfg
	next.Epoch = 2
	c := drain(t, ds, meta, next)
	if slices.Equal(c[0].Index, a[0].Index) {
		t.Fatal("a new epoch gave the same order")
	}
	plain := drain(t, ds, meta, LoaderConfig{BatchSize: 8, Size: 12, DropLast: true})
	var order []int
	for _, b := range plain {
		order = append(order, b.Index...)
	}
	if !slices.Equal(order, seqInts(32)) {
		t.Fatalf("unshuffled with drop-last: got %v", order)
	}
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestLoaderLayouts(t *testing.T) {
	ds := synthetic(5, 6, 6, 3)
	cases := []struct {
		meta  Meta
		shape []int
		first []float32
	}{
		{Meta{Task: Classify, Classes: []string{"a", "b", "c"}}, []int{5}, []float32{0, 1}},
		{Meta{Task: MultiLabel, Classes: []string{"a", "b", "c", "d"}}, []int{5, 4}, []float32{1, 0, 0, 1, 0, 1, 0, 1}},
		{Meta{Task: Segment, Classes: []string{"a", "b", "c"}, VoidClass: 2}, []int{5, 6, 6}, []float32{0, 1, 2, 0}},
		{Meta{Task: Regress, Points: 1}, []int{5, 2}, []float32{0.5, -0.25, 0.5}},
	}
	for _, c := range cases {
		bs := drain(t, ds, c.meta, LoaderConfig{BatchSize: 8, Size: 6})
		b := bs[0]
		if !slices.Equal(b.YShape, c.shape) || b.N != 5 || b.C != 3 || b.Size != 6 || len(b.X) != 5*3*36 {
			t.Fatalf("%s: got N=%d C=%d size=%d yshape=%v", c.meta.Task, b.N, b.C, b.Size, b.YShape)
		}
		if !slices.Equal(b.Y[:len(c.first)], c.first) {
			t.Errorf("%s: Y starts %v, want %v", c.meta.Task, b.Y[:len(c.first)], c.first)
		}
	}
	// X is RGB: channel 0 of X is byte 2 (R) of the BGR item
	b := drain(t, ds, cases[0].meta, LoaderConfig{BatchSize: 1, Size: 6})[0]
	it, _ := ds.Get(0)
	if got, want := b.X[0], float32(it.Pixels[2])/255; math.Abs(float64(got-want)) > 1e-6 {
		t.Fatalf("X[0]: got %v, want R/255 = %v", got, want)
	}
	// gray to 3 channels and back
	g := drain(t, synthetic(2, 4, 4, 1), cases[0].meta, LoaderConfig{BatchSize: 2, Size: 4, Channels: 3})[0]
	if g.C != 3 || g.X[0] != g.X[16] || g.X[0] != g.X[32] {
		t.Fatalf("gray->3: C=%d %v %v %v", g.C, g.X[0], g.X[16], g.X[32])
	}
}

func TestLoaderNormalise(t *testing.T) {
	ds := synthetic(20, 8, 8, 3)
	meta := Meta{Task: Classify, Classes: []string{"a", "b", "c"}}
	mean, std, err := ComputeStats(context.Background(), ds, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := drain(t, ds, meta, LoaderConfig{BatchSize: 20, Size: 8, Mean: mean, Std: std})[0]
	for c := 0; c < 3; c++ {
		var s, sq float64
		n := 0
		for i := 0; i < 20; i++ {
			for _, v := range b.X[(i*3+c)*64 : (i*3+c+1)*64] {
				s += float64(v)
				sq += float64(v) * float64(v)
				n++
			}
		}
		m := s / float64(n)
		sd := math.Sqrt(sq/float64(n) - m*m)
		if math.Abs(m) > 1e-4 || math.Abs(sd-1) > 1e-4 {
			t.Errorf("channel %d: mean %.5f std %.5f after normalising, want 0 and 1", c, m, sd)
		}
	}
}

func TestLoaderCloseJoins(t *testing.T) {
	ds := synthetic(200, 16, 16, 3)
	meta := Meta{Task: Classify, Classes: []string{"a", "b", "c"}}
	base := runtime.NumGoroutine()
	ctx := context.Background()
	for _, stopAfter := range []int{0, 1, 3, 100} {
		bs, err := Load(ctx, ds, meta, LoaderConfig{BatchSize: 4, Size: 16, Workers: 2, Prefetch: 2})
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < stopAfter; k++ {
			if _, err := bs.Next(ctx); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		if err := bs.Close(); err != nil {
			t.Fatal(err)
		}
		// A joined goroutine has called wg.Done but may not have exited
		// yet: give it a moment, then a leak is a leak.
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n != base && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(time.Millisecond)
		}
		if n != base {
			t.Fatalf("after %d batches and Close: %d goroutines, want %d", stopAfter, n, base)
		}
		if _, err := bs.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: got %v", err)
		}
		bs.Close()
	}
	// a cancelled context ends Next and Close still joins
	cctx, cancel := context.WithCancel(ctx)
	bs, err := Load(cctx, ds, meta, LoaderConfig{BatchSize: 4, Size: 16})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		if _, err := bs.Next(ctx); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("after cancel: got %v", err)
			}
			break
		}
	}
	bs.Close()
	if n := runtime.NumGoroutine(); n != base {
		t.Fatalf("after cancel and Close: %d goroutines, want %d", n, base)
	}
}

func TestLoaderErrors(t *testing.T) {
	ds := synthetic(10, 8, 8, 3)
	meta := Meta{Task: Classify, Classes: []string{"a", "b", "c"}}
	ctx := context.Background()
	for name, cfg := range map[string]LoaderConfig{
		"size":     {BatchSize: 2},
		"batch":    {BatchSize: -1, Size: 8},
		"channels": {Size: 8, Channels: 2},
		"std":      {Size: 8, Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}},
		"meanlen":  {Size: 8, Mean: []float32{0}, Std: []float32{1}},
		"augment":  {Size: 8, Augment: &Augment{MaxZoom: 0.5}},
	} {
		if _, err := Load(ctx, ds, meta, cfg); !errors.Is(err, ErrData) {
			t.Errorf("%s: got %v, want ErrData", name, err)
		}
	}
	ds.failAt = 5
	bs, err := Load(ctx, ds, meta, LoaderConfig{BatchSize: 4, Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if _, err := bs.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Next(ctx); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "item5.png") {
		t.Fatalf("broken item: got %v", err)
	}
	bad := synthetic(3, 8, 8, 3)
	bad.items[1].Label = 7
	bs2, _ := Load(ctx, bad, meta, LoaderConfig{BatchSize: 4, Size: 8})
	defer bs2.Close()
	if _, err := bs2.Next(ctx); !errors.Is(err, ErrData) {
		t.Fatalf("label out of range: got %v", err)
	}
}

func BenchmarkLoaderTiles(b *testing.B) {
	ds := synthetic(256, 64, 64, 1)
	meta := Meta{Task: MultiLabel, Classes: []string{"a", "b", "c", "d"}}
	aug := &Augment{Dihedral: true, MaxRotate: 10, MaxZoom: 1.1, MaxLighting: 0.1}
	ctx := context.Background()
	b.SetBytes(256 * 64 * 64)
	for i := 0; i < b.N; i++ {
		bs, err := Load(ctx, ds, meta, LoaderConfig{BatchSize: 64, Size: 64, Augment: aug, Shuffle: true, Epoch: i})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := bs.Next(ctx); err != nil {
				break
			}
		}
		bs.Close()
	}
}

// BenchmarkLoaderFashion is the Fashion-MNIST recipe's loader: 28x28 gray
// items, flips, shifts and random erasing, batches of 64, one worker (its
// cost per item is what the training step shares its cores with).
func BenchmarkLoaderFashion(b *testing.B) {
	ds := synthetic(1024, 28, 28, 1)
	for i := range ds.items {
		ds.items[i].Mask, ds.items[i].Points = nil, nil
	}
	meta := Meta{Task: Classify, Classes: []string{"a", "b", "c", "d"}}
	aug := &Augment{FlipH: true, MaxShift: 0.1, Erase: 0.5}
	ctx := context.Background()
	b.SetBytes(1024 * 28 * 28)
	for i := 0; i < b.N; i++ {
		bs, err := Load(ctx, ds, meta, LoaderConfig{BatchSize: 64, Size: 28, Augment: aug, Padding: PadZeros, Shuffle: true, Epoch: i, Workers: 1,
			Mean: []float32{0.3}, Std: []float32{0.35}})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := bs.Next(ctx); err != nil {
				break
			}
		}
		bs.Close()
	}
}
