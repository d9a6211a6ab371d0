package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"vireo/pkg/data"
)

func init() {
	register(command{"data", "prepare the demo datasets (vireo data prepare NAME|all)", runData})
}

// defaultDataRoot is where prepared datasets live unless --dir or
// VIREO_DATA says otherwise (./data is gitignored).
const defaultDataRoot = "data"

// dataRoot is the folder holding prepared datasets by name.
func dataRoot() string { return envOr("VIREO_DATA", defaultDataRoot) }

func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "prepare" {
		return usagef("data: usage: vireo data prepare NAME|all [--dir DIR] [--seed N] [--train-tiles N] (NAME: %s)", strings.Join(data.Names(), ", "))
	}
	args = args[1:]
	var names []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		names = append(names, args[0])
		args = args[1:]
	}
	fs := newFlagSet("data prepare", stderr)
	dir := fs.String("dir", dataRoot(), "folder the datasets go under, one subfolder per name [VIREO_DATA]")
	seed := fs.Uint64("seed", 42, "seed of every random choice (tiles, splits)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	tiles := fs.Int("train-tiles", 0, "fashion-tiles: training tiles (0: the default, 40000; validation tiles stay 2000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tiles < 0 {
		return usagef("data prepare: --train-tiles %d: want >= 0", *tiles)
	}
	if len(names) == 1 && names[0] == "all" {
		names = data.Names()
	}
	if len(names) == 0 {
		return usagef("data prepare: name a dataset (%s) or all", strings.Join(data.Names(), ", "))
	}
	for _, n := range names {
		known := false
		for _, k := range data.Names() {
			known = known || k == n
		}
		if !known {
			return usagef("data prepare: unknown dataset %q (want %s or all)", n, strings.Join(data.Names(), ", "))
		}
	}
	for _, n := range names {
		out := filepath.Join(*dir, n)
		bar := &progressBar{w: stderr, name: n, quiet: *quiet}
		start := time.Now()
		err := data.PrepareWith(ctx, data.PrepareConfig{Name: n, Dir: out, Seed: *seed, Progress: bar.update, TilesTrain: *tiles})
		bar.finish()
		if err != nil {
			return fmt.Errorf("prepare %s: %w", n, err)
		}
		m, err := data.ReadManifest(out)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdout, "%s: %d train / %d valid %dx%dx%d %s items in %s (%.1fs)\n",
			n, m.Train.Count, m.Valid.Count, m.Width, m.Height, m.Channels, m.Task, abs, time.Since(start).Seconds())
	}
	return nil
}

// progressBar draws "name stage [=====>    ] done/total" on one line of
// stderr, at most every 100 ms; an unknown total shows the count only.
type progressBar struct {
	w         io.Writer
	name      string
	quiet     bool
	stage     string
	last      time.Time
	drawn     bool
	done, tot int
}

func (p *progressBar) update(stage string, done, total int) {
	if p.quiet {
		return
	}
	if stage != p.stage && p.drawn {
		p.draw()
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	p.stage, p.done, p.tot = stage, done, total
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || (total > 0 && done == total) {
		p.last = now
		p.draw()
	}
}

func (p *progressBar) draw() {
	const width = 30
	line := fmt.Sprintf("%s %-16s", p.name, p.stage)
	if p.tot > 0 {
		fill := p.done * width / p.tot
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		if fill < width {
			bar = bar[:fill] + ">" + bar[fill+1:]
		}
		line += fmt.Sprintf(" [%s] %d/%d", bar, p.done, p.tot)
	} else {
		line += fmt.Sprintf(" %d", p.done)
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
