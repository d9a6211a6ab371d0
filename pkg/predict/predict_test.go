package predict

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"path/filepath"
	"testing"
	"time"

	"vireo/pkg/arch"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/schema"
)

func newCPU(t testing.TB) kernels.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestPostProcessingByHand(t *testing.T) {
	// softmax([1, 0.2, 0]) = exp(x)/sum.
	e1, e2, e3 := math.E, math.Exp(0.2), 1.0
	sum := e1 + e2 + e3
	sm := Softmax([]float32{1, 0.2, 0})
	for i, want := range []float64{e1 / sum, e2 / sum, e3 / sum} {
		if !near(sm[i], want, 1e-7) {
			t.Errorf("softmax[%d] (got=%v, want=%v)", i, sm[i], want)
		}
	}
	// Large logits do not overflow.
	if sm := Softmax([]float32{1000, 1000}); !near(sm[0], 0.5, 1e-12) {
		t.Errorf("softmax of large equal logits (got=%v, want 0.5 each)", sm)
	}
	sg := Sigmoid([]float32{0, 2, -2})
	for i, want := range []float64{0.5, 1 / (1 + math.Exp(-2)), 1 / (1 + math.Exp(2))} {
		if !near(sg[i], want, 1e-12) {
			t.Errorf("sigmoid[%d] (got=%v, want=%v)", i, sg[i], want)
		}
	}
	// (K=3, H=2, W=2): pixel 0 -> class 0, 1 -> 1, 2 -> 2, 3 -> tie 0/2 -> first (0).
	scores := []float32{
		5, 0, 0, 1, // class 0
		1, 4, 0, 0, // class 1
		0, 0, 3, 1, // class 2
	}
	mask, frac := ArgmaxMask(scores, 3, 2, 2)
	if !bytes.Equal(mask, []byte{0, 1, 2, 0}) {
		t.Errorf("mask (got=%v, want=[0 1 2 0])", mask)
	}
	for i, want := range []float64{0.5, 0.25, 0.25} {
		if frac[i] != want {
			t.Errorf("class_fraction[%d] (got=%v, want=%v)", i, frac[i], want)
		}
	}
	b, err := MaskPNG(mask, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != 2 || g.Rect.Dy() != 2 || g.GrayAt(1, 0).Y != 1 || g.GrayAt(0, 1).Y != 2 {
		t.Errorf("mask PNG decodes to %T %v", img, img.Bounds())
	}
	if _, err := MaskPNG(mask, 3, 2); !errors.Is(err, ErrOutput) {
		t.Errorf("MaskPNG with a wrong size: %v (want ErrOutput)", err)
	}
	// [-1,1] -> original frame pixels: -1 -> 0, 1 -> size, 0 -> centre.
	pts := Points([]float32{-1, 1, 0, 0.5}, 640, 480)
	want := []schema.Point{{X: 0, Y: 480}, {X: 320, Y: 360}}
	for i := range want {
		if pts[i] != want[i] {
			t.Errorf("point %d (got=%v, want=%v)", i, pts[i], want[i])
		}
	}
}

// tinyGraph is a 1x1 conv (w is (out,3,1,1)) on (N,3,s,s) inputs,
// followed by global average pooling and flatten when pool is set.
func tinyGraph(t *testing.T, w []float32, out, s int, pool bool) []byte {
	t.Helper()
	nodes := []*graph.Node{{Op: "Conv", Inputs: []string{"input", "w"}, Outputs: []string{"c"}}}
	outShape := []int{-1, out, s, s}
	if pool {
		nodes = append(nodes,
			&graph.Node{Op: "GlobalAveragePool", Inputs: []string{"c"}, Outputs: []string{"p"}},
			&graph.Node{Op: "Flatten", Inputs: []string{"p"}, Outputs: []string{"output"}})
		outShape = []int{-1, out}
	} else {
		nodes[0].Outputs = []string{"output"}
	}
	dp := make([]string, len(outShape))
	dp[0] = "N"
	g := &graph.Graph{
		Nodes:        nodes,
		Inputs:       []graph.ValueInfo{{Name: "input", DType: graph.Float32, Shape: []int{-1, 3, s, s}, DimParams: []string{"N", "", "", ""}}},
		Outputs:      []graph.ValueInfo{{Name: "output", DType: graph.Float32, Shape: outShape, DimParams: dp}},
		Initializers: map[string]*graph.Tensor{"w": {Name: "w", DType: graph.Float32, Shape: []int{out, 3, 1, 1}, Float: w}},
	}
	b, err := onnx.Encode(onnx.NewModel(g))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manifest(task model.Task, labels []string, s int) model.Manifest {
	m := model.Manifest{
		Name: "tiny", Version: "v0007", Task: task, Labels: labels,
		Input: model.Input{Width: s, Height: s, Channels: 3},
		// x = p/255: mean 0, std 1.
		Normalization: model.Normalization{Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}},
		VoidClass:     model.NoVoid,
		CreatedAt:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Arch:          "tiny",
	}
	m.SetDefaults()
	return m
}

// uniform is an s x s BGR frame of one colour.
func uniform(src string, seq uint64, s int, b, g, r byte) schema.Frame {
	pix := make([]byte, s*s*3)
	for i := 0; i < len(pix); i += 3 {
		pix[i], pix[i+1], pix[i+2] = b, g, r
	}
	return schema.Frame{Source: src, Seq: seq, Captured: time.Now().Add(-time.Millisecond), OrigWidth: 640, OrigHeight: 480,
		Width: s, Height: s, Channels: 3, Pixels: pix}
}

var identity3 = []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}

// TestTinyGraphsByHand runs 1x1-conv networks whose outputs are computable
// by hand: a frame of B=0, G=51, R=255 is RGB (1, 0.2, 0) after
// normalisation, so the identity conv + average pool gives logits
// (1, 0.2, 0) for an RGB model and (0, 0.2, 1) for a BGR one.
func TestTinyGraphsByHand(t *testing.T) {
	b := newCPU(t)
	ctx := context.Background()
	labels := []string{"red", "green", "blue"}
	frame := uniform("cam", 3, 4, 0, 51, 255)

	run := func(t *testing.T, onnxBytes []byte, m model.Manifest, frames ...schema.Frame) []schema.Result {
		t.Helper()
		p, err := Load(b, onnxBytes, m, Options{MaxBatch: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		rs, err := p.Run(ctx, frames)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(frames) {
			t.Fatalf("results (got=%d, want=%d)", len(rs), len(frames))
		}
		for i := range rs {
			if err := rs[i].Validate(); err != nil {
				t.Fatalf("result %d: %v", i, err)
			}
			if rs[i].Source != frames[i].Source || rs[i].Seq != frames[i].Seq || rs[i].ModelVersion != "v0007" || rs[i].Model != "tiny" {
				t.Fatalf("result %d identity: %+v", i, rs[i])
			}
		}
		return rs
	}

	t.Run("classify", func(t *testing.T) {
		rs := run(t, tinyGraph(t, identity3, 3, 4, true), manifest(model.Classify, labels, 4), frame)
		sm := Softmax([]float32{1, 0.2, 0})
		if rs[0].Labels[0] != "red" {
			t.Fatalf("label (got=%v, want=red)", rs[0].Labels)
		}
		for i, l := range labels {
			if !near(rs[0].Scores[l], sm[i], 1e-5) {
				t.Errorf("score %s (got=%v, want=%v)", l, rs[0].Scores[l], sm[i])
			}
		}
		if rs[0].Task != schema.TaskClassification {
			t.Errorf("task %q", rs[0].Task)
		}
	})
	t.Run("classify-bgr", func(t *testing.T) {
		m := manifest(model.Classify, labels, 4)
		m.Input.Color = "bgr"
		rs := run(t, tinyGraph(t, identity3, 3, 4, true), m, frame)
		if rs[0].Labels[0] != "blue" { // channel 0 is B=0... logits (0, 0.2, 1)
			t.Fatalf("label of a BGR model (got=%v, want=blue)", rs[0].Labels)
		}
	})
	t.Run("multilabel", func(t *testing.T) {
		m := manifest(model.MultiLabel, labels, 4)
		m.Threshold = 0.6 // sigmoid(1)=0.73 passes, sigmoid(0.2)=0.55 and sigmoid(0)=0.5 do not
		rs := run(t, tinyGraph(t, identity3, 3, 4, true), m, frame)
		if len(rs[0].Labels) != 1 || rs[0].Labels[0] != "red" {
			t.Fatalf("labels (got=%v, want=[red])", rs[0].Labels)
		}
		if !near(rs[0].Scores["green"], 1/(1+math.Exp(-0.2)), 1e-5) || !near(rs[0].Scores["blue"], 0.5, 1e-6) {
			t.Errorf("scores %v", rs[0].Scores)
		}
	})
	t.Run("regress", func(t *testing.T) {
		m := manifest(model.Regress, nil, 4)
		m.Points = 1
		// x = R (1), y = G (0.2) -> (640, 0.6*480).
		w := []float32{1, 0, 0, 0, 1, 0}
		rs := run(t, tinyGraph(t, w, 2, 4, true), m, frame)
		if p := rs[0].Points; len(p) != 1 || !near(p[0].X, 640, 1e-3) || !near(p[0].Y, 288, 1e-3) {
			t.Fatalf("points (got=%v, want=[(640,288)])", p)
		}
	})
	t.Run("segment", func(t *testing.T) {
		// 2x2 frame: (0,0) red, (0,1) green, (1,0) blue, (1,1) red.
		f := uniform("cam", 9, 2, 0, 0, 0)
		copy(f.Pixels, []byte{0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 255})
		rs := run(t, tinyGraph(t, identity3, 3, 2, false), manifest(model.Segment, labels, 2), f)
		r := rs[0]
		img, err := png.Decode(bytes.NewReader(r.MaskPNG))
		if err != nil {
			t.Fatal(err)
		}
		g := img.(*image.Gray)
		if !bytes.Equal(g.Pix, []byte{0, 1, 2, 0}) || r.Width != 2 || r.Height != 2 {
			t.Fatalf("mask (got=%v %dx%d, want=[0 1 2 0] 2x2)", g.Pix, r.Width, r.Height)
		}
		if r.ClassFraction[0] != 0.5 || r.ClassFraction[1] != 0.25 || r.ClassFraction[2] != 0.25 {
			t.Fatalf("class_fraction %v", r.ClassFraction)
		}
	})
	t.Run("batches", func(t *testing.T) {
		// 6 frames with MaxBatch 4: a batch of 4 and a batch of 2; each
		// frame's scores equal its single-frame scores.
		var frames []schema.Frame
		for i := range 6 {
			frames = append(frames, uniform("s", uint64(i), 4, byte(40*i), byte(255-40*i), byte(30*i)))
		}
		rs := run(t, tinyGraph(t, identity3, 3, 4, true), manifest(model.Classify, labels, 4), frames...)
		for i, f := range frames {
			one := run(t, tinyGraph(t, identity3, 3, 4, true), manifest(model.Classify, labels, 4), f)
			for _, l := range labels {
				if !near(rs[i].Scores[l], one[0].Scores[l], 1e-6) {
					t.Fatalf("frame %d score %s in a batch %v, alone %v", i, l, rs[i].Scores[l], one[0].Scores[l])
				}
			}
		}
	})
}

func TestLoadAndRunErrors(t *testing.T) {
	b := newCPU(t)
	labels := []string{"red", "green", "blue"}
	good := tinyGraph(t, identity3, 3, 4, true)
	m := manifest(model.Classify, labels, 4)
	bad := m
	bad.Input.Width = 8
	two := m
	two.Labels = []string{"a", "b"}
	noName := m
	noName.Name = ""
	for _, c := range []struct {
		name string
		b    []byte
		m    model.Manifest
	}{
		{"garbage bytes", []byte("garbage"), m},
		{"input size disagrees", good, bad},
		{"classes disagree", good, two},
		{"no name", good, noName},
	} {
		if _, err := Load(b, c.b, c.m, Options{NoWarm: true}); !errors.Is(err, ErrModel) {
			t.Errorf("%s: Load err=%v (want ErrModel)", c.name, err)
		}
	}
	withDigest := m
	withDigest.ModelDigest = model.Digest([]byte("other"))
	if _, err := Load(b, good, withDigest, Options{NoWarm: true}); !errors.Is(err, model.ErrDigest) {
		t.Errorf("digest mismatch: %v (want model.ErrDigest)", err)
	}
	if _, err := Load(b, good, m, Options{MaxBatch: -1}); err == nil {
		t.Error("MaxBatch -1 accepted")
	}
	p, err := Load(b, good, m, Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	f := uniform("cam", 1, 4, 1, 2, 3)
	small := uniform("cam", 2, 2, 1, 2, 3)
	short := f
	short.Pixels = short.Pixels[:10]
	noOrig := f
	noOrig.OrigWidth = 0
	for name, fr := range map[string]schema.Frame{"wrong size": small, "short pixels": short, "no original size": noOrig} {
		if _, err := p.Run(context.Background(), []schema.Frame{f, fr}); !errors.Is(err, ErrInput) {
			t.Errorf("%s: Run err=%v (want ErrInput)", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, []schema.Frame{f}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled ctx: %v", err)
	}
	p.Close()
	if _, err := p.Run(context.Background(), []schema.Frame{f}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v (want ErrClosed)", err)
	}
	p.Close()
}

// TestArchModels serves the native architectures for all four tasks, built
// by pkg/arch, written by pkg/onnx, described by a pkg/model manifest: every
// result validates, and a frame's result does not depend on the batch it
// runs in (padding to a bucket, splitting past MaxBatch).
func TestArchModels(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs four ResNet-18@0.25 networks")
	}
	b := newCPU(t)
	const s = 32
	for _, c := range []struct {
		arch, task string
		cfg        arch.Config
		labels     []string
	}{
		{"resnet18@0.25", arch.TaskClassify, arch.Config{Classes: 3, SmallStem: true, Size: s, Seed: 1}, []string{"a", "b", "c"}},
		{"resnet18@0.25", arch.TaskMultiLabel, arch.Config{Classes: 4, SmallStem: true, Size: s, Seed: 2}, []string{"haze", "clear", "road", "water"}},
		{"resnet18@0.25", arch.TaskRegress, arch.Config{Points: 2, SmallStem: true, Size: s, Seed: 3}, nil},
		{"resnet18-unet@0.25", arch.TaskSegment, arch.Config{Classes: 3, SmallStem: true, Size: s, Seed: 4}, []string{"bg", "person", "void"}},
	} {
		t.Run(c.task, func(t *testing.T) {
			am, err := arch.Build(c.arch, c.task, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ob, err := onnx.Encode(onnx.NewModel(am.Graph))
			if err != nil {
				t.Fatal(err)
			}
			m := manifest(model.Task(c.task), c.labels, s)
			m.Arch = am.Arch
			m.Normalization = model.Normalization{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}
			switch c.task {
			case arch.TaskRegress:
				m.Points = c.cfg.Points
			case arch.TaskSegment:
				m.VoidClass = 2
			}
			m.SetDefaults()
			m.ModelDigest = model.Digest(ob)
			for _, pad := range []bool{false, true} {
				p, err := Load(b, ob, m, Options{MaxBatch: 4, Pad: pad})
				if err != nil {
					t.Fatal(err)
				}
				checkBatchIndependent(t, p, s)
				p.Close()
			}
		})
	}
}

// checkBatchIndependent runs 5 frames at once (4 + 1), the first 3 (with
// Pad, bucket 4 with one padding frame; without, 2 + 1) and each alone:
// every result validates and a frame's result does not depend on its batch.
func checkBatchIndependent(t *testing.T, p *Predictor, s int) {
	t.Helper()
	var frames []schema.Frame
	for i := range 5 {
		f := uniform("cam", uint64(i), s, 0, 0, 0)
		for j := range f.Pixels {
			f.Pixels[j] = byte((j*7 + i*31 + j/97) % 256)
		}
		frames = append(frames, f)
	}
	all, err := p.Run(context.Background(), frames) // 4 + 1
	if err != nil {
		t.Fatal(err)
	}
	three, err := p.Run(context.Background(), frames[:3])
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if err := all[i].Validate(); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		one, err := p.Run(context.Background(), frames[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		same(t, i, all[i], one[0])
		if i < 3 {
			same(t, i, three[i], one[0])
		}
	}
}

// same checks two results of one frame agree (up to float rounding of
// different batch sizes).
func same(t *testing.T, i int, a, b schema.Result) {
	t.Helper()
	for l, s := range a.Scores {
		if !near(s, b.Scores[l], 1e-4) {
			t.Fatalf("frame %d score %s: %v vs %v", i, l, s, b.Scores[l])
		}
	}
	for j := range a.Points {
		if !near(a.Points[j].X, b.Points[j].X, 1e-2) || !near(a.Points[j].Y, b.Points[j].Y, 1e-2) {
			t.Fatalf("frame %d point %d: %v vs %v", i, j, a.Points[j], b.Points[j])
		}
	}
	for j := range a.ClassFraction {
		if !near(a.ClassFraction[j], b.ClassFraction[j], 0.01) {
			t.Fatalf("frame %d class_fraction %d: %v vs %v", i, j, a.ClassFraction, b.ClassFraction)
		}
	}
	if a.MaskPNG != nil || b.MaskPNG != nil {
		ma, err := png.Decode(bytes.NewReader(a.MaskPNG))
		if err != nil {
			t.Fatalf("frame %d mask: %v", i, err)
		}
		mb, err := png.Decode(bytes.NewReader(b.MaskPNG))
		if err != nil {
			t.Fatalf("frame %d mask: %v", i, err)
		}
		ga, gb := ma.(*image.Gray), mb.(*image.Gray)
		diff := 0
		for j := range ga.Pix {
			if ga.Pix[j] != gb.Pix[j] {
				diff++
			}
		}
		if diff*100 > len(ga.Pix) { // float rounding may flip a near tie
			t.Fatalf("frame %d mask: %d of %d pixels differ", i, diff, len(ga.Pix))
		}
	}
}

// BenchmarkMaskPNG encodes a 160x160 two-class mask (vtest-people's
// output) with a fresh encoder per call and with the Predictor's reused
// buffers.
func BenchmarkMaskPNG(b *testing.B) {
	const w, h = 160, 160
	mask := make([]uint8, w*h)
	for i := range mask {
		if (i%w-80)*(i%w-80)+(i/w-80)*(i/w-80) < 40*40 {
			mask[i] = 1
		}
	}
	for _, bc := range []struct {
		name string
		pool *pngBuffers
	}{{"fresh", nil}, {"reused", &pngBuffers{}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if bc.pool == nil {
					_, err = MaskPNG(mask, w, h)
				} else {
					_, err = maskPNG(mask, w, h, bc.pool)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRunSize: the bucket each next run uses, padding or splitting.
func TestRunSize(t *testing.T) {
	for _, c := range []struct {
		pad        bool
		rest, want int
	}{
		{false, 1, 1}, {false, 3, 2}, {false, 5, 4}, {false, 6, 4}, {false, 7, 8}, {false, 12, 8},
		{false, 14, 16}, {false, 15, 16}, {false, 16, 16}, {false, 40, 16},
		{true, 3, 4}, {true, 5, 8}, {true, 9, 16}, {true, 40, 16},
	} {
		p := &Predictor{sizes: []int{1, 2, 4, 8, 16}, pad: c.pad}
		if got := p.runSize(c.rest); got != c.want {
			t.Errorf("pad %v: runSize(%d) (got=%d, want=%d)", c.pad, c.rest, got, c.want)
		}
	}
}

// BenchmarkPadOrSplit runs 5 frames of the bundled vtest-people model
// (160x160 U-Net) padded to bucket 8 and split as 4+1.
func BenchmarkPadOrSplit(b *testing.B) {
	m, ob, err := model.Load(filepath.Join("..", "..", "models", "vtest-people"))
	if err != nil {
		b.Skipf("bundled model: %v", err)
	}
	be, err := cpu.New(cpu.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	in := m.Input
	frames := make([]schema.Frame, 5)
	for i := range frames {
		frames[i] = uniform("cam", uint64(i), in.Width, byte(i*40), 90, 200)
	}
	for _, pad := range []bool{true, false} {
		b.Run(fmt.Sprintf("pad=%v", pad), func(b *testing.B) {
			p, err := Load(be, ob, m, Options{MaxBatch: 16, Pad: pad})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if _, err := p.Run(context.Background(), frames); err != nil { // compile the buckets
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Run(context.Background(), frames); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestFirstNonFinite(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		v    []float32
		want int
	}{
		{nil, -1},
		{[]float32{0, -0, 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}, -1},
		{[]float32{1, nan, inf}, 1},
		{[]float32{1, 2, -inf}, 2},
		{[]float32{inf}, 0},
		{[]float32{math.Float32frombits(0x7fc00001)}, 0}, // a NaN with payload
		{[]float32{math.Float32frombits(0xff800001)}, 0}, // a negative signalling NaN
	} {
		if got := firstNonFinite(tc.v); got != tc.want {
			t.Errorf("firstNonFinite(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}
