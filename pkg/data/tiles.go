package data

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Tile geometry of fashion-tiles.
const (
	tileSize    = 64
	tileItem    = 28
	tileMaxItem = 4
	pHaze       = 0.25
	pDark       = 0.25
)

// prepareTiles composes Planet-like multi-label tiles: 1-4 Fashion-MNIST
// items placed without overlap on a 64x64 black tile (training items for
// training tiles, test items for validation tiles), then the whole-tile
// "weather" labels at random: dark (gamma 2.5) and haze (a blur and a
// light, low-contrast veil).
func prepareTiles(ctx context.Context, cfg *PrepareConfig, out string) (*Manifest, error) {
	cfg.Progress("read", 0, 1)
	train, test, err := readFashion(cfg.FashionDir)
	if err != nil {
		return nil, err
	}
	cfg.Progress("read", 1, 1)
	if err := os.MkdirAll(filepath.Join(out, "images"), 0o755); err != nil {
		return nil, err
	}
	classes := append(FashionClasses(), "haze", "dark")
	nt, nv := cfg.TilesTrain, cfg.TilesValid
	rows := make([]csvRow, nt+nv)
	err = parallelFor(ctx, nt+nv, cfg.Workers, func(i int) error {
		src, prefix, k := train, "t", i
		stream := uint64(1)
		if i >= nt {
			src, prefix, k, stream = test, "v", i-nt, 2
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, stream<<32|uint64(k)))
		px, labels := makeTile(rng, src)
		names := make([]string, len(labels))
		for j, l := range labels {
			names[j] = classes[l]
		}
		name := fmt.Sprintf("images/%s%05d.png", prefix, k)
		if err := WritePNG(filepath.Join(out, name), Image{Pixels: px, Width: tileSize, Height: tileSize, Channels: 1}); err != nil {
			return err
		}
		rows[i] = csvRow{name, strings.Join(names, " ")}
		return nil
	}, func(done int) { cfg.Progress("tiles", done, nt+nv) })
	if err != nil {
		return nil, err
	}
	hdr := []string{"image", "labels"}
	if err := writeCSV(filepath.Join(out, "train.csv"), hdr, rows[:nt]); err != nil {
		return nil, err
	}
	if err := writeCSV(filepath.Join(out, "valid.csv"), hdr, rows[nt:]); err != nil {
		return nil, err
	}
	return &Manifest{
		Task: MultiLabel, Classes: classes, Width: tileSize, Height: tileSize, Channels: 1, Layout: "csv",
		Train: Part{CSV: "train.csv", Count: nt}, Valid: Part{CSV: "valid.csv", Count: nv},
		Source: "Debian dataset-fashion-mnist: training items make training tiles, test items validation tiles",
		Notes: fmt.Sprintf("%dx%d gray tiles, 1-%d items of 28x28 without overlap; haze (p=%.2f): 3x3 blur twice + veil 0.45*(150..190); dark (p=%.2f): gamma 2.5",
			tileSize, tileSize, tileMaxItem, pHaze, pDark),
	}, nil
}

// makeTile composes one tile; labels are sorted class indices (10 = haze,
// 11 = dark).
func makeTile(rng *rand.Rand, src *IDXImages) ([]byte, []int) {
	px := make([]byte, tileSize*tileSize)
	k := 1 + rng.IntN(tileMaxItem)
	pos := placeBoxes(rng, k)
	seen := map[int]bool{}
	for _, p := range pos {
		idx := rng.IntN(src.N)
		it := src.Pixels[idx*tileItem*tileItem:]
		for y := 0; y < tileItem; y++ {
			for x := 0; x < tileItem; x++ {
				o := (p[1]+y)*tileSize + p[0] + x
				px[o] = max(px[o], it[y*tileItem+x])
			}
		}
		seen[int(src.Labels[idx])] = true
	}
	if rng.Float64() < pDark {
		seen[11] = true
		for i, v := range px {
			px[i] = byte(math.Round(255 * math.Pow(float64(v)/255, 2.5)))
		}
	}
	if rng.Float64() < pHaze {
		seen[10] = true
		px = boxBlur(boxBlur(px, tileSize, tileSize), tileSize, tileSize)
		veil := 150 + 40*rng.Float64()
		for i, v := range px {
			px[i] = byte(math.Round(0.55*float64(v) + 0.45*veil))
		}
	}
	labels := make([]int, 0, len(seen))
	for l := range seen {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	return px, labels
}

// placeBoxes returns k non-overlapping 28x28 positions in the tile:
// uniformly at random by rejection, or, when that keeps failing (likely
// for 4), in k distinct quadrants with a random jitter.
func placeBoxes(rng *rand.Rand, k int) [][2]int {
	span := tileSize - tileItem + 1
	for try := 0; try < 100; try++ {
		pos := make([][2]int, 0, k)
		for len(pos) < k {
			p := [2]int{rng.IntN(span), rng.IntN(span)}
			ok := true
			for _, q := range pos {
				if abs(p[0]-q[0]) < tileItem && abs(p[1]-q[1]) < tileItem {
					ok = false
					break
				}
			}
			if !ok {
				break
			}
			pos = append(pos, p)
		}
		if len(pos) == k {
			return pos
		}
	}
	half := tileSize / 2
	jitter := half - tileItem + 1
	quads := rng.Perm(4)[:k]
	pos := make([][2]int, k)
	for i, q := range quads {
		pos[i] = [2]int{(q%2)*half + rng.IntN(jitter), (q/2)*half + rng.IntN(jitter)}
	}
	return pos
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// boxBlur is a 3x3 mean with edge repetition.
func boxBlur(px []byte, w, h int) []byte {
	out := make([]byte, len(px))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s := 0
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					s += int(px[clampInt(y+dy, 0, h-1)*w+clampInt(x+dx, 0, w-1)])
				}
			}
			out[y*w+x] = byte((s + 4) / 9)
		}
	}
	return out
}

// parallelFor runs fn(0..n-1) on workers goroutines (all joined before it
// returns), stopping at the first error or when ctx ends; progress gets the
// number done, from the calling goroutine.
func parallelFor(ctx context.Context, n, workers int, fn func(i int) error, progress func(done int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	dones := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				dones <- fn(i)
			}
		}()
	}
	var first error
	sent, done := 0, 0
	ctxDone := ctx.Done()
	for done < n {
		var send chan int
		if sent < n && first == nil {
			send = jobs
		}
		if send == nil && sent == done {
			break
		}
		select {
		case send <- sent:
			sent++
		case err := <-dones:
			done++
			if err != nil && first == nil {
				first = err
			}
			if done%64 == 0 || done == n {
				progress(done)
			}
		case <-ctxDone:
			ctxDone = nil
			if first == nil {
				first = ctx.Err()
			}
		}
	}
	close(jobs)
	wg.Wait()
	return first
}
