package kernels

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors returned by kernels and backends. Wrap them with %w and say got/want.
var (
	ErrShape       = errors.New("kernels: shape mismatch")
	ErrParam       = errors.New("kernels: invalid parameter")
	ErrUnsupported = errors.New("kernels: unsupported")
	ErrDevice      = errors.New("kernels: tensor is not in this backend's memory")
)

// Shape is the extent of each dimension, outermost first.
type Shape []int

// Numel is the number of elements (1 for a scalar shape).
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and o have the same rank and extents.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s that does not alias it.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// Validate checks that every dimension is positive.
func (s Shape) Validate() error {
	for i, d := range s {
		if d <= 0 {
			return fmt.Errorf("%w: dimension %d of %v is %d (want > 0)", ErrShape, i, s, d)
		}
	}
	return nil
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// Strides returns the row-major element strides of s.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

// DeviceMem is memory owned by a non-host backend (a device pointer and its
// size). The CPU backend never sets it.
type DeviceMem interface {
	// Bytes is the size of the allocation in bytes.
	Bytes() int
}

// Tensor is a dense row-major float32 tensor. Exactly one of Data (host
// memory, CPU backend) and Dev (device memory) is set. Views made with
// Reshaped share storage with the original.
type Tensor struct {
	Shape Shape
	Data  []float32
	Dev   DeviceMem
	// Offset is the element offset of this view into Dev (device tensors
	// only; host views slice Data instead).
	Offset int
}

// NewHost returns a zeroed host tensor of the given shape.
func NewHost(shape ...int) *Tensor {
	s := Shape(shape).Clone()
	return &Tensor{Shape: s, Data: make([]float32, s.Numel())}
}

// FromSlice wraps data (not copied) as a host tensor of the given shape.
// It panics if the sizes disagree: it is meant for literals in tests and
// builders, where a mismatch is a programming error.
func FromSlice(data []float32, shape ...int) *Tensor {
	s := Shape(shape).Clone()
	if s.Numel() != len(data) {
		panic(fmt.Sprintf("kernels.FromSlice: %d values for shape %v (want %d)", len(data), s, s.Numel()))
	}
	return &Tensor{Shape: s, Data: data}
}

// Numel is the number of elements.
func (t *Tensor) Numel() int { return t.Shape.Numel() }

// Reshaped returns a view of t with another shape of the same size.
func (t *Tensor) Reshaped(shape ...int) (*Tensor, error) {
	s := Shape(shape).Clone()
	if s.Numel() != t.Numel() {
		return nil, fmt.Errorf("%w: reshape %v to %v (numel got=%d, want=%d)", ErrShape, t.Shape, s, s.Numel(), t.Numel())
	}
	return &Tensor{Shape: s, Data: t.Data, Dev: t.Dev, Offset: t.Offset}, nil
}

// CheckShape returns an error wrapping ErrShape unless t has shape want.
// name says which operand it is, e.g. "conv2d: w".
func CheckShape(name string, t *Tensor, want Shape) error {
	if t == nil {
		return fmt.Errorf("%w: %s is nil (want shape %v)", ErrShape, name, want)
	}
	if !t.Shape.Equal(want) {
		return fmt.Errorf("%w: %s has shape %v (want %v)", ErrShape, name, t.Shape, want)
	}
	return nil
}

// CheckRank returns an error wrapping ErrShape unless t has the given rank.
func CheckRank(name string, t *Tensor, rank int) error {
	if t == nil {
		return fmt.Errorf("%w: %s is nil (want rank %d)", ErrShape, name, rank)
	}
	if len(t.Shape) != rank {
		return fmt.Errorf("%w: %s has rank %d, shape %v (want rank %d)", ErrShape, name, len(t.Shape), t.Shape, rank)
	}
	return nil
}
