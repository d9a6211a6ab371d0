package cpu

import (
	"sync"

	"vireo/pkg/kernels"
)

// maxPlans bounds each plan cache: past it, new geometries are planned
// per call and not kept (a server runs a few models at a few batch sizes,
// far fewer geometries than this).
const maxPlans = 4096

// planCache maps an op's geometry (shapes as fixed arrays plus params) to
// its read-only plan, so steady-state calls compute no shapes and allocate
// nothing. Only successful plans are cached: a bad call is re-checked and
// gets its error every time.
type planCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (pc *planCache[K, V]) get(k K) (V, bool) {
	pc.mu.Lock()
	v, ok := pc.m[k]
	pc.mu.Unlock()
	return v, ok
}

func (pc *planCache[K, V]) put(k K, v V) {
	pc.mu.Lock()
	if pc.m == nil {
		pc.m = map[K]V{}
	}
	if len(pc.m) < maxPlans {
		pc.m[k] = v
	}
	pc.mu.Unlock()
}

// plans are the backend's plan caches, one per op family.
type plans struct {
	conv    planCache[convKey, *convEntry]
	bcast   planCache[bcastKey, *bplan]
	concat  planCache[concatKey, *concatPlan]
	d2s     planCache[d2sKey, kernels.Shape]
	pool    planCache[poolKey, *poolEntry]
	bcastTo planCache[bcastKey, *broadcastToPlan] // BroadcastTo: x in a, y in c
	gemm    planCache[gemmKey, kernels.Shape]
	global  planCache[bcastKey, kernels.Shape] // GlobalPool: x's shape in a
}
