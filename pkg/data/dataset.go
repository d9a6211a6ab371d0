package data

import (
	"fmt"
	"os"
	"sort"
	"sync"
)

// Blocks are the separate decisions that make a dataset: which items
// (Items, from a source), how they are labelled (Label), how they are split
// (Split). Build applies them.
type Blocks struct {
	Task Task
	// Classes fixes the class names and their order. Nil: the sorted set
	// of labels seen (Classify, MultiLabel); required for Segment.
	Classes []string
	// Void names the class metrics ignore (Segment); "" for none.
	Void string
	// Points is the number of (x,y) points per item (Regress).
	Points int
	Items  []Entry
	Label  Labeller
	Split  Splitter
}

// Build labels every entry, maps class names to indices, checks targets
// (an unknown class, a missing mask file, a mask whose size differs from
// its image, the wrong number of points), and splits.
func (b Blocks) Build() (Split, error) {
	if len(b.Items) == 0 {
		return Split{}, fmt.Errorf("%w: blocks: no items", ErrData)
	}
	if b.Label == nil || b.Split == nil {
		return Split{}, fmt.Errorf("%w: blocks: Label and Split are required", ErrData)
	}
	targets := make([]Target, len(b.Items))
	for i, e := range b.Items {
		t, err := b.Label(e)
		if err != nil {
			return Split{}, err
		}
		targets[i] = t
	}
	meta := Meta{Task: b.Task, Classes: b.Classes, VoidClass: -1, Points: b.Points}
	switch b.Task {
	case Classify, MultiLabel:
		if meta.Classes == nil {
			seen := map[string]bool{}
			for _, t := range targets {
				for _, l := range t.Labels {
					if !seen[l] {
						seen[l] = true
						meta.Classes = append(meta.Classes, l)
					}
				}
			}
			sort.Strings(meta.Classes)
		}
	case Segment:
		if len(meta.Classes) == 0 {
			return Split{}, fmt.Errorf("%w: blocks: segmentation needs Classes", ErrData)
		}
	case Regress:
		if b.Points < 1 {
			return Split{}, fmt.Errorf("%w: blocks: regression needs Points >= 1 (got=%d)", ErrData, b.Points)
		}
	default:
		return Split{}, fmt.Errorf("%w: blocks: unknown task %q", ErrData, b.Task)
	}
	index := map[string]int{}
	for i, c := range meta.Classes {
		index[c] = i
	}
	if b.Void != "" {
		v, ok := index[b.Void]
		if !ok {
			return Split{}, fmt.Errorf("%w: blocks: void class %q not in classes %v", ErrData, b.Void, meta.Classes)
		}
		meta.VoidClass = v
	}
	items := make([]labelled, len(b.Items))
	for i, e := range b.Items {
		t := targets[i]
		it := labelled{entry: e, maskPath: t.MaskPath, mask: t.Mask, points: t.Points}
		switch b.Task {
		case Classify:
			if len(t.Labels) != 1 {
				return Split{}, fmt.Errorf("%w: %s: single-label item has %d labels %v", ErrData, e.Name, len(t.Labels), t.Labels)
			}
			it.label = index[t.Labels[0]]
			if _, ok := index[t.Labels[0]]; !ok {
				return Split{}, fmt.Errorf("%w: %s: unknown class %q", ErrData, e.Name, t.Labels[0])
			}
		case MultiLabel:
			seen := map[int]bool{}
			for _, l := range t.Labels {
				k, ok := index[l]
				if !ok {
					return Split{}, fmt.Errorf("%w: %s: unknown class %q", ErrData, e.Name, l)
				}
				if !seen[k] {
					seen[k] = true
					it.labels = append(it.labels, k)
				}
			}
			sort.Ints(it.labels)
		case Segment:
			if err := checkMask(e, t); err != nil {
				return Split{}, err
			}
		case Regress:
			if len(t.Points) != 2*b.Points {
				return Split{}, fmt.Errorf("%w: %s: points (got=%d values, want=%d)", ErrData, e.Name, len(t.Points), 2*b.Points)
			}
		}
		items[i] = it
	}
	tr, va, err := b.Split(b.Items)
	if err != nil {
		return Split{}, err
	}
	all := &listDataset{items: items, meta: meta}
	return Split{Meta: meta, Train: Subset(all, tr), Valid: Subset(all, va)}, nil
}

// checkMask checks a mask exists and matches its image's size (headers
// only).
func checkMask(e Entry, t Target) error {
	var mw, mh int
	switch {
	case t.Mask != nil:
		mw, mh = t.Mask.Width, t.Mask.Height
	case t.MaskPath != "":
		var err error
		if mw, mh, err = ImageSize(t.MaskPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %s: no mask", ErrData, e.Name)
	}
	var iw, ih int
	if e.Image != nil {
		iw, ih = e.Image.Width, e.Image.Height
	} else {
		var err error
		if iw, ih, err = ImageSize(e.Path); err != nil {
			return err
		}
	}
	if mw != iw || mh != ih {
		return fmt.Errorf("%w: %s: mask size (got=%dx%d, want=%dx%d of %s)", ErrData, maskName(t), mw, mh, iw, ih, e.Name)
	}
	return nil
}

func maskName(t Target) string {
	if t.MaskPath != "" {
		return t.MaskPath
	}
	return "mask"
}

type labelled struct {
	entry    Entry
	label    int
	labels   []int
	maskPath string
	mask     *Image
	points   []float32
}

// listDataset is what Build makes: labelled entries decoded on Get.
type listDataset struct {
	items []labelled
	meta  Meta
}

func (d *listDataset) Len() int { return len(d.items) }

func (d *listDataset) Get(i int) (Item, error) {
	if i < 0 || i >= len(d.items) {
		return Item{}, fmt.Errorf("%w: index %d out of range [0,%d)", ErrData, i, len(d.items))
	}
	it := &d.items[i]
	im, err := it.entry.load()
	if err != nil {
		return Item{}, err
	}
	out := Item{Name: it.entry.Name, Pixels: im.Pixels, Width: im.Width, Height: im.Height, Channels: im.Channels,
		Label: it.label, Labels: it.labels}
	switch d.meta.Task {
	case Segment:
		m := it.mask
		if m == nil {
			mm, err := ReadImage(it.maskPath)
			if err != nil {
				return Item{}, err
			}
			m = &mm
		}
		if m.Channels != 1 || m.Width != im.Width || m.Height != im.Height {
			return Item{}, fmt.Errorf("%w: %s: mask shape (got=%dx%dx%d, want=%dx%dx1)", ErrData, it.maskPath, m.Width, m.Height, m.Channels, im.Width, im.Height)
		}
		for _, c := range m.Pixels {
			if int(c) >= len(d.meta.Classes) {
				return Item{}, fmt.Errorf("%w: %s: class id %d out of range (want<%d)", ErrData, it.maskPath, c, len(d.meta.Classes))
			}
		}
		out.Mask = m.Pixels
	case Regress:
		out.Points = make([]float32, len(it.points))
		for k, p := range it.points {
			size := float32(im.Width)
			if k%2 == 1 {
				size = float32(im.Height)
			}
			out.Points[k] = 2*p/size - 1
		}
	}
	return out, nil
}

// Subset is the dataset of ds's items at idx (in that order).
func Subset(ds Dataset, idx []int) Dataset {
	return &subset{ds: ds, idx: append([]int(nil), idx...)}
}

type subset struct {
	ds  Dataset
	idx []int
}

func (s *subset) Len() int { return len(s.idx) }
func (s *subset) Get(i int) (Item, error) {
	if i < 0 || i >= len(s.idx) {
		return Item{}, fmt.Errorf("%w: index %d out of range [0,%d)", ErrData, i, len(s.idx))
	}
	return s.ds.Get(s.idx[i])
}

// Cache memoizes ds's items in memory after their first Get (decoded files
// are read once per training run instead of once per epoch). Items are
// shared: callers must not modify them.
func Cache(ds Dataset) Dataset {
	return &cached{ds: ds, items: make([]Item, ds.Len()), done: make([]bool, ds.Len())}
}

type cached struct {
	ds    Dataset
	mu    sync.RWMutex
	items []Item
	done  []bool
}

func (c *cached) Len() int { return c.ds.Len() }
func (c *cached) Get(i int) (Item, error) {
	if i < 0 || i >= len(c.items) {
		return Item{}, fmt.Errorf("%w: index %d out of range [0,%d)", ErrData, i, len(c.items))
	}
	c.mu.RLock()
	it, ok := c.items[i], c.done[i]
	c.mu.RUnlock()
	if ok {
		return it, nil
	}
	it, err := c.ds.Get(i)
	if err != nil {
		return Item{}, err
	}
	c.mu.Lock()
	c.items[i], c.done[i] = it, true
	c.mu.Unlock()
	return it, nil
}

// fileExists reports whether path is a regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
