package modelstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/graph"
	"vireo/pkg/model"
	"vireo/pkg/natsembed"
	"vireo/pkg/onnx"
)

func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tinyClassifier is a 3-class classifier on 3x8x8 inputs: a 1x1 conv to 3
// channels, global average pooling, flatten. scale makes versions differ.
func tinyClassifier(t *testing.T, scale float32) ([]byte, model.Manifest) {
	t.Helper()
	w := make([]float32, 9)
	for i := range w {
		w[i] = scale * float32(i+1)
	}
	g := &graph.Graph{
		Nodes: []*graph.Node{
			{Op: "Conv", Inputs: []string{"input", "w"}, Outputs: []string{"c"}},
			{Op: "GlobalAveragePool", Inputs: []string{"c"}, Outputs: []string{"p"}},
			{Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"output"}},
		},
		Inputs:       []graph.ValueInfo{{Name: "input", DType: graph.Float32, Shape: []int{-1, 3, 8, 8}, DimParams: []string{"N", "", "", ""}}},
		Outputs:      []graph.ValueInfo{{Name: "output", DType: graph.Float32, Shape: []int{-1, 3}, DimParams: []string{"N", ""}}},
		Initializers: map[string]*graph.Tensor{"w": {Name: "w", DType: graph.Float32, Shape: []int{3, 3, 1, 1}, Float: w}},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	return b, model.Manifest{
		Task:          model.Classify,
		Labels:        []string{"a", "b", "c"},
		Input:         model.Input{Width: 8, Height: 8, Channels: 3},
		Normalization: model.Normalization{Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.25, 0.25, 0.25}},
		VoidClass:     model.NoVoid,
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Arch:          "tiny",
	}
}

func TestPushPromoteRollback(t *testing.T) {
	ctx := testCtx(t)
	js := startJS(t)
	s, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Serving(ctx, "cls"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Serving before any promote: err=%v, want ErrNotFound", err)
	}
	b1, m1 := tinyClassifier(t, 1)
	v1, err := s.Push(ctx, "cls", b1, m1)
	if err != nil {
		t.Fatal(err)
	}
	b2, m2 := tinyClassifier(t, 2)
	m2.ParentVersion = v1
	v2, err := s.Push(ctx, "cls", b2, m2)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != "v0001" || v2 != "v0002" {
		t.Fatalf("versions (got=%s,%s, want=v0001,v0002)", v1, v2)
	}
	got, gm, err := s.Get(ctx, "cls", v2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(b2) || gm.Version != v2 || gm.Name != "cls" || gm.ParentVersion != v1 || gm.ModelDigest != model.Digest(b2) {
		t.Fatalf("Get v2: manifest %+v (bytes equal: %v)", gm, string(got) == string(b2))
	}
	if _, err := s.Promote(ctx, "cls", "v0009", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("promote a missing version: err=%v, want ErrNotFound", err)
	}
	if _, err := s.Promote(ctx, "cls", v1, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("promote without a reason: err=%v, want ErrInvalid", err)
	}
	if _, err := s.Rollback(ctx, "cls", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollback with nothing serving: err=%v, want ErrNotFound", err)
	}
	p, err := s.Promote(ctx, "cls", v1, "initial")
	if err != nil || p.Version != v1 || p.Previous != "" {
		t.Fatalf("promote v1: %+v %v", p, err)
	}
	if _, err := s.Rollback(ctx, "cls", ""); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback of the first version: err=%v, want ErrNoPrevious", err)
	}
	p, err = s.Promote(ctx, "cls", v2, "retrained: acc 0.91 -> 0.95")
	if err != nil || p.Version != v2 || p.Previous != v1 {
		t.Fatalf("promote v2: %+v %v", p, err)
	}
	same, err := s.Promote(ctx, "cls", v2, "again")
	if err != nil || same.Revision != p.Revision {
		t.Fatalf("promote the serving version again: %+v %v, want the unchanged pointer %+v", same, err, p)
	}
	p, err = s.Rollback(ctx, "cls", "")
	if err != nil || p.Version != v1 || p.Previous != v2 || p.Reason != "rollback from v0002" {
		t.Fatalf("rollback: %+v %v", p, err)
	}
	cur, err := s.Serving(ctx, "cls")
	if err != nil || cur.Version != v1 {
		t.Fatalf("serving after rollback: %+v %v", cur, err)
	}
	p, err = s.Rollback(ctx, "cls", v2)
	if err != nil || p.Version != v2 {
		t.Fatalf("rollback to v2 by name: %+v %v", p, err)
	}

	hist, err := s.History(ctx, "cls")
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, h := range hist {
		seq = append(seq, h.Version+":"+h.Reason)
	}
	want := []string{"v0001:initial", "v0002:retrained: acc 0.91 -> 0.95", "v0001:rollback from v0002", "v0002:rollback from v0001"}
	if len(seq) != len(want) {
		t.Fatalf("history (got=%q, want=%q)", seq, want)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("history (got=%q, want=%q)", seq, want)
		}
	}
	vs, err := s.Versions(ctx, "cls")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Version != v1 || vs[1].Version != v2 {
		t.Fatalf("versions: %+v", vs)
	}
	if vs[0].Serving || !vs[1].Serving || len(vs[0].Served) != 2 || len(vs[1].Served) != 2 {
		t.Fatalf("serving periods: v1 %+v, v2 %+v", vs[0].Served, vs[1].Served)
	}
	if vs[1].Served[1].Until != (time.Time{}) || vs[0].Served[0].Until.IsZero() || vs[1].Bytes != uint64(len(b2)) {
		t.Fatalf("periods: v1 %+v, v2 %+v bytes %d", vs[0].Served, vs[1].Served, vs[1].Bytes)
	}
	if _, err := s.Versions(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("versions of an unknown model: err=%v, want ErrNotFound", err)
	}

	// A second model, stored but never promoted, is listed too.
	if _, err := s.Push(ctx, "other", b1, m1); err != nil {
		t.Fatal(err)
	}
	names, err := s.List(ctx)
	if err != nil || len(names) != 2 || names[0] != "cls" || names[1] != "other" {
		t.Fatalf("List: %q %v", names, err)
	}
	// Reopening finds the same data.
	s2, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, m, err := s2.ServingManifest(ctx, "cls"); err != nil || p.Version != v2 || m.Version != v2 || m.Input.Width != 8 {
		t.Fatalf("reopened ServingManifest: %+v %+v %v", p, m, err)
	}
}

func TestPushRejects(t *testing.T) {
	ctx := testCtx(t)
	s, err := Open(ctx, startJS(t), Options{Prefix: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	b, m := tinyClassifier(t, 1)
	bad := m
	bad.Labels = []string{"a", "b"} // the graph has 3 outputs
	wrongInput := m
	wrongInput.Input.Width = 16
	noArch := m
	noArch.Arch = ""
	for _, c := range []struct {
		name, model string
		b           []byte
		m           model.Manifest
	}{
		{"bad model name", "a.b", b, m},
		{"reserved model name", "arrow", b, m},
		{"empty onnx", "cls", nil, m},
		{"garbage onnx", "cls", []byte("not a model at all"), m},
		{"labels disagree with the graph", "cls", b, bad},
		{"input size disagrees with the graph", "cls", b, wrongInput},
		{"invalid manifest", "cls", b, noArch},
	} {
		if v, err := s.Push(ctx, c.model, c.b, c.m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Push = %q, %v (want ErrInvalid)", c.name, v, err)
		}
	}
	if names, err := s.List(ctx); err != nil || len(names) != 0 {
		t.Fatalf("after rejected pushes List = %q, %v (want none)", names, err)
	}
	if _, _, err := s.Get(ctx, "cls", "../x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Get with a path in the version: %v (want ErrInvalid)", err)
	}
}

func TestGetDetectsReplacedFile(t *testing.T) {
	ctx := testCtx(t)
	js := startJS(t)
	s, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b1, m1 := tinyClassifier(t, 1)
	v, err := s.Push(ctx, "cls", b1, m1)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := tinyClassifier(t, 3)
	if _, err := s.obj.PutBytes(ctx, objectName("cls", v, ONNXObject), b2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "cls", v); !errors.Is(err, ErrDigest) {
		t.Fatalf("Get of a replaced model.onnx: %v (want ErrDigest)", err)
	}
}

func TestConcurrentPushesGetDistinctVersions(t *testing.T) {
	ctx := testCtx(t)
	js := startJS(t)
	s, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, m := tinyClassifier(t, 1)
	const n = 6
	var wg sync.WaitGroup
	versions := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { versions[i], errs[i] = s.Push(ctx, "cls", b, m) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[versions[i]] {
			t.Fatalf("version %s assigned twice: %q", versions[i], versions)
		}
		seen[versions[i]] = true
	}
	vs, err := s.Versions(ctx, "cls")
	if err != nil || len(vs) != n || vs[n-1].Version != FormatVersion(n) {
		t.Fatalf("Versions after %d concurrent pushes: %d, %v", n, len(vs), err)
	}
}

func TestWatch(t *testing.T) {
	ctx := testCtx(t)
	js := startJS(t)
	s, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, m := tinyClassifier(t, 1)
	for range 2 {
		if _, err := s.Push(ctx, "cls", b, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Push(ctx, "other", b, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "cls", "v0001", "first"); err != nil {
		t.Fatal(err)
	}
	one, err := s.Watch(ctx, "cls")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Stop()
	all, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	next := func(w *Watcher) Pointer {
		t.Helper()
		select {
		case p, ok := <-w.Updates():
			if !ok {
				t.Fatal("watcher closed")
			}
			return p
		case <-ctx.Done():
			t.Fatal("no update before the test deadline")
		}
		return Pointer{}
	}
	if p := next(one); p.Version != "v0001" || p.Reason != "first" {
		t.Fatalf("initial pointer %+v", p)
	}
	if p := next(all); p.Model != "cls" || p.Version != "v0001" {
		t.Fatalf("initial pointer (all) %+v", p)
	}
	if _, err := s.Promote(ctx, "cls", "v0002", "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "other", "v0001", "first of other"); err != nil {
		t.Fatal(err)
	}
	if p := next(one); p.Version != "v0002" || p.Previous != "v0001" {
		t.Fatalf("update %+v", p)
	}
	if p := next(all); p.Model != "cls" || p.Version != "v0002" {
		t.Fatalf("update (all) %+v", p)
	}
	if p := next(all); p.Model != "other" || p.Version != "v0001" {
		t.Fatalf("update (all) for the second model %+v (counter keys must not appear)", p)
	}
	one.Stop()
	if _, ok := <-one.Updates(); ok {
		t.Fatal("Updates still open after Stop")
	}
	one.Stop() // twice is fine
}
