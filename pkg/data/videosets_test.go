package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func needVideo(t *testing.T, name string) {
	t.Helper()
	if !fileExists(filepath.Join(DefaultVideoDir, name)) {
		t.Skipf("Debian package opencv-doc not installed (%s missing; make deps)", name)
	}
}

// The first 120 frames only: enough to check shapes, classes, the split and
// determinism without the whole video's cost.
func TestPreparePeople(t *testing.T) {
	needVideo(t, "vtest.avi")
	ctx := context.Background()
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	for _, d := range []string{a, b} {
		if err := PrepareWith(ctx, PrepareConfig{Name: "vtest-people", Dir: d, Seed: 3, MaxFrames: 120}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"train.csv", "valid.csv", "masks/f0100.png", "images/f0100.png"} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || string(x) != string(y) {
			t.Errorf("%s differs between two runs", f)
		}
	}
	s, err := Open(a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.Task != Segment || s.Meta.VoidClass != 2 || s.Train.Len()+s.Valid.Len() < 100 || s.Valid.Len() != 24 {
		t.Fatalf("meta %+v, %d/%d items", s.Meta, s.Train.Len(), s.Valid.Len())
	}
	var count [3]int
	for i := 0; i < s.Valid.Len(); i++ {
		it, err := s.Valid.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if it.Width != 192 || it.Height != 144 || it.Channels != 3 {
			t.Fatalf("item %s: %dx%dx%d", it.Name, it.Width, it.Height, it.Channels)
		}
		for _, c := range it.Mask {
			count[c]++
		}
	}
	total := float64(count[0] + count[1] + count[2])
	// people are a few percent of a frame; never nothing, never most
	if p := float64(count[1]) / total; p < 0.002 || p > 0.2 {
		t.Errorf("person fraction %.4f (counts %v)", p, count)
	}
	if v := float64(count[2]) / total; v == 0 || v > 0.2 {
		t.Errorf("void fraction %.4f (counts %v)", v, count)
	}
}

func TestPrepareFace(t *testing.T) {
	needVideo(t, "Megamind.avi")
	if !fileExists(DefaultCascade) {
		t.Skipf("Debian package opencv-data not installed (%s missing)", DefaultCascade)
	}
	dir := filepath.Join(t.TempDir(), "face")
	if err := PrepareWith(context.Background(), PrepareConfig{Name: "megamind-face", Dir: dir, Seed: 1, MaxFrames: 60}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.Task != Regress || s.Meta.Points != 1 || s.Train.Len() < 10 || s.Valid.Len() < 3 {
		t.Fatalf("meta %+v, %d/%d items", s.Meta, s.Train.Len(), s.Valid.Len())
	}
	for _, ds := range []Dataset{s.Train, s.Valid} {
		for i := 0; i < ds.Len(); i++ {
			it, err := ds.Get(i)
			if err != nil {
				t.Fatal(err)
			}
			if len(it.Points) != 2 || it.Points[0] < -1 || it.Points[0] > 1 || it.Points[1] < -1 || it.Points[1] > 1 {
				t.Fatalf("%s: points %v", it.Name, it.Points)
			}
		}
	}
}

func TestPrepareVideoMissing(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	out := filepath.Join(t.TempDir(), "x")
	for _, name := range []string{"vtest-people", "megamind-face"} {
		err := PrepareWith(ctx, PrepareConfig{Name: name, Dir: out, VideoDir: empty})
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "opencv-doc") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	needVideo(t, "Megamind.avi")
	err := PrepareWith(ctx, PrepareConfig{Name: "megamind-face", Dir: out, Cascade: filepath.Join(empty, "none.xml")})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "none.xml") || !strings.Contains(err.Error(), "opencv-data") {
		t.Errorf("missing cascade: %v", err)
	}
	// a damaged video: only the first bytes of vtest.avi
	b, _ := os.ReadFile(filepath.Join(DefaultVideoDir, "vtest.avi"))
	os.WriteFile(filepath.Join(empty, "vtest.avi"), b[:4096], 0o644)
	err = PrepareWith(ctx, PrepareConfig{Name: "vtest-people", Dir: out, VideoDir: empty})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "vtest.avi") {
		t.Errorf("damaged video: %v", err)
	}
}

func TestFromVideo(t *testing.T) {
	needVideo(t, "vtest.avi")
	es, err := FromVideo(context.Background(), filepath.Join(DefaultVideoDir, "vtest.avi"), VideoConfig{Width: 64, Height: 48, EveryN: 5, MaxFrames: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 10 || es[9].Seq != 45 || es[0].Image == nil || es[0].Image.Width != 64 || len(es[0].Image.Pixels) != 64*48*3 {
		t.Fatalf("got %d entries, last seq %d", len(es), es[len(es)-1].Seq)
	}
	_, va, err := SplitBySegments(SegmentSplit{Segments: 5, Valid: 1, Gap: 0, Seed: 1})(es)
	if err != nil || len(va) != 2 || es[va[1]].Seq-es[va[0]].Seq != 5 {
		t.Fatalf("segment of frames: %v %v", va, err)
	}
	if _, err := FromVideo(context.Background(), filepath.Join(t.TempDir(), "none.avi"), VideoConfig{Width: 8, Height: 8}); !errors.Is(err, ErrData) {
		t.Fatalf("missing video: %v", err)
	}
}
