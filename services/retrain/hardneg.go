package retrain

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"

	"vireo/pkg/data"
)

// confusions counts, per class the serving version wrongly predicted for
// a correction (its argmax on the correction's image), the corrections
// taken for it and the classes they were corrected to: confused[b][a] is
// how many corrections of class a the serving version took for b.
// Corrections it already gets right count nowhere.
func confusions(logits [][]float32, labels []int) map[int]map[int]int {
	out := map[int]map[int]int{}
	for i, r := range logits {
		b, a := argmax(r), labels[i]
		if b == a || a < 0 || a >= len(r) {
			continue
		}
		if out[b] == nil {
			out[b] = map[int]int{}
		}
		out[b][a]++
	}
	return out
}

// hardNegatives picks up to n items of a pool of the model's own training
// data to pin the boundary the corrections move: items of a class b the
// serving version wrongly predicted for corrections (confused, from
// confusions) that it classifies right, with the smallest margin
// z_b - max_a z_a over the classes a those corrections were corrected
// to. They are the examples of b that look most like the corrections, so
// training on them (with their true label b) asks the candidate to
// separate the corrections from them instead of moving b's whole
// boundary. Each class b gets a share of n in proportion to its
// corrections (largest remainders first, ties by class). poolLogits and
// poolLabels are the serving version's logits and the true labels of the
// pool; the result is pool indices, by class, smallest margin first.
func hardNegatives(confused map[int]map[int]int, poolLogits [][]float32, poolLabels []int, n int) []int {
	if n <= 0 || len(confused) == 0 {
		return nil
	}
	type cand struct {
		i      int
		margin float64
	}
	byClass := map[int][]cand{}
	for i, r := range poolLogits {
		b := poolLabels[i]
		as := confused[b]
		if len(as) == 0 || argmax(r) != b {
			continue
		}
		m := math.Inf(1)
		for a := range as {
			if a >= 0 && a < len(r) {
				m = min(m, float64(r[b])-float64(r[a]))
			}
		}
		byClass[b] = append(byClass[b], cand{i, m})
	}
	// Shares of n by corrections per class: floors, then the largest
	// remainders.
	classes := make([]int, 0, len(confused))
	total := 0
	for b, as := range confused {
		classes = append(classes, b)
		for _, k := range as {
			total += k
		}
	}
	slices.Sort(classes)
	quota := map[int]int{}
	type rem struct {
		b int
		r float64
	}
	var rems []rem
	given := 0
	for _, b := range classes {
		k := 0
		for _, c := range confused[b] {
			k += c
		}
		exact := float64(n) * float64(k) / float64(total)
		quota[b] = int(exact)
		given += quota[b]
		rems = append(rems, rem{b, exact - float64(quota[b])})
	}
	slices.SortStableFunc(rems, func(x, y rem) int { return cmp.Compare(y.r, x.r) })
	for k := 0; given < n && k < len(rems); k++ {
		quota[rems[k].b]++
		given++
	}
	var out []int
	for _, b := range classes {
		cs := byClass[b]
		slices.SortStableFunc(cs, func(x, y cand) int {
			if c := cmp.Compare(x.margin, y.margin); c != 0 {
				return c
			}
			return cmp.Compare(x.i, y.i)
		})
		for _, c := range cs[:min(quota[b], len(cs))] {
			out = append(out, c.i)
		}
	}
	return out
}

// hardNegativePool is up to n indices of ds (the model's training data),
// in a seeded order, of items labelled with a class of classes and not
// in exclude (the replay sample): the candidates hardNegatives chooses
// from. Items that cannot be read are skipped.
func hardNegativePool(rng *rand.Rand, ds data.Dataset, classes map[int]map[int]int, exclude []int, n int) []int {
	if n <= 0 || len(classes) == 0 {
		return nil
	}
	skip := make(map[int]bool, len(exclude))
	for _, i := range exclude {
		skip[i] = true
	}
	var out []int
	for _, i := range rng.Perm(ds.Len()) {
		if len(out) >= n {
			break
		}
		if skip[i] {
			continue
		}
		it, err := ds.Get(i)
		if err != nil {
			continue
		}
		if _, ok := classes[it.Label]; ok {
			out = append(out, i)
		}
	}
	return out
}

func argmax(r []float32) int {
	best := 0
	for j, v := range r {
		if v > r[best] {
			best = j
		}
	}
	return best
}
