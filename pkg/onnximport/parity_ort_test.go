//go:build ort

package onnximport

import (
	"fmt"
	"image"
	"math"
	"os"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/onnx"
	"vireo/pkg/ort"
)

// Real inputs from Debian's opencv-doc.
const (
	megamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	textDir  = "/usr/share/doc/opencv-doc/examples/text/"
)

// Parity tolerance with ONNX Runtime: each output element within 1e-3
// absolute or 1e-3 relative.
const parityTol = 1e-3

// engine is one imported model compiled per input shape, next to an ORT
// session over the original file.
type engine struct {
	t        *testing.T
	b        kernels.Backend
	res      *Result
	progs    map[string]*graph.Program
	sess     *ort.Session
	inName   string
	outNames []string
}

func newEngine(t *testing.T, b kernels.Backend, rel string) *engine {
	t.Helper()
	path := thirdParty(t, rel)
	if err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Graph()
	e := &engine{t: t, b: b, res: res, progs: map[string]*graph.Program{}, inName: g.Inputs[0].Name}
	for _, o := range g.Outputs {
		e.outNames = append(e.outNames, o.Name)
	}
	if e.sess, err = ort.NewSession(raw, []string{e.inName}, e.outNames, 2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.sess.Close()
		for _, p := range e.progs {
			p.Close()
		}
	})
	return e
}

// run runs Vireo on an NCHW input and returns its outputs (copies).
func (e *engine) run(x []float32, shape []int) [][]float32 {
	e.t.Helper()
	key := fmt.Sprint(shape)
	p := e.progs[key]
	if p == nil {
		var err error
		p, err = graph.Compile(e.res.Graph(), e.b, graph.Options{InputShapes: map[string][]int{e.inName: shape}})
		if err != nil {
			e.t.Fatal(err)
		}
		e.progs[key] = p
	}
	outs, err := p.Run(kernels.FromSlice(x, shape...))
	if err != nil {
		e.t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = make([]float32, o.Numel())
		if err := e.b.Download(res[i], o); err != nil {
			e.t.Fatal(err)
		}
	}
	return res
}

// ref runs ORT on the original model (x in the model's own layout).
func (e *engine) ref(x []float32, shape []int) [][]float32 {
	e.t.Helper()
	s := make([]int64, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	outs, err := e.sess.Run([]ort.Input{{Name: e.inName, Shape: s, Data: x}})
	if err != nil {
		e.t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = o.Data
	}
	return res
}

// worst keeps the largest differences per output over several inputs.
type worst struct {
	names    []string
	abs, rel []float64
}

func (e *engine) worst() *worst {
	return &worst{names: e.outNames, abs: make([]float64, len(e.outNames)), rel: make([]float64, len(e.outNames))}
}

// log reports the largest differences per output.
func (w *worst) log(t *testing.T, what string) {
	t.Helper()
	for k, n := range w.names {
		t.Logf("%s output %q: max |diff| %.3g, max rel diff %.3g", what, n, w.abs[k], w.rel[k])
	}
}

// compare checks ours against ORT's outputs (each element within
// parityTol absolute or relative), records the largest differences per
// output in w, and returns this input's largest over all outputs.
func compare(t *testing.T, what string, w *worst, ours, ref [][]float32) (maxAbs, maxRel float64) {
	t.Helper()
	if len(ours) != len(ref) || len(ref) != len(w.abs) {
		t.Fatalf("%s: %d outputs, ORT %d, model %d", what, len(ours), len(ref), len(w.abs))
	}
	for k := range ref {
		if len(ours[k]) != len(ref[k]) {
			t.Fatalf("%s: output %d has %d values, ORT %d", what, k, len(ours[k]), len(ref[k]))
		}
		for i, r := range ref[k] {
			d := math.Abs(float64(ours[k][i]) - float64(r))
			rel := d / math.Max(math.Abs(float64(r)), 1e-12)
			maxAbs = math.Max(maxAbs, d)
			w.abs[k] = math.Max(w.abs[k], d)
			if d > 1e-6 {
				maxRel = math.Max(maxRel, rel)
				w.rel[k] = math.Max(w.rel[k], rel)
			}
			if d > parityTol && rel > parityTol {
				t.Fatalf("%s: output %d[%d] = %g, ORT %g (|diff| %.3g, rel %.3g)", what, k, i, ours[k][i], r, d, rel)
			}
		}
	}
	return maxAbs, maxRel
}

func newCPU2(t *testing.T) kernels.Backend {
	t.Helper()
	c, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// planar converts an 8-bit BGR Mat into a float32 NCHW (rgb true: RGB
// order) tensor with y = (v*scale - mean[c]) / std[c].
func planar(m gocv.Mat, rgb bool, scale float32, mean, std [3]float32) []float32 {
	h, w := m.Rows(), m.Cols()
	b := m.ToBytes()
	out := make([]float32, 3*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				src := c
				if rgb {
					src = 2 - c
				}
				v := float32(b[(y*w+x)*3+src])
				out[(c*h+y)*w+x] = (v*scale - mean[c]) / std[c]
			}
		}
	}
	return out
}

// nchwToNHWC reorders a (1,C,H,W) tensor.
func nchwToNHWC(x []float32, c, h, w int) []float32 {
	out := make([]float32, len(x))
	for k := 0; k < c; k++ {
		for i := 0; i < h*w; i++ {
			out[i*c+k] = x[k*h*w+i]
		}
	}
	return out
}

func readImage(t *testing.T, path string) gocv.Mat {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s missing (Debian package opencv-doc): %v", path, err)
	}
	m := gocv.IMRead(path, gocv.IMReadColor)
	if m.Empty() {
		t.Fatalf("%s: could not decode", path)
	}
	return m
}

func resized(m gocv.Mat, w, h int) gocv.Mat {
	r := gocv.NewMat()
	gocv.Resize(m, &r, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	return r
}

func TestParityBlazeFace(t *testing.T) {
	e := newEngine(t, newCPU2(t), blazeFace)
	if _, err := os.Stat(megamind); err != nil {
		t.Skipf("%s missing (Debian package opencv-doc)", megamind)
	}
	vc, err := gocv.VideoCaptureFile(megamind)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	checked := 0
	w := e.worst()
	for i := 0; i < 200 && vc.Read(&frame); i++ {
		if i%40 != 0 || frame.Empty() {
			continue
		}
		r := resized(frame, 128, 128)
		// MediaPipe's input: RGB scaled to [-1, 1].
		x := planar(r, true, 1/127.5, [3]float32{1, 1, 1}, [3]float32{1, 1, 1})
		r.Close()
		ours := e.run(x, []int{1, 3, 128, 128})
		ref := e.ref(nchwToNHWC(x, 3, 128, 128), []int{1, 128, 128, 3})
		compare(t, fmt.Sprintf("frame %d", i), w, ours, ref)
		// The best face score agrees too.
		bi, bo := argmax(ref[0]), argmax(ours[0])
		if bi != bo {
			t.Errorf("frame %d: best anchor %d, ORT %d", i, bo, bi)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d frames checked", checked)
	}
	w.log(t, fmt.Sprintf("BlazeFace, %d Megamind frames:", checked))
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestParityOCRDet(t *testing.T) {
	e := newEngine(t, newCPU2(t), ocrDet)
	wst := e.worst()
	for i := 1; i <= 6; i++ {
		img := readImage(t, fmt.Sprintf("%sscenetext%02d.jpg", textDir, i))
		// PaddleOCR's det preprocessing: longest side to at most 640,
		// both sides multiples of 32, ImageNet normalisation.
		h, w := img.Rows(), img.Cols()
		s := math.Min(1, 640/float64(max(h, w)))
		rh, rw := max(32, int(math.Round(float64(h)*s/32))*32), max(32, int(math.Round(float64(w)*s/32))*32)
		r := resized(img, rw, rh)
		img.Close()
		x := planar(r, true, 1.0/255, [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225})
		r.Close()
		shape := []int{1, 3, rh, rw}
		ours := e.run(x, shape)
		ref := e.ref(x, shape)
		a, _ := compare(t, fmt.Sprintf("scenetext%02d %dx%d", i, rw, rh), wst, ours, ref)
		t.Logf("scenetext%02d.jpg at %dx%d: max |diff| %.3g", i, rw, rh, a)
	}
	wst.log(t, "PP-OCRv4 det:")
}

// recInput is PaddleOCR's recogniser preprocessing: height 48, width by
// aspect ratio, (v/255-0.5)/0.5, padded with zeros to at least minW.
func recInput(m gocv.Mat, minW int) ([]float32, []int) {
	h, w := m.Rows(), m.Cols()
	rw := int(math.Ceil(48 * float64(w) / float64(h)))
	r := resized(m, rw, 48)
	defer r.Close()
	x := planar(r, false, 1.0/255, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5})
	W := max(rw, minW)
	out := make([]float32, 3*48*W)
	for c := 0; c < 3; c++ {
		for y := 0; y < 48; y++ {
			copy(out[(c*48+y)*W:], x[(c*48+y)*rw:(c*48+y)*rw+rw])
		}
	}
	return out, []int{1, 3, 48, W}
}

// ctcGreedy decodes a (1,T,K) softmax output: best class per step, repeats
// collapsed, blanks (class 0) dropped; class i is keys[i-1], and the last
// class is a space.
func ctcGreedy(probs []float32, k int, keys []string) string {
	var sb strings.Builder
	prev := -1
	for t := 0; t*k < len(probs); t++ {
		c := argmax(probs[t*k : (t+1)*k])
		if c != prev && c != 0 {
			switch {
			case c-1 < len(keys):
				sb.WriteString(keys[c-1])
			default:
				sb.WriteString(" ")
			}
		}
		prev = c
	}
	return sb.String()
}

func TestParityOCRRec(t *testing.T) {
	e := newEngine(t, newCPU2(t), ocrRec)
	raw, err := os.ReadFile(thirdParty(t, ocrKeys))
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	w := e.worst()
	for i := 1; i <= 4; i++ {
		img := readImage(t, fmt.Sprintf("%sscenetext_word%02d.jpg", textDir, i))
		x, shape := recInput(img, 320)
		img.Close()
		ours := e.run(x, shape)
		ref := e.ref(x, shape)
		a, _ := compare(t, fmt.Sprintf("word%02d", i), w, ours, ref)
		k := 6625
		got, want := ctcGreedy(ours[0], k, keys), ctcGreedy(ref[0], k, keys)
		if got != want {
			t.Errorf("scenetext_word%02d.jpg: Vireo reads %q, ORT %q", i, got, want)
		}
		t.Logf("scenetext_word%02d.jpg (%v): Vireo reads %q, ORT %q, max |diff| %.3g", i, shape, got, want, a)
	}
	w.log(t, "PP-OCRv4 rec:")
}

func TestParityOCRCls(t *testing.T) {
	e := newEngine(t, newCPU2(t), ocrCls)
	labels := []string{"0", "180"}
	wst := e.worst()
	for i := 1; i <= 4; i++ {
		img := readImage(t, fmt.Sprintf("%sscenetext_word%02d.jpg", textDir, i))
		rot := gocv.NewMat()
		gocv.Rotate(img, &rot, gocv.Rotate180Clockwise)
		for j, m := range []gocv.Mat{img, rot} {
			// PaddleOCR's cls preprocessing: 3x48x192, by aspect ratio,
			// padded with zeros.
			h, w := m.Rows(), m.Cols()
			rw := min(192, int(math.Ceil(48*float64(w)/float64(h))))
			r := resized(m, rw, 48)
			xs := planar(r, false, 1.0/255, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5})
			r.Close()
			x := make([]float32, 3*48*192)
			for c := 0; c < 3; c++ {
				for y := 0; y < 48; y++ {
					copy(x[(c*48+y)*192:], xs[(c*48+y)*rw:(c*48+y)*rw+rw])
				}
			}
			shape := []int{1, 3, 48, 192}
			ours, ref := e.run(x, shape), e.ref(x, shape)
			what := fmt.Sprintf("word%02d rotated %s", i, labels[j])
			compare(t, what, wst, ours, ref)
			got, want := labels[argmax(ours[0])], labels[argmax(ref[0])]
			if got != want {
				t.Errorf("%s: Vireo says %s, ORT %s", what, got, want)
			}
			t.Logf("%s: Vireo %s (p=%.4f), ORT %s (p=%.4f)", what, got, ours[0][argmax(ours[0])], want, ref[0][argmax(ref[0])])
		}
		img.Close()
		rot.Close()
	}
	wst.log(t, "direction cls:")
}

// TestParityBlazeFaceDecoded: the stored model with the BlazeFace decoder
// (dynamic batch, NCHW input, points and score outputs) runs in ONNX
// Runtime and gives what Vireo gives, on a batch of Megamind frames.
func TestParityBlazeFaceDecoded(t *testing.T) {
	path := thirdParty(t, blazeFace)
	if err := ort.Init(); err != nil {
		t.Skipf("ONNX Runtime: %v", err)
	}
	frames := megamindFrames(t)
	defer func() {
		for _, f := range frames {
			f.Close()
		}
	}()
	res, err := ImportFile(path, Options{Decode: DecodeBlazeFace})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := onnx.Encode(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Graph()
	sess, err := ort.NewSession(enc, []string{g.Inputs[0].Name}, []string{g.Outputs[0].Name, g.Outputs[1].Name}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	b := newCPU2(t)
	n := len(frames)
	x := blazeInputs(frames)
	ours := runGraph(t, b, g, x, []int{n, 3, 128, 128})
	outs, err := sess.Run([]ort.Input{{Name: g.Inputs[0].Name, Shape: []int64{int64(n), 3, 128, 128}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	ref := [][]float32{outs[0].Data, outs[1].Data}
	w := &worst{names: []string{g.Outputs[0].Name, g.Outputs[1].Name}, abs: make([]float64, 2), rel: make([]float64, 2)}
	compare(t, "decoded BlazeFace", w, ours, ref)
	w.log(t, "decoded BlazeFace, batch of "+fmt.Sprint(n)+" Megamind frames:")
}
