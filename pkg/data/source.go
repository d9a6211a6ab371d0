package data

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"vireo/pkg/video"
)

// Entry is an item before it is loaded and labelled: a name and where its
// pixels come from. Sources make entries; labellers read them; splitters
// divide them.
type Entry struct {
	// Name is a stable identifier: the file path for files, "file#i" for
	// IDX images, "file@frame" for video frames.
	Name string
	// Path is the image file (PNG or JPEG), decoded on Get; empty when
	// Image is set.
	Path string
	// Image holds in-memory pixels (IDX images, video frames).
	Image *Image
	// Seq is the entry's position in its source (the frame number for
	// video, the row for CSV and IDX); contiguous-segment splits use it.
	Seq int
	// Fields are the CSV row by column name (FromCSV), for labellers.
	Fields map[string]string
}

// imageExts are the file types FromFolder lists by default.
var imageExts = []string{".png", ".jpg", ".jpeg"}

// FromFolder lists the image files under dir, recursively, sorted by path.
// exts filters by extension (case-insensitive, with the dot); none means
// .png, .jpg, .jpeg.
func FromFolder(dir string, exts ...string) ([]Entry, error) {
	if len(exts) == 0 {
		exts = imageExts
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s: not a directory", ErrData, dir)
	}
	var out []Entry
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		for _, e := range exts {
			if ext == strings.ToLower(e) {
				out = append(out, Entry{Name: p, Path: p})
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	for i := range out {
		out[i].Seq = i
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no image files (want %v)", ErrData, dir, exts)
	}
	return out, nil
}

// CSVConfig says how FromCSV finds each row's image.
type CSVConfig struct {
	// ImageCol is the column with the image name. Default: the first.
	ImageCol string
	// Folder is prefixed to image names; relative folders are relative
	// to the CSV file's directory.
	Folder string
	// Suffix is appended to image names (".jpg" when the CSV omits it).
	Suffix string
	// Comma is the field separator. Default ','.
	Comma rune
}

// FromCSV reads a CSV file with a header row: one entry per row, the image
// at Folder/<ImageCol><Suffix>, the row's fields in Entry.Fields for the
// labellers. Every image must exist: a row naming a missing image is an
// error naming the CSV file, the row and the image.
func FromCSV(path string, cfg CSVConfig) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	if cfg.Comma != 0 {
		r.Comma = cfg.Comma
	}
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrData, path, err)
	}
	col := 0
	if cfg.ImageCol != "" {
		col = -1
		for i, h := range header {
			if h == cfg.ImageCol {
				col = i
			}
		}
		if col < 0 {
			return nil, fmt.Errorf("%w: %s: no column %q (got %v)", ErrData, path, cfg.ImageCol, header)
		}
	}
	folder := cfg.Folder
	if !filepath.IsAbs(folder) {
		folder = filepath.Join(filepath.Dir(path), folder)
	}
	var out []Entry
	for row := 2; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
		}
		name := rec[col]
		if name == "" || strings.Contains(name, "..") {
			return nil, fmt.Errorf("%w: %s: row %d: bad image name %q", ErrData, path, row, name)
		}
		p := filepath.Join(folder, name+cfg.Suffix)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s: row %d names a missing image %s", ErrData, path, row, p)
		}
		fields := make(map[string]string, len(header))
		for i, h := range header {
			fields[h] = rec[i]
		}
		out = append(out, Entry{Name: name, Path: p, Seq: len(out), Fields: fields})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no rows", ErrData, path)
	}
	return out, nil
}

// FromIDX makes one in-memory entry per image of an (N,H,W) IDX file.
func FromIDX(path string) ([]Entry, error) {
	idx, err := ReadIDX(path)
	if err != nil {
		return nil, err
	}
	if len(idx.Dims) != 3 {
		return nil, fmt.Errorf("%w: %s: images rank (got=%d, want=3)", ErrData, path, len(idx.Dims))
	}
	n, h, w := idx.Dims[0], idx.Dims[1], idx.Dims[2]
	base := filepath.Base(path)
	out := make([]Entry, n)
	for i := range out {
		px := idx.Data[i*h*w : (i+1)*h*w : (i+1)*h*w]
		out[i] = Entry{Name: fmt.Sprintf("%s#%d", base, i), Image: &Image{Pixels: px, Width: w, Height: h, Channels: 1}, Seq: i}
	}
	return out, nil
}

// VideoConfig says which frames FromVideo keeps and at what size.
type VideoConfig struct {
	Width, Height int // output size (required)
	EveryN        int // keep every Nth frame (0 or 1: all)
	MaxFrames     int // stop after this many kept frames (0: all)
}

// FromVideo decodes a video file's frames (pkg/video) into in-memory
// entries, resized to cfg's size; Seq is the frame number.
func FromVideo(ctx context.Context, path string, cfg VideoConfig) ([]Entry, error) {
	src, err := video.OpenFile(ctx, path, video.Config{Width: cfg.Width, Height: cfg.Height, EveryN: cfg.EveryN})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer src.Close()
	base := filepath.Base(path)
	var out []Entry
	for cfg.MaxFrames == 0 || len(out) < cfg.MaxFrames {
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
		}
		out = append(out, Entry{
			Name:  fmt.Sprintf("%s@%d", base, f.Seq),
			Image: &Image{Pixels: f.Pixels, Width: f.Width, Height: f.Height, Channels: 3},
			Seq:   int(f.Seq),
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no frames decoded", ErrData, path)
	}
	return out, nil
}

// load returns the entry's pixels (decoding its file when needed).
func (e *Entry) load() (Image, error) {
	if e.Image != nil {
		return *e.Image, nil
	}
	return ReadImage(e.Path)
}
