package graph

import (
	"errors"
	"strings"
	"testing"
)

func TestSortUnsorted(t *testing.T) {
	b := newBuilder().input("x", 1, 2)
	// Listed consumers first: d <- c <- b <- a <- x.
	b.node("Relu", in("c"), in("d"), nil)
	b.node("Relu", in("b"), in("c"), nil)
	b.node("Add", in("a", "b"), in("e"), nil)
	b.node("Relu", in("a"), in("b"), nil)
	b.node("Relu", in("x"), in("a"), nil)
	order, err := Sort(b.g)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range order {
		pos[n.Outputs[0]] = i
	}
	for _, n := range b.g.Nodes {
		for _, in := range n.Inputs {
			if p, ok := pos[in]; ok && p >= pos[n.Outputs[0]] {
				t.Fatalf("node %s at %d comes before its input %s at %d", n.Outputs[0], pos[n.Outputs[0]], in, p)
			}
		}
	}
	if len(order) != 5 {
		t.Fatalf("%d nodes (want 5)", len(order))
	}
	// A sorted graph keeps its order.
	again, _ := Sort(&Graph{Nodes: order, Inputs: b.g.Inputs})
	for i := range again {
		if again[i] != order[i] {
			t.Fatalf("sorted graph reordered at %d", i)
		}
	}
}

func TestSortCycle(t *testing.T) {
	b := newBuilder().input("x", 1)
	b.node("Add", in("x", "c"), in("a"), nil)
	b.node("Relu", in("a"), in("b"), nil)
	b.node("Relu", in("b"), in("c"), nil)
	b.node("Relu", in("x"), in("ok"), nil)
	_, err := Sort(b.g)
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v (want ErrCycle)", err)
	}
	for _, name := range []string{"Add_a", "Relu_b", "Relu_c"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("cycle message %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "Relu_ok") {
		t.Errorf("cycle message %q names a node outside the cycle", err)
	}
}

func TestSortMissingProducer(t *testing.T) {
	b := newBuilder().input("x", 1)
	b.node("Add", in("x", "ghost"), in("a"), nil)
	_, err := Sort(b.g)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("err = %v (want ErrMissing naming ghost)", err)
	}
}

func TestSortDuplicateProducer(t *testing.T) {
	b := newBuilder().input("x", 1)
	b.node("Relu", in("x"), in("a"), nil)
	b.node("Sigmoid", in("x"), in("a"), nil)
	if _, err := Sort(b.g); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v (want ErrInvalid)", err)
	}
}
