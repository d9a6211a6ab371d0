package data

import (
	"context"
	"errors"
)

// ErrData is wrapped by every error about a dataset's files or contents
// (missing file, corrupt IDX, a mask of the wrong size); the message names
// the file.
var ErrData = errors.New("data")

// Task is what a dataset's targets are.
type Task string

// The four tasks (the same names as the model manifest's).
const (
	Classify   Task = "classify"
	MultiLabel Task = "multilabel"
	Segment    Task = "segment"
	Regress    Task = "regress"
)

// Item is one example: an image with its target in the task's form.
//
// Pixels are uint8, HWC, BGR for 3 channels (as OpenCV gives them), or one
// channel for grayscale sources; Width*Height*Channels == len(Pixels).
type Item struct {
	Name                    string // a stable identifier (file name, "frame 123")
	Pixels                  []byte
	Width, Height, Channels int

	Label  int       // Classify: the class index
	Labels []int     // MultiLabel: the class indices present (sorted)
	Mask   []byte    // Segment: Height*Width class ids (VoidClass where unknown)
	Points []float32 // Regress: x0,y0,x1,y1,... scaled to [-1,1] of the image
}

// Dataset is an indexable set of items. Get must be safe for concurrent use
// (loaders decode in parallel).
type Dataset interface {
	Len() int
	Get(i int) (Item, error)
}

// Meta describes a dataset's targets.
type Meta struct {
	Task    Task
	Classes []string // class names (Classify, MultiLabel, Segment)
	// VoidClass is the class id that metrics and the loss ignore (Segment),
	// -1 for none.
	VoidClass int
	// Points is the number of (x,y) points per item (Regress).
	Points int
}

// Split is a dataset divided into training and validation parts.
type Split struct {
	Meta  Meta
	Train Dataset
	Valid Dataset
}

// Batch is a loaded, augmented, normalised mini-batch ready for a model.
//
// X is (N, C, Size, Size) float32, normalised with the loader's per-channel
// mean/std (RGB order). Y is the target in the loss's form: Classify (N)
// class ids, MultiLabel (N, classes) 0/1, Segment (N, Size, Size) class ids
// (VoidClass kept), Regress (N, 2*points) in [-1,1]; all as float32.
type Batch struct {
	N, C, Size int
	X          []float32
	Y          []float32
	YShape     []int
	// Index holds the dataset index of each item (for weighting and error
	// analysis).
	Index []int
}

// Batches is a stream of batches from a loader; Next returns (nil, io.EOF)
// after the last one. Close stops the loader's workers and joins them.
type Batches interface {
	Next(ctx context.Context) (*Batch, error)
	Close() error
}
