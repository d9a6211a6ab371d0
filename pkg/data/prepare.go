package data

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FormatVersion is the "format" of every prepared dataset's dataset.json.
const FormatVersion = "vireo-dataset/1"

// Default places of the Debian packages Prepare reads.
const (
	DefaultFashionDir = "/usr/share/datasets/fashion-mnist"                                   // dataset-fashion-mnist
	DefaultVideoDir   = "/usr/share/doc/opencv-doc/examples/data"                             // opencv-doc
	DefaultCascade    = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml" // opencv-data
)

// Names lists the demo datasets Prepare builds.
func Names() []string {
	return []string{"fashion", "fashion-tiles", "vtest-people", "megamind-face"}
}

type preparerFunc func(ctx context.Context, cfg *PrepareConfig, out string) (*Manifest, error)

// preparer returns the builder of a dataset in Names().
func preparer(name string) preparerFunc {
	switch name {
	case "fashion":
		return prepareFashion
	case "fashion-tiles":
		return prepareTiles
	case "vtest-people":
		return preparePeople
	case "megamind-face":
		return prepareFace
	}
	return nil
}

// Progress reports a prepare's progress: done of total steps of a stage.
type Progress func(stage string, done, total int)

// PrepareConfig is what PrepareWith needs. Zero fields get defaults.
type PrepareConfig struct {
	Name     string   // one of Names()
	Dir      string   // the dataset's own directory (replaced if it exists)
	Seed     uint64   // every random choice derives from it
	Progress Progress // may be nil
	// Where the Debian packages' files are (tests point these at damaged
	// copies).
	FashionDir string
	VideoDir   string
	Cascade    string
	// Tile counts of fashion-tiles. Default 40000 and 2000.
	TilesTrain, TilesValid int
	// Workers for the CPU-heavy steps. Default 2.
	Workers int
	// MaxFrames uses only the first frames of a video (tests); 0: all.
	MaxFrames int
}

func (c *PrepareConfig) setDefaults() {
	if c.FashionDir == "" {
		c.FashionDir = DefaultFashionDir
	}
	if c.VideoDir == "" {
		c.VideoDir = DefaultVideoDir
	}
	if c.Cascade == "" {
		c.Cascade = DefaultCascade
	}
	if c.TilesTrain == 0 {
		c.TilesTrain = 40000
	}
	if c.TilesValid == 0 {
		c.TilesValid = 2000
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
}

// Validate reports the first invalid field, wrapping ErrData.
func (c *PrepareConfig) Validate() error {
	known := false
	for _, n := range Names() {
		known = known || n == c.Name
	}
	switch {
	case !known:
		return fmt.Errorf("%w: unknown dataset %q (want one of %s)", ErrData, c.Name, strings.Join(Names(), ", "))
	case c.Dir == "":
		return fmt.Errorf("%w: prepare: no directory", ErrData)
	case c.TilesTrain < 1 || c.TilesValid < 1:
		return fmt.Errorf("%w: prepare: tile counts (got=%d/%d, want>=1)", ErrData, c.TilesTrain, c.TilesValid)
	case c.MaxFrames < 0:
		return fmt.Errorf("%w: prepare: max frames (got=%d, want>=0)", ErrData, c.MaxFrames)
	case c.Workers < 1:
		return fmt.Errorf("%w: prepare: workers (got=%d, want>=1)", ErrData, c.Workers)
	}
	return nil
}

// Prepare builds the demo dataset name into dir from the Debian packages
// (see the package doc for each dataset and the on-disk format). The result
// depends only on the packages' files and seed. dir is replaced
// atomically: an interrupted prepare leaves no dataset that Open accepts.
func Prepare(ctx context.Context, name, dir string, seed uint64, progress Progress) error {
	return PrepareWith(ctx, PrepareConfig{Name: name, Dir: dir, Seed: seed, Progress: progress})
}

// PrepareWith is Prepare with every setting.
func PrepareWith(ctx context.Context, cfg PrepareConfig) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	tmp := strings.TrimRight(cfg.Dir, "/") + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	m, err := preparer(cfg.Name)(ctx, &cfg, tmp)
	if err == nil {
		m.Format, m.Name, m.Seed = FormatVersion, cfg.Name, cfg.Seed
		err = writeJSON(filepath.Join(tmp, "dataset.json"), m)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return err
	}
	return os.Rename(tmp, cfg.Dir)
}

// Manifest is a prepared dataset's dataset.json.
type Manifest struct {
	Format   string   `json:"format"`
	Name     string   `json:"name"`
	Task     Task     `json:"task"`
	Classes  []string `json:"classes,omitempty"`
	Void     string   `json:"void,omitempty"`
	Points   int      `json:"points,omitempty"`
	Seed     uint64   `json:"seed"`
	Width    int      `json:"width"`
	Height   int      `json:"height"`
	Channels int      `json:"channels"`
	// Layout is "idx" (Train/Valid name IDX image and label files) or
	// "csv" (Train/Valid name CSV files; see the package doc).
	Layout string `json:"layout"`
	Train  Part   `json:"train"`
	Valid  Part   `json:"valid"`
	Source string `json:"source"`
	Notes  string `json:"notes,omitempty"`
}

// Part is one side of a prepared split.
type Part struct {
	Images string `json:"images,omitempty"` // idx layout
	Labels string `json:"labels,omitempty"` // idx layout
	CSV    string `json:"csv,omitempty"`    // csv layout
	Count  int    `json:"count"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadManifest reads dir/dataset.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, "dataset.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (prepare it with `vireo data prepare NAME`)", ErrData, path, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%w: %s: format (got=%q, want=%q)", ErrData, path, m.Format, FormatVersion)
	}
	return &m, nil
}

// Open reads a prepared dataset back (dir holds dataset.json).
func Open(dir string) (Split, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return Split{}, err
	}
	var s Split
	switch m.Layout {
	case "idx":
		s, err = openIDX(dir, m)
	case "csv":
		s, err = openCSV(dir, m)
	default:
		return Split{}, fmt.Errorf("%w: %s: layout (got=%q, want idx or csv)", ErrData, filepath.Join(dir, "dataset.json"), m.Layout)
	}
	if err != nil {
		return Split{}, err
	}
	if s.Train.Len() != m.Train.Count || s.Valid.Len() != m.Valid.Count {
		return Split{}, fmt.Errorf("%w: %s: item counts (got=%d/%d, want=%d/%d as dataset.json says)", ErrData, dir,
			s.Train.Len(), s.Valid.Len(), m.Train.Count, m.Valid.Count)
	}
	return s, nil
}

func openIDX(dir string, m *Manifest) (Split, error) {
	tr, err := ReadIDXImages(filepath.Join(dir, m.Train.Images), filepath.Join(dir, m.Train.Labels), len(m.Classes))
	if err != nil {
		return Split{}, err
	}
	va, err := ReadIDXImages(filepath.Join(dir, m.Valid.Images), filepath.Join(dir, m.Valid.Labels), len(m.Classes))
	if err != nil {
		return Split{}, err
	}
	return Split{Meta: Meta{Task: m.Task, Classes: m.Classes, VoidClass: -1}, Train: tr, Valid: va}, nil
}

// openCSV builds both parts with the blocks: FromCSV, the task's labeller,
// and the split given by which file a row is in.
func openCSV(dir string, m *Manifest) (Split, error) {
	tr, err := FromCSV(filepath.Join(dir, m.Train.CSV), CSVConfig{ImageCol: "image"})
	if err != nil {
		return Split{}, err
	}
	va, err := FromCSV(filepath.Join(dir, m.Valid.CSV), CSVConfig{ImageCol: "image"})
	if err != nil {
		return Split{}, err
	}
	var label Labeller
	switch m.Task {
	case Classify:
		label = LabelFromColumn("labels", "")
	case MultiLabel:
		label = LabelFromColumn("labels", " ")
	case Segment:
		label = MaskFromColumn("mask", dir)
	case Regress:
		cols := make([]string, 0, 2*m.Points)
		for i := 0; i < m.Points; i++ {
			cols = append(cols, fmt.Sprintf("x%d", i), fmt.Sprintf("y%d", i))
		}
		label = PointsFromColumns(cols...)
	}
	all := append(append([]Entry(nil), tr...), va...)
	nTrain := len(tr)
	b := Blocks{Task: m.Task, Classes: m.Classes, Void: m.Void, Points: m.Points, Items: all, Label: label,
		Split: func(es []Entry) ([]int, []int, error) {
			t, v := make([]int, nTrain), make([]int, len(es)-nTrain)
			for i := range t {
				t[i] = i
			}
			for i := range v {
				v[i] = nTrain + i
			}
			return t, v, nil
		}}
	return b.Build()
}

// csvRow is one row of a prepared CSV part.
type csvRow []string

func writeCSV(path string, header []string, rows []csvRow) error {
	var sb strings.Builder
	sb.WriteString(strings.Join(header, ","))
	sb.WriteByte('\n')
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				sb.WriteByte(',')
			}
			if strings.ContainsAny(f, ",\"\n") {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			sb.WriteString(f)
		}
		sb.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// need checks a file from a Debian package exists.
func need(path, pkg string) error {
	if !fileExists(path) {
		return fmt.Errorf("%w: %s: missing (install the Debian package %s: make deps)", ErrData, path, pkg)
	}
	return nil
}

// sortedCopy returns the ints sorted (helper for tests and splits).
func sortedCopy(a []int) []int {
	b := append([]int(nil), a...)
	sort.Ints(b)
	return b
}

// Locate finds a prepared dataset: nameOrPath itself when it holds a
// dataset.json, else root/nameOrPath. The error says how to prepare it.
func Locate(root, nameOrPath string) (string, error) {
	if fileExists(filepath.Join(nameOrPath, "dataset.json")) {
		return nameOrPath, nil
	}
	dir := filepath.Join(root, nameOrPath)
	if fileExists(filepath.Join(dir, "dataset.json")) {
		return dir, nil
	}
	return "", fmt.Errorf("%w: no prepared dataset at %s or %s (run `vireo data prepare %s`)", ErrData, nameOrPath, dir, filepath.Base(nameOrPath))
}
