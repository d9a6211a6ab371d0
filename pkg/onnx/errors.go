package onnx

import (
	"errors"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers can tell a damaged file from a valid one that uses a
// feature Vireo does not support.
var (
	// ErrMalformed: the bytes are not a valid protobuf encoding of the
	// expected message (truncated data, wrong wire type, impossible
	// lengths), or the message is self-inconsistent (negative dims,
	// raw_data size not matching the shape).
	ErrMalformed = errors.New("onnx: malformed")
	// ErrUnsupported: a valid ONNX feature this package does not handle
	// (string/complex/float8 tensors, external data, subgraph attributes,
	// sequence/map/optional types, model-local functions, ...).
	ErrUnsupported = errors.New("onnx: unsupported")
	// ErrInvalid: Encode was given a Model it cannot write (data length
	// not matching the shape, unknown dtype, conflicting opsets).
	ErrInvalid = errors.New("onnx: invalid model")
)

// Error is the error returned by Decode, DecodeTensor and Encode. Path says
// where in the model the problem is, outermost first, for example
// ["graph", "node[3] Conv \"conv1\"", "attribute \"pads\""].
type Error struct {
	Kind error // ErrMalformed, ErrUnsupported or ErrInvalid
	Path []string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	for i, seg := range e.Path {
		switch {
		case i == 0:
			b.WriteString(": ")
		case strings.HasPrefix(seg, `"`): // a name qualifies the segment before it
			b.WriteString(" ")
		default:
			b.WriteString(".")
		}
		b.WriteString(seg)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

// newErr builds an *Error of the given kind.
func newErr(kind error, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// at prefixes the location seg to err's path. err must be nil or an *Error.
func at(err error, seg string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		e.Path = append([]string{seg}, e.Path...)
		return e
	}
	return err
}
