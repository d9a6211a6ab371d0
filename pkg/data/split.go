package data

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A Splitter divides entries into training and validation indices. Every
// splitter here is deterministic (given its seed) and returns disjoint,
// sorted index lists.
type Splitter func(entries []Entry) (train, valid []int, err error)

// RandomSplit puts round(validPct*n) entries, chosen with the seed, in the
// validation set.
func RandomSplit(validPct float64, seed uint64) Splitter {
	return func(es []Entry) ([]int, []int, error) {
		if !(validPct >= 0 && validPct < 1) {
			return nil, nil, fmt.Errorf("%w: split: valid fraction (got=%v, want [0,1))", ErrData, validPct)
		}
		n := len(es)
		perm := rand.New(rand.NewPCG(seed, 0x5eed5)).Perm(n)
		nv := int(validPct*float64(n) + 0.5)
		isValid := make([]bool, n)
		for _, i := range perm[:nv] {
			isValid[i] = true
		}
		return byFlag(isValid)
	}
}

func byFlag(isValid []bool) (train, valid []int, err error) {
	for i, v := range isValid {
		if v {
			valid = append(valid, i)
		} else {
			train = append(train, i)
		}
	}
	return train, valid, nil
}

// SplitByFolder sends entries whose path has a folder named train to the
// training set and valid to the validation set (the nearest such folder
// above the file counts); others are an error.
func SplitByFolder(train, valid string) Splitter {
	return func(es []Entry) ([]int, []int, error) {
		isValid := make([]bool, len(es))
		for i, e := range es {
			found := false
			for d := filepath.Dir(e.Path); d != "." && d != "/" && d != filepath.Dir(d); d = filepath.Dir(d) {
				switch filepath.Base(d) {
				case train:
					found = true
				case valid:
					found, isValid[i] = true, true
				}
				if found {
					break
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("%w: split: %s is in neither %q nor %q", ErrData, e.Path, train, valid)
			}
		}
		return byFlag(isValid)
	}
}

// SplitByNames reads a file of validation item names, one a line (blank
// lines and #-comments ignored); an entry is in validation when its Name or
// its file's base name is listed. A listed name that matches no entry is
// an error (a typo would silently shrink the validation set).
func SplitByNames(path string) Splitter {
	return func(es []Entry) ([]int, []int, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
		}
		defer f.Close()
		names := map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l != "" && !strings.HasPrefix(l, "#") {
				names[l] = false
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
		}
		isValid := make([]bool, len(es))
		for i, e := range es {
			for _, k := range []string{e.Name, filepath.Base(e.Path)} {
				if _, ok := names[k]; ok && k != "" && k != "." {
					isValid[i], names[k] = true, true
				}
			}
		}
		var missing []string
		for k, used := range names {
			if !used {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, nil, fmt.Errorf("%w: %s: %d names match no item (first %q)", ErrData, path, len(missing), missing[0])
		}
		return byFlag(isValid)
	}
}

// SplitByFunc puts the entries for which isValid is true in validation.
func SplitByFunc(isValid func(e Entry) bool) Splitter {
	return func(es []Entry) ([]int, []int, error) {
		f := make([]bool, len(es))
		for i, e := range es {
			f[i] = isValid(e)
		}
		return byFlag(f)
	}
}

// SegmentSplit divides entries, ordered by Seq (video frames), into
// Segments contiguous runs of (nearly) equal length, and puts Valid of them,
// chosen with Seed, in validation. Gap entries on the training side of every
// boundary between a training and a validation segment are dropped from
// both sets, so neighbouring frames cannot leak across (the seed lesson:
// random frames of one video would).
type SegmentSplit struct {
	Segments, Valid, Gap int
	Seed                 uint64
}

// SplitBySegments is the Splitter of s.
func SplitBySegments(s SegmentSplit) Splitter {
	return func(es []Entry) ([]int, []int, error) {
		n := len(es)
		if s.Segments < 2 || s.Valid < 1 || s.Valid >= s.Segments || s.Gap < 0 || s.Segments > n {
			return nil, nil, fmt.Errorf("%w: segment split (got segments=%d valid=%d gap=%d for %d items, want 2<=segments<=items, 1<=valid<segments, gap>=0)",
				ErrData, s.Segments, s.Valid, s.Gap, n)
		}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return es[order[a]].Seq < es[order[b]].Seq })
		segOf := make([]int, n) // by rank
		for r := range segOf {
			segOf[r] = r * s.Segments / n
		}
		validSeg := make([]bool, s.Segments)
		for _, k := range rand.New(rand.NewPCG(s.Seed, 0x5e9)).Perm(s.Segments)[:s.Valid] {
			validSeg[k] = true
		}
		var train, valid []int
		for r, i := range order {
			v := validSeg[segOf[r]]
			if v {
				valid = append(valid, i)
				continue
			}
			near := false
			for d := -s.Gap; d <= s.Gap && !near; d++ {
				if q := r + d; q >= 0 && q < n && validSeg[segOf[q]] {
					near = true
				}
			}
			if !near {
				train = append(train, i)
			}
		}
		sort.Ints(train)
		sort.Ints(valid)
		return train, valid, nil
	}
}
