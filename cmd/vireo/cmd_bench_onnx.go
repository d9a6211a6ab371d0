package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"vireo/pkg/backend"
	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/bench"
	"vireo/pkg/onnximport"
)

func init() {
	benchSubs["onnx"] = benchONNX
}

// onnxBench is one `vireo bench onnx` run: an imported model, its input
// in Vireo's layout (NCHW) and in the original model's layout.
type onnxBench struct {
	file      string
	raw       []byte
	res       *onnximport.Result
	prog      *graph.Program
	b         kernels.Backend
	inName    string
	outNames  []string
	shape     []int // NCHW, Vireo's input
	origShape []int // the original model's layout
	x, origX  []float32
	threads   int
	reps      int
}

// onnxBenchResult is the JSON line `vireo bench onnx` prints.
type onnxBenchResult struct {
	Model      string  `json:"model"`
	Input      string  `json:"input"`
	Shape      []int   `json:"shape"`
	Layout     string  `json:"layout"`
	Threads    int     `json:"threads"`
	Batch      int     `json:"batch"`
	Reps       int     `json:"reps"`
	VireoMS    float64 `json:"vireo_ms"`
	ORTMS      float64 `json:"ort_ms,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"` // ORT time / Vireo time: > 1 means Vireo is faster
	MaxAbsDiff float64 `json:"max_abs_diff"`
	MaxRelDiff float64 `json:"max_rel_diff"`
}

func benchONNX(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench onnx", stderr)
	file := fs.String("model", "", "ONNX file (required)")
	input := fs.String("input", "random", "an image file (resized to the input, RGB scaled to [0,1]) or \"random\" (uniform [-1,1])")
	shapeFlag := fs.String("shape", "", "NxCxHxW input shape (in Vireo's NCHW layout) for models with dynamic dims; N is then --batch")
	threads := fs.Int("threads", 1, "compute threads for Vireo and for ONNX Runtime (intra-op)")
	batch := fs.Int("batch", 1, "batch size (the image is repeated)")
	reps := fs.Int("reps", 20, "timed runs of each engine, interleaved (median reported); 2 warm-up runs each are discarded")
	vsORT := fs.Bool("vs-ort", false, "also run ONNX Runtime on the original file in the same process, interleaved (needs a vireo built with -tags ort)")
	layout := fs.String("input-layout", "auto", "the model's input layout: auto, nchw or nhwc")
	fs.Bool("json", false, "print one JSON object (the only format)")
	profile := fs.Int("profile", 0, "also time every kernel over --reps runs and write the median time per op type and the N slowest nodes to stderr (0: off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("bench onnx: --model is required")
	}
	if *threads < 1 || *batch < 1 || *reps < 1 {
		return usagef("bench onnx: --threads, --batch and --reps must be >= 1")
	}
	if *vsORT && !ortAvailable {
		return fmt.Errorf("bench onnx: --vs-ort needs a vireo built with -tags ort (go build -tags ort ./cmd/vireo; ONNX Runtime from `make ort` or VIREO_ORT_LIB)")
	}
	ob, err := prepareONNXBench(*file, *input, *shapeFlag, *layout, *threads, *batch, *reps)
	if err != nil {
		return err
	}
	defer ob.close()
	res := onnxBenchResult{Model: *file, Input: *input, Shape: ob.shape, Layout: ob.res.Report.Layout, Threads: *threads, Batch: *batch, Reps: *reps}
	if *vsORT {
		if err := benchVsORT(ctx, ob, &res); err != nil {
			return err
		}
	} else {
		var times []float64
		for i := 0; i < *reps+2; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, _, err := ob.runVireo()
			if err != nil {
				return err
			}
			if i >= 2 {
				times = append(times, d)
			}
		}
		res.VireoMS = bench.Median(times)
	}
	if *profile > 0 {
		if err := profileONNX(ob, *reps, *profile, stderr); err != nil {
			return err
		}
	}
	return json.NewEncoder(stdout).Encode(res)
}

func prepareONNXBench(file, input, shapeFlag, layout string, threads, batch, reps int) (*onnxBench, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bench onnx: %w", err)
	}
	if layout == "auto" {
		layout = onnximport.LayoutAuto
	}
	res, err := onnximport.Import(raw, onnximport.Options{InputLayout: layout})
	if err != nil {
		return nil, fmt.Errorf("bench onnx: %s: %w", file, err)
	}
	g := res.Graph()
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("bench onnx: the model has %d inputs (want 1)", len(g.Inputs))
	}
	in := g.Inputs[0]
	shape := append([]int(nil), in.Shape...)
	if shapeFlag != "" {
		s, err := parseShape(shapeFlag)
		if err != nil {
			return nil, usagef("bench onnx: --shape: %v", err)
		}
		if len(s) != len(shape) {
			return nil, usagef("bench onnx: --shape %v has rank %d, the input %v has %d", s, len(s), in.Shape, len(in.Shape))
		}
		shape = s
	}
	if len(shape) > 0 {
		if in.Shape[0] > 0 && in.Shape[0] != batch {
			return nil, usagef("bench onnx: the model's batch dim is fixed at %d (input %v): --batch %d", in.Shape[0], in.Shape, batch)
		}
		shape[0] = batch
	}
	for i, d := range shape {
		if d <= 0 {
			return nil, usagef("bench onnx: input %q has dynamic dim %d (%v): give --shape NxCxHxW", in.Name, i, in.Shape)
		}
		if in.Shape[i] > 0 && in.Shape[i] != d {
			return nil, usagef("bench onnx: --shape %v disagrees with the input %v at dim %d", shape, in.Shape, i)
		}
	}
	x, err := benchInput(input, shape)
	if err != nil {
		return nil, err
	}
	b, err := backend.Open(backend.Config{Name: "cpu", Threads: threads})
	if err != nil {
		return nil, err
	}
	prog, err := graph.Compile(g, b, graph.Options{InputShapes: map[string][]int{in.Name: shape}})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("bench onnx: compile: %w", err)
	}
	ob := &onnxBench{file: file, raw: raw, res: res, prog: prog, b: b, inName: in.Name, shape: shape, x: x, origShape: shape, origX: x, threads: threads, reps: reps}
	for _, o := range g.Outputs {
		ob.outNames = append(ob.outNames, o.Name)
	}
	if res.Report.Layout == onnximport.LayoutNHWC {
		n, c, h, w := shape[0], shape[1], shape[2], shape[3]
		ob.origShape = []int{n, h, w, c}
		ob.origX = make([]float32, len(x))
		for i := 0; i < n; i++ {
			for k := 0; k < c; k++ {
				for p := 0; p < h*w; p++ {
					ob.origX[(i*h*w+p)*c+k] = x[(i*c+k)*h*w+p]
				}
			}
		}
	}
	return ob, nil
}

func (ob *onnxBench) close() {
	ob.prog.Close()
	ob.b.Close()
}

// runVireo runs the program once and returns its time in ms and outputs.
func (ob *onnxBench) runVireo() (float64, [][]float32, error) {
	t0 := time.Now()
	outs, err := ob.prog.Run(kernels.FromSlice(ob.x, ob.shape...))
	if err == nil {
		err = ob.b.Sync()
	}
	d := time.Since(t0).Seconds() * 1000
	if err != nil {
		return 0, nil, fmt.Errorf("bench onnx: run: %w", err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = make([]float32, o.Numel())
		if err := ob.b.Download(res[i], o); err != nil {
			return 0, nil, err
		}
	}
	return d, res, nil
}

// benchInput is the input tensor (NCHW): an image resized to HxW, RGB in
// [0,1], repeated over the batch, or uniform random values in [-1,1].
func benchInput(input string, shape []int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	if input == "random" {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range x {
			x[i] = r.Float32()*2 - 1
		}
		return x, nil
	}
	if len(shape) != 4 || (shape[1] != 3 && shape[1] != 1) {
		return nil, usagef("bench onnx: --input %s needs an image input (N,3,H,W) or (N,1,H,W), have %v", input, shape)
	}
	if _, err := os.Stat(input); err != nil {
		return nil, fmt.Errorf("bench onnx: --input: %w", err)
	}
	m := gocv.IMRead(input, gocv.IMReadColor)
	if m.Empty() {
		return nil, fmt.Errorf("bench onnx: --input %s: not a decodable image", input)
	}
	defer m.Close()
	r := gocv.NewMat()
	defer r.Close()
	gocv.Resize(m, &r, image.Pt(shape[3], shape[2]), 0, 0, gocv.InterpolationLinear)
	c, h, w := shape[1], shape[2], shape[3]
	px := r.ToBytes()
	per := c * h * w
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			for k := 0; k < c; k++ {
				v := float32(px[(y*w+xx)*3+2-k]) / 255 // BGR -> RGB
				if c == 1 {
					v = (float32(px[(y*w+xx)*3]) + float32(px[(y*w+xx)*3+1]) + float32(px[(y*w+xx)*3+2])) / (3 * 255)
				}
				x[(k*h+y)*w+xx] = v
			}
		}
	}
	for i := 1; i < shape[0]; i++ {
		copy(x[i*per:(i+1)*per], x[:per])
	}
	return x, nil
}

func parseShape(s string) ([]int, error) {
	parts := strings.Split(strings.ToLower(s), "x")
	out := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q: want dims > 0 separated by x", s)
		}
		out[i] = v
	}
	return out, nil
}

// diffs returns the largest absolute difference and the largest relative
// one (|diff|/|ref| over elements with |ref| >= 1e-6).
func diffs(ours, ref [][]float32) (maxAbs, maxRel float64, err error) {
	if len(ours) != len(ref) {
		return 0, 0, fmt.Errorf("bench onnx: %d outputs, ORT %d", len(ours), len(ref))
	}
	for k := range ref {
		if len(ours[k]) != len(ref[k]) {
			return 0, 0, fmt.Errorf("bench onnx: output %d has %d values, ORT %d", k, len(ours[k]), len(ref[k]))
		}
		for i, r := range ref[k] {
			d := math.Abs(float64(ours[k][i]) - float64(r))
			maxAbs = math.Max(maxAbs, d)
			if a := math.Abs(float64(r)); a >= 1e-6 {
				maxRel = math.Max(maxRel, d/a)
			}
		}
	}
	return maxAbs, maxRel, nil
}
