package data

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestPlaceBoxesNoOverlap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 2000; trial++ {
		k := 1 + trial%4
		pos := placeBoxes(rng, k)
		if len(pos) != k {
			t.Fatalf("k=%d: got %d boxes", k, len(pos))
		}
		for i, p := range pos {
			if p[0] < 0 || p[1] < 0 || p[0]+tileItem > tileSize || p[1]+tileItem > tileSize {
				t.Fatalf("box %v outside the tile", p)
			}
			for _, q := range pos[:i] {
				if abs(p[0]-q[0]) < tileItem && abs(p[1]-q[1]) < tileItem {
					t.Fatalf("boxes %v and %v overlap", p, q)
				}
			}
		}
	}
}

func TestPrepareTiles(t *testing.T) {
	needFashion(t)
	ctx := context.Background()
	base := t.TempDir()
	prep := func(name string, seed uint64, workers int) string {
		dir := filepath.Join(base, name)
		err := PrepareWith(ctx, PrepareConfig{Name: "fashion-tiles", Dir: dir, Seed: seed, TilesTrain: 60, TilesValid: 20, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b, c := prep("a", 7, 1), prep("b", 7, 2), prep("c", 8, 2)
	same := func(x, y, f string) bool {
		bx, _ := os.ReadFile(filepath.Join(x, f))
		by, _ := os.ReadFile(filepath.Join(y, f))
		return len(bx) > 0 && string(bx) == string(by)
	}
	for _, f := range []string{"train.csv", "valid.csv", "images/t00013.png", "images/v00019.png", "dataset.json"} {
		if !same(a, b, f) {
			t.Errorf("%s differs between runs with one seed", f)
		}
	}
	if same(a, c, "train.csv") {
		t.Error("another seed gave the same tiles")
	}
	s, err := Open(a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.Len() != 60 || s.Valid.Len() != 20 || s.Meta.Task != MultiLabel || len(s.Meta.Classes) != 12 {
		t.Fatalf("got %d/%d %+v", s.Train.Len(), s.Valid.Len(), s.Meta)
	}
	haze, dark := 0, 0
	for i := 0; i < 60; i++ {
		it, err := s.Train.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		items := 0
		for _, l := range it.Labels {
			switch {
			case l == 10:
				haze++
			case l == 11:
				dark++
			default:
				items++
			}
		}
		if items < 1 || items > 4 || it.Width != 64 || it.Channels != 1 {
			t.Fatalf("tile %d: labels %v size %dx%d", i, it.Labels, it.Width, it.Channels)
		}
	}
	if haze == 0 || dark == 0 || haze == 60 || dark == 60 {
		t.Errorf("haze on %d, dark on %d of 60 tiles", haze, dark)
	}
}
