package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("data: loader closed")

// LoaderConfig says how Load batches a dataset. Zero fields get defaults
// (setDefaults); Size is required.
type LoaderConfig struct {
	// BatchSize is the number of items per batch. Default 64.
	BatchSize int
	// Size is the side of the square output (required).
	Size int
	// Channels of X: 1 or 3. 0: the first item's. Gray items are repeated
	// to 3 channels; colour items become gray (BT.601) for 1.
	Channels int
	// Shuffle orders the items by a permutation drawn from Seed and Epoch;
	// otherwise they come in dataset order.
	Shuffle bool
	// Seed and Epoch seed the order and every item's augmentation: the
	// same (Seed, Epoch) gives the same batches whatever Workers is. Use a
	// new Epoch per pass for new orders and new augmentations.
	Seed  uint64
	Epoch int
	// Augment, when non-nil, draws a random transform per item (training);
	// nil only resizes (validation).
	Augment *Augment
	// Resize is how an image becomes a square.
	Resize ResizeMethod
	// Padding is what the image shows outside itself (masks get Void).
	Padding Padding
	// Mean and Std are per-channel statistics of pixel/255 in RGB order
	// (ComputeStats); X = (pixel/255 - mean)/std. Nil: mean 0, std 1.
	Mean, Std []float32
	// DropLast drops the last batch when it is short.
	DropLast bool
	// Workers decode and augment in parallel, each building whole
	// batches. Default runtime.GOMAXPROCS(0).
	Workers int
	// Prefetch bounds the batches built ahead of Next. Default 2*Workers.
	Prefetch int
}

func (c *LoaderConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Prefetch == 0 {
		c.Prefetch = 2 * c.Workers
	}
}

// Validate reports the first invalid field, wrapping ErrData.
func (c *LoaderConfig) Validate() error {
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("%w: loader: batch size (got=%d, want>=1)", ErrData, c.BatchSize)
	case c.Size < 1 || c.Size > 4096:
		return fmt.Errorf("%w: loader: size (got=%d, want 1..4096)", ErrData, c.Size)
	case c.Channels != 0 && c.Channels != 1 && c.Channels != 3:
		return fmt.Errorf("%w: loader: channels (got=%d, want 0, 1 or 3)", ErrData, c.Channels)
	case c.Workers < 1 || c.Prefetch < 1:
		return fmt.Errorf("%w: loader: workers/prefetch (got=%d/%d, want>=1)", ErrData, c.Workers, c.Prefetch)
	case c.Resize != Squish && c.Resize != Crop:
		return fmt.Errorf("%w: loader: resize method (got=%d)", ErrData, c.Resize)
	case c.Padding < PadReflection || c.Padding > PadBorder:
		return fmt.Errorf("%w: loader: padding (got=%d)", ErrData, c.Padding)
	}
	if c.Augment != nil {
		if err := c.Augment.Validate(); err != nil {
			return err
		}
	}
	if (c.Mean == nil) != (c.Std == nil) {
		return fmt.Errorf("%w: loader: mean and std go together (got %d and %d values)", ErrData, len(c.Mean), len(c.Std))
	}
	for _, s := range c.Std {
		if !(s > 0) {
			return fmt.Errorf("%w: loader: std (got=%v, want>0)", ErrData, c.Std)
		}
	}
	return nil
}

// Load starts a pass over ds: workers decode, augment and normalise
// batches ahead of Next (at most Prefetch), which hands them out in order.
// The caller owns the returned Batches and must Close it; Close stops and
// joins every goroutine Load started. ctx bounds the whole pass.
func Load(ctx context.Context, ds Dataset, meta Meta, cfg LoaderConfig) (Batches, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := ds.Len()
	if n == 0 {
		return nil, fmt.Errorf("%w: loader: empty dataset", ErrData)
	}
	if cfg.Channels == 0 {
		it, err := ds.Get(0)
		if err != nil {
			return nil, err
		}
		cfg.Channels = it.Channels
		if cfg.Channels != 1 {
			cfg.Channels = 3
		}
	}
	if cfg.Mean != nil && (len(cfg.Mean) != cfg.Channels || len(cfg.Std) != cfg.Channels) {
		return nil, fmt.Errorf("%w: loader: mean/std length (got=%d/%d, want=%d channels)", ErrData, len(cfg.Mean), len(cfg.Std), cfg.Channels)
	}
	switch meta.Task {
	case Classify, MultiLabel, Segment, Regress:
	default:
		return nil, fmt.Errorf("%w: loader: unknown task %q", ErrData, meta.Task)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if cfg.Shuffle {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Epoch)))
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	nb := (n + cfg.BatchSize - 1) / cfg.BatchSize
	if cfg.DropLast {
		nb = n / cfg.BatchSize
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &loader{cfg: cfg, ds: ds, meta: meta, order: order, ctx: ctx, cancel: cancel,
		results: make([]chan result, nb), tokens: make(chan struct{}, cfg.Prefetch), jobs: make(chan int)}
	for k := range l.results {
		l.results[k] = make(chan result, 1)
	}
	l.wg.Add(1 + cfg.Workers)
	go l.feed()
	for w := 0; w < cfg.Workers; w++ {
		go l.work()
	}
	return l, nil
}

type result struct {
	b   *Batch
	err error
}

type loader struct {
	cfg     LoaderConfig
	ds      Dataset
	meta    Meta
	order   []int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	results []chan result // one per batch, capacity 1: reordering for free
	tokens  chan struct{} // taken per batch fed, given back by Next
	jobs    chan int
	next    int // owned by Next's caller
	err     error
	closed  bool
}

func (l *loader) feed() {
	defer l.wg.Done()
	defer close(l.jobs)
	for k := range l.results {
		select {
		case l.tokens <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		select {
		case l.jobs <- k:
		case <-l.ctx.Done():
			return
		}
	}
}

func (l *loader) work() {
	defer l.wg.Done()
	for k := range l.jobs {
		b, err := l.build(k)
		l.results[k] <- result{b, err} // never blocks: one send per channel
		if l.ctx.Err() != nil {
			return
		}
	}
}

// Next returns the next batch in order, or (nil, io.EOF) after the last.
func (l *loader) Next(ctx context.Context) (*Batch, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if l.err != nil {
		return nil, l.err
	}
	if l.next >= len(l.results) {
		return nil, io.EOF
	}
	select {
	case r := <-l.results[l.next]:
		l.next++
		<-l.tokens
		if r.err != nil {
			l.err = r.err
			return nil, r.err
		}
		return r.b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		l.err = l.ctx.Err()
		return nil, l.err
	}
}

// Close stops the workers and waits for them.
func (l *loader) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	l.cancel()
	l.wg.Wait()
	return nil
}

// itemRNG is the random source of the item at position pos of this pass:
// independent of which worker builds it.
func (l *loader) itemRNG(pos int) *rand.Rand {
	return rand.New(rand.NewPCG(l.cfg.Seed^0x9e3779b97f4a7c15, uint64(l.cfg.Epoch)<<32^uint64(pos)))
}

func (l *loader) build(k int) (*Batch, error) {
	cfg := &l.cfg
	lo := k * cfg.BatchSize
	hi := min(lo+cfg.BatchSize, len(l.order))
	n, S, C := hi-lo, cfg.Size, cfg.Channels
	b := &Batch{N: n, C: C, Size: S, X: make([]float32, n*C*S*S), Index: make([]int, n)}
	switch l.meta.Task {
	case Classify:
		b.YShape = []int{n}
	case MultiLabel:
		b.YShape = []int{n, len(l.meta.Classes)}
	case Segment:
		b.YShape = []int{n, S, S}
	case Regress:
		b.YShape = []int{n, 2 * l.meta.Points}
	}
	per := 1
	for _, d := range b.YShape[1:] {
		per *= d
	}
	b.Y = make([]float32, n*per)
	for j := 0; j < n; j++ {
		if err := l.ctx.Err(); err != nil {
			return nil, err
		}
		pos := lo + j
		idx := l.order[pos]
		b.Index[j] = idx
		it, err := l.ds.Get(idx)
		if err != nil {
			return nil, err
		}
		if err := l.checkTarget(it); err != nil {
			return nil, err
		}
		t := SampleTransform(l.itemRNG(pos), cfg.Augment, it.Width, it.Height, cfg.Resize)
		out, err := t.Apply(it, S, l.meta.VoidClass, cfg.Padding)
		if err != nil {
			return nil, err
		}
		l.fillX(b.X[j*C*S*S:(j+1)*C*S*S], out)
		y := b.Y[j*per : (j+1)*per]
		switch l.meta.Task {
		case Classify:
			y[0] = float32(out.Label)
		case MultiLabel:
			for _, c := range out.Labels {
				y[c] = 1
			}
		case Segment:
			for i, c := range out.Mask {
				y[i] = float32(c)
			}
		case Regress:
			copy(y, out.Points)
		}
	}
	return b, nil
}

func (l *loader) checkTarget(it Item) error {
	switch l.meta.Task {
	case Classify:
		if it.Label < 0 || it.Label >= len(l.meta.Classes) {
			return fmt.Errorf("%w: %s: label (got=%d, want 0..%d)", ErrData, it.Name, it.Label, len(l.meta.Classes)-1)
		}
	case MultiLabel:
		for _, c := range it.Labels {
			if c < 0 || c >= len(l.meta.Classes) {
				return fmt.Errorf("%w: %s: label (got=%d, want 0..%d)", ErrData, it.Name, c, len(l.meta.Classes)-1)
			}
		}
	case Segment:
		if len(it.Mask) != it.Width*it.Height {
			return fmt.Errorf("%w: %s: mask size (got=%d, want=%dx%d)", ErrData, it.Name, len(it.Mask), it.Width, it.Height)
		}
	case Regress:
		if len(it.Points) != 2*l.meta.Points {
			return fmt.Errorf("%w: %s: points (got=%d values, want=%d)", ErrData, it.Name, len(it.Points), 2*l.meta.Points)
		}
	}
	return nil
}

// fillX writes an item (S x S, 1 or 3 channels, BGR) into x as (C,S,S)
// RGB, scaled to [0,1] and normalised.
func (l *loader) fillX(x []float32, it Item) {
	C, plane := l.cfg.Channels, it.Width*it.Height
	mean, std := l.cfg.Mean, l.cfg.Std
	for c := 0; c < C; c++ {
		m, s := float32(0), float32(1)
		if mean != nil {
			m, s = mean[c], std[c]
		}
		inv := 1 / (255 * s)
		dst := x[c*plane : (c+1)*plane]
		switch {
		case it.Channels == 1:
			for i := range dst {
				dst[i] = float32(it.Pixels[i])*inv - m/s
			}
		case C == 3:
			src := 2 - c // RGB from BGR
			for i := range dst {
				dst[i] = float32(it.Pixels[3*i+src])*inv - m/s
			}
		default: // colour to gray
			for i := range dst {
				p := it.Pixels[3*i:]
				g := 0.114*float32(p[0]) + 0.587*float32(p[1]) + 0.299*float32(p[2])
				dst[i] = g*inv - m/s
			}
		}
	}
}

// ComputeStats returns the per-channel mean and std of pixel/255 (RGB
// order, channels as LoaderConfig.Channels would give them: 0 means the
// first item's) over at most maxItems items spread evenly over ds (0: all).
func ComputeStats(ctx context.Context, ds Dataset, channels, maxItems int) (mean, std []float32, err error) {
	n := ds.Len()
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: stats: empty dataset", ErrData)
	}
	if maxItems <= 0 || maxItems > n {
		maxItems = n
	}
	var sum, sq []float64
	var count float64
	for k := 0; k < maxItems; k++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		it, err := ds.Get(k * n / maxItems)
		if err != nil {
			return nil, nil, err
		}
		if err := checkItem(it); err != nil {
			return nil, nil, err
		}
		if channels == 0 {
			channels = it.Channels
		}
		if sum == nil {
			sum, sq = make([]float64, channels), make([]float64, channels)
		}
		l := loader{cfg: LoaderConfig{Channels: channels}}
		x := make([]float32, channels*it.Width*it.Height)
		l.fillX(x, it)
		plane := it.Width * it.Height
		for c := 0; c < channels; c++ {
			for _, v := range x[c*plane : (c+1)*plane] {
				sum[c] += float64(v)
				sq[c] += float64(v) * float64(v)
			}
		}
		count += float64(plane)
	}
	mean, std = make([]float32, channels), make([]float32, channels)
	for c := range mean {
		m := sum[c] / count
		mean[c] = float32(m)
		std[c] = float32(math.Sqrt(math.Max(sq[c]/count-m*m, 1e-12)))
	}
	return mean, std, nil
}
