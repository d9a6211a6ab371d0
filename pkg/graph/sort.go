package graph

import (
	"fmt"
	"strings"
)

// Sort returns g's nodes in a topological order: every node comes after the
// producers of its inputs. Among nodes that are ready at the same time the
// order of g.Nodes is kept, so an already sorted graph comes back unchanged.
// It never assumes g.Nodes is sorted. An error wraps ErrCycle (and names the
// nodes of one cycle), ErrMissing (a value nobody produces) or ErrInvalid
// (two producers of one value).
func Sort(g *Graph) ([]*Node, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil graph", ErrInvalid)
	}
	avail := make(map[string]bool, len(g.Inputs)+len(g.Initializers))
	for _, in := range g.Inputs {
		avail[in.Name] = true
	}
	for name := range g.Initializers {
		avail[name] = true
	}
	producer := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("%w: node %d is nil", ErrInvalid, i)
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, ok := producer[o]; ok {
				return nil, fmt.Errorf("%w: value %q is produced by %s and %s", ErrInvalid, o, nodeLabel(g.Nodes[j]), nodeLabel(n))
			}
			if avail[o] {
				return nil, fmt.Errorf("%w: %s produces %q, which is also a graph input or initializer", ErrInvalid, nodeLabel(n), o)
			}
			producer[o] = i
		}
	}
	// indeg[i] counts the inputs of node i still waiting for a producer;
	// users[j] lists the nodes that read an output of node j (once per use).
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == "" || avail[in] {
				continue
			}
			j, ok := producer[in]
			if !ok {
				return nil, nodeErr(n, ErrMissing, "input %q has no producer (no node, graph input or initializer)", in)
			}
			indeg[i]++
			users[j] = append(users[j], i)
		}
	}
	// Kahn's algorithm with a min-heap on the original index.
	h := make(intHeap, 0, len(g.Nodes))
	for i := range g.Nodes {
		if indeg[i] == 0 {
			h.push(i)
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	for len(h) > 0 {
		i := h.pop()
		order = append(order, g.Nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				h.push(u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		return nil, fmt.Errorf("%w: %s", ErrCycle, describeCycle(g, indeg, producer))
	}
	return order, nil
}

// describeCycle walks back from a node that never became ready, through
// producers that never became ready, until a node repeats.
func describeCycle(g *Graph, indeg []int, producer map[string]int) string {
	start := -1
	for i, d := range indeg {
		if d > 0 {
			start = i
			break
		}
	}
	seen := map[int]int{}
	var path []int
	cur := start
	for cur >= 0 {
		if k, ok := seen[cur]; ok {
			path = path[k:]
			break
		}
		seen[cur] = len(path)
		path = append(path, cur)
		next := -1
		for _, in := range g.Nodes[cur].Inputs {
			if j, ok := producer[in]; ok && indeg[j] > 0 {
				next = j
				break
			}
		}
		cur = next
	}
	// path follows consumer -> producer; print in data-flow order.
	names := make([]string, 0, len(path)+1)
	for k := len(path) - 1; k >= 0; k-- {
		names = append(names, nodeLabel(g.Nodes[path[k]]))
	}
	if len(path) > 0 {
		names = append(names, nodeLabel(g.Nodes[path[len(path)-1]]))
	}
	return "nodes form a cycle: " + strings.Join(names, " -> ")
}

// intHeap is a min-heap of ints (container/heap without the interface boxing).
type intHeap []int

func (h *intHeap) push(v int) {
	*h = append(*h, v)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *intHeap) pop() int {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(a) && a[l] < a[m] {
			m = l
		}
		if r < len(a) && a[r] < a[m] {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}
