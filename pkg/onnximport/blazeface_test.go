package onnximport

import (
	"context"
	"errors"
	"image"
	"math"
	"os"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/predict"
	"vireo/pkg/schema"
)

const (
	megamindAVI  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	faceCascade  = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
	megamindStep = 15 // every 15th frame: 18 frames
)

// megamindFrames reads every megamindStep-th frame of Megamind.avi (BGR
// Mats, the caller closes them), skipping when the file is missing.
func megamindFrames(t *testing.T) []gocv.Mat {
	t.Helper()
	if _, err := os.Stat(megamindAVI); err != nil {
		t.Skipf("%s missing (Debian package opencv-doc)", megamindAVI)
	}
	vc, err := gocv.VideoCaptureFile(megamindAVI)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	var out []gocv.Mat
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; vc.Read(&m); i++ {
		if m.Empty() {
			break
		}
		if i%megamindStep == 0 {
			out = append(out, m.Clone())
		}
	}
	if len(out) < 5 {
		t.Fatalf("Megamind.avi: %d frames read", len(out))
	}
	return out
}

// blazeInputs turns frames into BlazeFace's NCHW input: RGB, 128x128,
// v/127.5-1.
func blazeInputs(frames []gocv.Mat) []float32 {
	const s = 128
	out := make([]float32, 0, len(frames)*3*s*s)
	r := gocv.NewMat()
	defer r.Close()
	for _, f := range frames {
		gocv.Resize(f, &r, image.Pt(s, s), 0, 0, gocv.InterpolationLinear)
		b := r.ToBytes()
		for c := 0; c < 3; c++ {
			for i := 0; i < s*s; i++ {
				out = append(out, float32(b[i*3+2-c])/127.5-1)
			}
		}
	}
	return out
}

func runGraph(t *testing.T, b kernels.Backend, g *graph.Graph, x []float32, shape []int) [][]float32 {
	t.Helper()
	p, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{g.Inputs[0].Name: shape}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	outs, err := p.Run(kernels.FromSlice(x, shape...))
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = make([]float32, o.Numel())
		if err := b.Download(res[i], o); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// TestBlazeFaceDecode: the import makes BlazeFace's batch dynamic (a batch
// of frames gives what each frame gives alone), and the decoder appended
// with DecodeBlazeFace gives what BlazeFaceDecode computes from the raw
// outputs.
func TestBlazeFaceDecode(t *testing.T) {
	path := thirdParty(t, blazeFace)
	frames := megamindFrames(t)
	defer func() {
		for _, f := range frames {
			f.Close()
		}
	}()
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	raw, err := ImportFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ImportFile(path, Options{Decode: DecodeBlazeFace})
	if err != nil {
		t.Fatal(err)
	}
	if !raw.Report.DynamicBatch || !dec.Report.DynamicBatch || dec.Report.Decode != DecodeBlazeFace {
		t.Fatalf("reports %+v / %+v: want a dynamic batch and the decoder", raw.Report, dec.Report)
	}
	if raw.Report.Ops["Pad"] != 11 || raw.Report.Ops["Concat"] != 0 {
		t.Errorf("ops %v: want the 11 zero-channel Concats as Pads", raw.Report.Ops)
	}
	// The stored file decodes to the same graph.
	enc, err := onnx.Encode(dec.Model)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}

	n := len(frames)
	x := blazeInputs(frames)
	shape := []int{n, 3, 128, 128}
	batch := runGraph(t, b, raw.Graph(), x, shape)
	got := runGraph(t, b, back.Graph, x, shape)
	if len(got) != 2 || len(got[0]) != n*16 || len(got[1]) != n {
		t.Fatalf("decoded outputs: %d tensors (%d, %d values), want points %d and scores %d", len(got), len(got[0]), len(got[1]), n*16, n)
	}
	per := 3 * 128 * 128
	var worstBatch, worstDec float64
	for i := 0; i < n; i++ {
		one := runGraph(t, b, raw.Graph(), x[i*per:(i+1)*per], []int{1, 3, 128, 128})
		scores := make([]float32, 0, 896)
		offs := make([]float32, 0, 896*16)
		for k, o := range one {
			m := len(o)
			for j, v := range o {
				bv := batch[k][i*m+j]
				d := math.Abs(float64(bv - v))
				worstBatch = math.Max(worstBatch, d)
				if d > 1e-4+1e-4*math.Abs(float64(v)) {
					t.Fatalf("frame %d output %d[%d]: batch of %d gives %g, alone %g", i, k, j, n, bv, v)
				}
			}
		}
		scores = append(append(scores, one[0]...), one[1]...)
		offs = append(append(offs, one[2]...), one[3]...)
		wantPts, wantScore := BlazeFaceDecode(scores, offs)
		for j, w := range wantPts {
			d := math.Abs(float64(got[0][i*16+j]) - w)
			worstDec = math.Max(worstDec, d)
			if d > 1e-3 {
				t.Errorf("frame %d point value %d: graph %g, reference %g", i, j, got[0][i*16+j], w)
			}
		}
		if d := math.Abs(float64(got[1][i]) - wantScore); d > 1e-4 {
			t.Errorf("frame %d score: graph %g, reference %g", i, got[1][i], wantScore)
		}
	}
	t.Logf("%d Megamind frames: batch vs alone max |diff| %.3g; decoded points vs reference max |diff| %.3g", n, worstBatch, worstDec)
}

func TestBlazeFaceDecodeRefusesOtherModels(t *testing.T) {
	_, err := ImportFile(thirdParty(t, ocrCls), Options{Decode: DecodeBlazeFace})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("decode blazeface on the direction classifier: %v (want ErrInvalid naming the outputs)", err)
	}
	t.Log(err)
	if _, err := Import(nil, Options{Decode: "yolo"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("decode yolo: %v (want ErrInvalid)", err)
	}
}

// TestBlazeFaceServes: BlazeFace imported with its decoder serves as a
// regression model through pkg/predict (the infer service's path: uint8
// BGR frames resized to 128x128, normalised from the manifest), and on
// Megamind.avi its eyes, nose and mouth, in frame pixels, fall inside the
// face box OpenCV's Haar cascade finds on the same frame. The cascade is
// pseudo ground truth: on frames 120 and 135 its box sits on the forehead
// and hair (checked by eye on the drawn frames; BlazeFace's eyes there are
// 12-22 px below the box's lower edge, on the eyes), so the test asks for
// agreement on at least 80% of the frames where it finds a face, and logs
// each disagreement.
func TestBlazeFaceServes(t *testing.T) {
	path := thirdParty(t, blazeFace)
	if _, err := os.Stat(faceCascade); err != nil {
		t.Skipf("%s missing (Debian package opencv-data)", faceCascade)
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
	m := model.Manifest{
		Name: "face", Version: "v0001", Task: model.Regress,
		Labels:        BlazeFacePoints,
		Points:        len(BlazeFacePoints),
		Input:         model.Input{Width: 128, Height: 128, Channels: 3, Layout: "nchw", Color: "rgb"},
		Normalization: model.Normalization{Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.5, 0.5, 0.5}},
		VoidClass:     model.NoVoid,
		CreatedAt:     time.Now().UTC(),
		Arch:          "imported:blazeface",
	}
	m.SetDefaults()
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := predict.Load(b, enc, m, predict.Options{MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	cc := gocv.NewCascadeClassifier()
	defer cc.Close()
	if !cc.Load(faceCascade) {
		t.Fatalf("load %s", faceCascade)
	}
	var in []schema.Frame
	r := gocv.NewMat()
	defer r.Close()
	for i, f := range frames {
		gocv.Resize(f, &r, image.Pt(128, 128), 0, 0, gocv.InterpolationLinear)
		in = append(in, schema.Frame{Source: "megamind", Seq: uint64(i * megamindStep), Captured: time.Now(),
			Width: 128, Height: 128, Channels: 3, OrigWidth: f.Cols(), OrigHeight: f.Rows(), Pixels: r.ToBytes()})
	}
	results, err := p.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	checked, agree := 0, 0
	for i, f := range frames {
		box, ok := haarFace(cc, f)
		if !ok {
			t.Logf("frame %d: no Haar face, skipped", i*megamindStep)
			continue
		}
		checked++
		pts := results[i].Points
		t.Logf("frame %d: Haar box %v; eyes (%.0f,%.0f) (%.0f,%.0f), nose (%.0f,%.0f), mouth (%.0f,%.0f)", i*megamindStep, box,
			pts[2].X, pts[2].Y, pts[3].X, pts[3].Y, pts[4].X, pts[4].Y, pts[5].X, pts[5].Y)
		if msg := checkFace(pts, box); msg != "" {
			t.Logf("frame %d: disagrees: %s", i*megamindStep, msg)
			continue
		}
		agree++
	}
	if checked < len(frames)/2 {
		t.Fatalf("Haar found a face in %d of %d frames", checked, len(frames))
	}
	if 5*agree < 4*checked {
		t.Fatalf("eyes, nose and mouth inside the Haar box on %d of %d frames (want >= 80%%)", agree, checked)
	}
	t.Logf("%d of %d frames have a Haar face; BlazeFace's eyes, nose and mouth are inside it on %d", checked, len(frames), agree)
}

// haarFace is the largest face the cascade finds on a BGR frame (as
// pkg/data finds Megamind's faces: equalised grey, 5 neighbours, at least
// 100 pixels a side).
func haarFace(cc gocv.CascadeClassifier, f gocv.Mat) (image.Rectangle, bool) {
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(f, &gray, gocv.ColorBGRToGray)
	gocv.EqualizeHist(gray, &gray)
	faces := cc.DetectMultiScaleWithParams(gray, 1.1, 5, 0, image.Pt(100, 100), image.Pt(0, 0))
	if len(faces) == 0 {
		return image.Rectangle{}, false
	}
	best := faces[0]
	for _, r := range faces[1:] {
		if r.Dx()*r.Dy() > best.Dx()*best.Dy() {
			best = r
		}
	}
	return best, true
}

// checkFace says what is wrong with BlazeFace's points against a Haar
// face box, or "": eyes, nose and mouth (points 2..5) inside the box, the
// right eye (subject's) left of the left eye, eyes above the mouth, and
// the predicted box's centre inside the Haar box.
func checkFace(pts []schema.Point, box image.Rectangle) string {
	if len(pts) != len(BlazeFacePoints) {
		return "wrong number of points"
	}
	in := func(p schema.Point) bool {
		return p.X >= float64(box.Min.X) && p.X <= float64(box.Max.X) && p.Y >= float64(box.Min.Y) && p.Y <= float64(box.Max.Y)
	}
	for k := 2; k <= 5; k++ {
		if !in(pts[k]) {
			return BlazeFacePoints[k] + " outside the Haar box " + box.String()
		}
	}
	if pts[2].X >= pts[3].X || pts[2].Y >= pts[5].Y || pts[3].Y >= pts[5].Y {
		return "eyes and mouth in the wrong arrangement"
	}
	c := schema.Point{X: (pts[0].X + pts[1].X) / 2, Y: (pts[0].Y + pts[1].Y) / 2}
	if !in(c) {
		return "box centre outside the Haar box " + box.String()
	}
	return ""
}
