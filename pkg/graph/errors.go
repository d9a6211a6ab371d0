package graph

import (
	"errors"
	"fmt"
)

// Errors returned by the graph package. Shape mismatches wrap
// kernels.ErrShape as well, so callers can test either.
var (
	// ErrCycle: the nodes do not form a DAG.
	ErrCycle = errors.New("graph: cycle")
	// ErrMissing: a value is used but nothing produces it (no node, input
	// or initializer), or an input shape was not given.
	ErrMissing = errors.New("graph: missing value")
	// ErrUnsupported: an op, attribute or attribute value the executor
	// does not implement.
	ErrUnsupported = errors.New("graph: unsupported")
	// ErrInvalid: a malformed graph or node (wrong number of inputs, an
	// attribute of the wrong type, a duplicate producer, bad arguments).
	ErrInvalid = errors.New("graph: invalid")
	// ErrState: a Program method called in the wrong state (Backward on an
	// inference program, after Close, before Run).
	ErrState = errors.New("graph: invalid state")
)

// nodeLabel names a node in messages: its name (or its index) and op.
func nodeLabel(n *Node) string {
	return fmt.Sprintf("node %q (%s)", n.Label(), n.Op)
}

// nodeErr wraps sentinel with a message naming n.
func nodeErr(n *Node, sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", sentinel, nodeLabel(n), fmt.Sprintf(format, args...))
}

// nodeWrap prefixes err (already wrapping a sentinel) with n's label.
func nodeWrap(n *Node, err error) error {
	return fmt.Errorf("graph: %s: %w", nodeLabel(n), err)
}
