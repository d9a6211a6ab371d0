package retrain

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"vireo/pkg/data"
)

// TestConfusions: each correction counts under the class the serving
// version took it for; the ones it already gets right count nowhere.
func TestConfusions(t *testing.T) {
	logits := [][]float32{
		{3, 0, 1}, // class 2 taken for 0
		{2, 0, 1}, // class 2 taken for 0
		{0, 5, 1}, // class 0 taken for 1
		{0, 0, 4}, // class 2 right
	}
	got := confusions(logits, []int{2, 2, 0, 2})
	want := map[int]map[int]int{0: {2: 2}, 1: {0: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("confusions %v, want %v", got, want)
	}
}

// TestHardNegatives: on a constructed pool, the items chosen are those of
// the classes the corrections were taken for that the serving version
// gets right with the smallest margin over the corrected class, split in
// proportion to the corrections; wrongly classified items, items of
// other classes, and margins against classes nobody corrected to do not
// count.
func TestHardNegatives(t *testing.T) {
	// Three corrections of class 2 (shirt) taken for 0 (t-shirt), one of
	// class 3 taken for 1.
	confused := map[int]map[int]int{0: {2: 3}, 1: {3: 1}}
	pool := [][]float32{
		{5, 0, 1, 0},   // 0: class 0, margin 4 over class 2
		{2, 0, 1.5, 0}, // 1: class 0, margin 0.5
		{1, 0, 3, 0},   // 2: class 0 but taken for 2: not a negative
		{3, 0, 2, 2.9}, // 3: class 0, margin 1 over 2 (3 is no corrected class of 0)
		{4, 0, 3.8, 0}, // 4: class 0, margin 0.2
		{0, 2, 0, 1},   // 5: class 1, margin 1 over 3
		{0, 2, 0, 1.9}, // 6: class 1, margin 0.1
		{0, 0, 9, 0},   // 7: class 2: not a confused class
		{9, 0, 8.9, 0}, // 8: class 0, margin 0.1, labelled 2 below: skipped
	}
	labels := []int{0, 0, 0, 0, 0, 1, 1, 2, 2}
	// n=4: class 0 gets 3, class 1 gets 1; smallest margins first.
	if got, want := hardNegatives(confused, pool, labels, 4), []int{4, 1, 3, 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("4 hard negatives: %v, want %v", got, want)
	}
	// n=2: shares 1.5 and 0.5: floors 1 and 0, the larger remainder
	// (a tie: the smaller class first) gets the second.
	if got, want := hardNegatives(confused, pool, labels, 2), []int{4, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("2 hard negatives: %v, want %v", got, want)
	}
	// More than the pool has: every candidate once.
	if got, want := hardNegatives(confused, pool, labels, 40), []int{4, 1, 3, 0, 6, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("40 hard negatives: %v, want %v", got, want)
	}
	if got := hardNegatives(map[int]map[int]int{}, pool, labels, 4); got != nil {
		t.Errorf("no confusions: %v, want none", got)
	}
}

// TestHardNegativePool: the pool holds only items of the confused
// classes, never a replay item, at most n, the same for the same seed.
func TestHardNegativePool(t *testing.T) {
	var ds items
	for i := range 100 {
		ds = append(ds, data.Item{Label: i % 5})
	}
	classes := map[int]map[int]int{1: {2: 1}, 3: {2: 4}}
	exclude := []int{1, 3, 6, 8, 11}
	pool := hardNegativePool(rand.New(rand.NewPCG(1, 2)), ds, classes, exclude, 30)
	if len(pool) != 30 {
		t.Fatalf("pool of %d items, want 30", len(pool))
	}
	seen := map[int]bool{}
	for _, i := range pool {
		if l := ds[i].Label; l != 1 && l != 3 {
			t.Errorf("item %d of class %d in the pool", i, l)
		}
		for _, x := range exclude {
			if i == x {
				t.Errorf("replay item %d in the pool", i)
			}
		}
		if seen[i] {
			t.Errorf("item %d twice", i)
		}
		seen[i] = true
	}
	if again := hardNegativePool(rand.New(rand.NewPCG(1, 2)), ds, classes, exclude, 30); !reflect.DeepEqual(again, pool) {
		t.Error("the same seed drew another pool")
	}
	// Fewer candidates than asked: all 40-5 of them.
	if all := hardNegativePool(rand.New(rand.NewPCG(1, 2)), ds, classes, exclude, 1000); len(all) != 35 {
		t.Errorf("pool of %d, want the 35 items of classes 1 and 3 outside the replay", len(all))
	}
}
