package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func entries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		dir := "train"
		if i%4 == 0 {
			dir = "valid"
		}
		es[i] = Entry{Name: fmt.Sprintf("e%d", i), Path: fmt.Sprintf("/d/%s/c%d/e%d.png", dir, i%3, i), Seq: 1000 - 3*i}
	}
	return es
}

// checkSplit: disjoint, sorted, in range, and deterministic.
func checkSplit(t *testing.T, name string, s Splitter, es []Entry, full bool) (train, valid []int) {
	t.Helper()
	tr, va, err := s(es)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tr2, va2, _ := s(es)
	if !slices.Equal(tr, tr2) || !slices.Equal(va, va2) {
		t.Fatalf("%s: not deterministic", name)
	}
	if !slices.IsSorted(tr) || !slices.IsSorted(va) {
		t.Fatalf("%s: unsorted", name)
	}
	seen := map[int]bool{}
	for _, i := range append(append([]int(nil), tr...), va...) {
		if i < 0 || i >= len(es) || seen[i] {
			t.Fatalf("%s: index %d repeated or out of range (train %v valid %v)", name, i, tr, va)
		}
		seen[i] = true
	}
	if full && len(seen) != len(es) {
		t.Fatalf("%s: covers %d of %d", name, len(seen), len(es))
	}
	return tr, va
}

func TestSplitsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := 0; trial < 200; trial++ {
		n := 5 + rng.IntN(300)
		es := entries(n)
		pct := rng.Float64() * 0.9
		seed := rng.Uint64()
		_, va := checkSplit(t, "random", RandomSplit(pct, seed), es, true)
		if want := int(pct*float64(n) + 0.5); len(va) != want {
			t.Fatalf("random: %d valid of %d at %.2f, want %d", len(va), n, pct, want)
		}
		_, va2, _ := RandomSplit(pct, seed+1)(es)
		if len(va) > 3 && slices.Equal(va, va2) {
			t.Fatalf("random: seeds %d and %d agree", seed, seed+1)
		}
		_, fv := checkSplit(t, "folder", SplitByFolder("train", "valid"), es, true)
		for _, i := range fv {
			if i%4 != 0 {
				t.Fatalf("folder: %s in valid", es[i].Path)
			}
		}
		checkSplit(t, "func", SplitByFunc(func(e Entry) bool { return strings.HasSuffix(e.Name, "7") }), es, true)
		segs := 2 + rng.IntN(min(8, n-1))
		s := SegmentSplit{Segments: segs, Valid: 1 + rng.IntN(segs-1), Gap: rng.IntN(4), Seed: seed}
		tr, va := checkSplit(t, "segments", SplitBySegments(s), es, s.Gap == 0)
		// validation is whole segments of consecutive Seq; no training item
		// is within Gap ranks of a validation item
		rank := map[int]int{} // entry -> rank by Seq (Seq decreases with index here)
		for i := range es {
			rank[i] = n - 1 - i
		}
		for _, v := range va {
			for _, tt := range tr {
				if d := rank[v] - rank[tt]; d >= -s.Gap && d <= s.Gap {
					t.Fatalf("segments %+v: train %d within gap of valid %d", s, tt, v)
				}
			}
		}
		if s.Gap == 0 && len(va) == 0 {
			t.Fatalf("segments %+v: empty validation", s)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	es := entries(10)
	if _, _, err := RandomSplit(1.5, 1)(es); !errors.Is(err, ErrData) {
		t.Errorf("pct 1.5: %v", err)
	}
	if _, _, err := SplitBySegments(SegmentSplit{Segments: 3, Valid: 3})(es); !errors.Is(err, ErrData) {
		t.Errorf("all segments valid: %v", err)
	}
	bad := append(entries(3), Entry{Name: "x", Path: "/elsewhere/x.png"})
	if _, _, err := SplitByFolder("train", "valid")(bad); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "/elsewhere/x.png") {
		t.Errorf("folder: %v", err)
	}
	names := filepath.Join(t.TempDir(), "valid.txt")
	os.WriteFile(names, []byte("# validation\ne1\ne3.png\n\n"), 0o644)
	_, va := checkSplit(t, "names", SplitByNames(names), es, true)
	if !slices.Equal(va, []int{1, 3}) {
		t.Errorf("names: got %v, want [1 3]", va)
	}
	os.WriteFile(names, []byte("e1\nnope\n"), 0o644)
	if _, _, err := SplitByNames(names)(es); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown name: %v", err)
	}
}

// writeFolder makes a tiny image dataset on disk: folder/<class>/i.png.
func writeImage(t *testing.T, path string, w, h, c int, v byte) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	px := make([]byte, w*h*c)
	for i := range px {
		px[i] = v
	}
	if err := WritePNG(path, Image{Pixels: px, Width: w, Height: h, Channels: c}); err != nil {
		t.Fatal(err)
	}
}

func TestBlocksFolder(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 6; i++ {
		cls := []string{"cat", "dog"}[i%2]
		writeImage(t, filepath.Join(dir, cls, fmt.Sprintf("%d.png", i)), 8, 6, 3, byte(40*i))
	}
	es, err := FromFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Blocks{Task: Classify, Items: es, Label: LabelFromFolder(), Split: RandomSplit(0.5, 1)}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Meta.Classes, []string{"cat", "dog"}) || s.Train.Len() != 3 || s.Valid.Len() != 3 {
		t.Fatalf("got %+v %d/%d", s.Meta, s.Train.Len(), s.Valid.Len())
	}
	it, err := s.Train.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if strings.Contains(it.Name, "/dog/") {
		want = 1
	}
	if it.Label != want || it.Width != 8 || it.Height != 6 || it.Channels != 3 {
		t.Fatalf("item %s: label %d, %dx%dx%d", it.Name, it.Label, it.Width, it.Height, it.Channels)
	}
	if _, err := FromFolder(filepath.Join(dir, "none")); !errors.Is(err, ErrData) {
		t.Errorf("missing folder: %v", err)
	}
}

func TestBlocksCSVMultiLabel(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 4; i++ {
		writeImage(t, filepath.Join(dir, "train-jpg", fmt.Sprintf("train_%d.png", i)), 4, 4, 1, 9)
	}
	csvPath := filepath.Join(dir, "train_v2.csv")
	os.WriteFile(csvPath, []byte("image_name,tags\ntrain_0,haze primary\ntrain_1,agriculture clear primary water\ntrain_2,clear primary\ntrain_3,clear  primary\n"), 0o644)
	es, err := FromCSV(csvPath, CSVConfig{ImageCol: "image_name", Folder: "train-jpg", Suffix: ".png"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Blocks{Task: MultiLabel, Items: es, Label: LabelFromColumn("tags", " "), Split: RandomSplit(0.25, 3)}.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"agriculture", "clear", "haze", "primary", "water"}
	if !slices.Equal(s.Meta.Classes, want) {
		t.Fatalf("classes %v, want %v", s.Meta.Classes, want)
	}
	all := Subset(s.Train, []int{0, 1, 2})
	for i := 0; i < all.Len(); i++ {
		it, _ := all.Get(i)
		if it.Name == "train_1" && !slices.Equal(it.Labels, []int{0, 1, 3, 4}) {
			t.Errorf("train_1: labels %v", it.Labels)
		}
	}
	// a CSV naming a missing image
	os.WriteFile(csvPath, []byte("image_name,tags\ntrain_0,haze\ntrain_9,clear\n"), 0o644)
	_, err = FromCSV(csvPath, CSVConfig{ImageCol: "image_name", Folder: "train-jpg", Suffix: ".png"})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), csvPath) || !strings.Contains(err.Error(), "train_9.png") || !strings.Contains(err.Error(), "row 3") {
		t.Errorf("missing image: %v", err)
	}
	if _, err := FromCSV(csvPath, CSVConfig{ImageCol: "nope"}); !errors.Is(err, ErrData) {
		t.Errorf("missing column: %v", err)
	}
}

func TestBlocksMasksAndPoints(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		writeImage(t, filepath.Join(dir, "images", fmt.Sprintf("%d.png", i)), 8, 6, 3, 50)
		writeImage(t, filepath.Join(dir, "labels", fmt.Sprintf("%d_P.png", i)), 8, 6, 1, byte(i))
	}
	es, err := FromFolder(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	maskOf := func(e Entry) string {
		return filepath.Join(dir, "labels", strings.TrimSuffix(filepath.Base(e.Path), ".png")+"_P.png")
	}
	b := Blocks{Task: Segment, Classes: []string{"a", "b", "Void"}, Void: "Void", Items: es, Label: MaskFromFile(maskOf),
		Split: SplitByFunc(func(e Entry) bool { return e.Seq == 2 })}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.VoidClass != 2 {
		t.Fatalf("void class %d", s.Meta.VoidClass)
	}
	it, err := s.Valid.Get(0)
	if err != nil || len(it.Mask) != 48 || it.Mask[0] != 2 {
		t.Fatalf("mask: %v %v", err, it.Mask)
	}
	// a mask of the wrong size
	bad := maskOf(es[1])
	writeImage(t, bad, 7, 6, 1, 1)
	if _, err := b.Build(); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), bad) {
		t.Errorf("wrong mask size: %v", err)
	}
	// a missing mask
	os.Remove(bad)
	if _, err := b.Build(); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), bad) {
		t.Errorf("missing mask: %v", err)
	}
	// a class id beyond the classes is caught on Get
	writeImage(t, bad, 8, 6, 1, 9)
	s, _ = b.Build()
	_, err1 := s.Train.Get(0)
	_, err2 := s.Train.Get(1)
	if err := errors.Join(err1, err2); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), bad) {
		t.Errorf("class id 9: %v", err)
	}
	// points in pixels become [-1,1]
	p, err := Blocks{Task: Regress, Points: 1, Items: es, Label: PointsFunc(func(Entry) ([]float32, error) { return []float32{2, 4.5}, nil }),
		Split: RandomSplit(0, 1)}.Build()
	if err != nil {
		t.Fatal(err)
	}
	pi, _ := p.Train.Get(0)
	if !slices.Equal(pi.Points, []float32{2*2.0/8 - 1, 2*4.5/6 - 1}) {
		t.Fatalf("points %v", pi.Points)
	}
	if _, err := (Blocks{Task: Regress, Points: 2, Items: es, Label: PointsFunc(func(Entry) ([]float32, error) { return []float32{1, 2}, nil }),
		Split: RandomSplit(0, 1)}).Build(); !errors.Is(err, ErrData) {
		t.Errorf("wrong point count: %v", err)
	}
}

func TestReadImageBad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.png")
	os.WriteFile(p, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	if _, err := ReadImage(p); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), p) {
		t.Errorf("corrupt png: %v", err)
	}
}
