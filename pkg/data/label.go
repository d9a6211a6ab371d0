package data

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Target is an entry's raw label, before class names become indices.
type Target struct {
	// Labels are class names: exactly one for Classify, any number for
	// MultiLabel.
	Labels []string
	// MaskPath is a one-channel PNG of class ids the size of the image
	// (Segment); or Mask holds it in memory.
	MaskPath string
	Mask     *Image
	// Points are x0,y0,x1,y1,... in pixel coordinates of the entry's image
	// (continuous: pixel (i,j) covers [i,i+1)x[j,j+1), so its centre is
	// (i+0.5, j+0.5)); Get scales them to [-1,1].
	Points []float32
}

// A Labeller gives an entry its target. Errors should name the entry.
type Labeller func(e Entry) (Target, error)

// LabelFromFolder labels an entry with the name of the folder holding its
// file (ImageNet-style dataset/train/<class>/x.png).
func LabelFromFolder() Labeller {
	return func(e Entry) (Target, error) {
		if e.Path == "" {
			return Target{}, fmt.Errorf("%w: %s: no file to take a folder name from", ErrData, e.Name)
		}
		return Target{Labels: []string{filepath.Base(filepath.Dir(e.Path))}}, nil
	}
}

// LabelFromColumn labels an entry from a CSV column (FromCSV). With a
// separator (Planet: " "), the field holds several labels (MultiLabel);
// empty parts are ignored. Without one, the whole field is the label.
func LabelFromColumn(col, sep string) Labeller {
	return func(e Entry) (Target, error) {
		v, ok := e.Fields[col]
		if !ok {
			return Target{}, fmt.Errorf("%w: %s: no column %q", ErrData, e.Name, col)
		}
		if sep == "" {
			if v == "" {
				return Target{}, fmt.Errorf("%w: %s: empty label in column %q", ErrData, e.Name, col)
			}
			return Target{Labels: []string{v}}, nil
		}
		var ls []string
		for _, p := range strings.Split(v, sep) {
			if p = strings.TrimSpace(p); p != "" {
				ls = append(ls, p)
			}
		}
		return Target{Labels: ls}, nil
	}
}

// LabelFunc labels an entry with fn's class names.
func LabelFunc(fn func(e Entry) ([]string, error)) Labeller {
	return func(e Entry) (Target, error) {
		ls, err := fn(e)
		if err != nil {
			return Target{}, err
		}
		return Target{Labels: ls}, nil
	}
}

// MaskFromFile labels an entry with the mask file fn names (CamVid:
// labels/<name>_P.png).
func MaskFromFile(fn func(e Entry) string) Labeller {
	return func(e Entry) (Target, error) {
		return Target{MaskPath: fn(e)}, nil
	}
}

// MaskFromColumn takes the mask file's name from a CSV column, relative to
// folder (or, when folder is empty, to the image's directory).
func MaskFromColumn(col, folder string) Labeller {
	return func(e Entry) (Target, error) {
		v, ok := e.Fields[col]
		if !ok || v == "" {
			return Target{}, fmt.Errorf("%w: %s: no mask in column %q", ErrData, e.Name, col)
		}
		if folder == "" {
			return Target{MaskPath: filepath.Join(filepath.Dir(e.Path), v)}, nil
		}
		return Target{MaskPath: filepath.Join(folder, v)}, nil
	}
}

// PointsFromColumns reads points from CSV columns x0,y0,x1,y1,... (pixel
// coordinates of the image).
func PointsFromColumns(cols ...string) Labeller {
	return func(e Entry) (Target, error) {
		if len(cols) == 0 || len(cols)%2 != 0 {
			return Target{}, fmt.Errorf("%w: points need x,y column pairs (got %d columns)", ErrData, len(cols))
		}
		pts := make([]float32, len(cols))
		for i, c := range cols {
			v, err := strconv.ParseFloat(e.Fields[c], 32)
			if err != nil {
				return Target{}, fmt.Errorf("%w: %s: column %q: %v", ErrData, e.Name, c, err)
			}
			pts[i] = float32(v)
		}
		return Target{Points: pts}, nil
	}
}

// PointsFunc labels an entry with fn's points (pixel coordinates).
func PointsFunc(fn func(e Entry) ([]float32, error)) Labeller {
	return func(e Entry) (Target, error) {
		p, err := fn(e)
		if err != nil {
			return Target{}, err
		}
		return Target{Points: p}, nil
	}
}
