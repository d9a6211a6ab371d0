package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/onnx"
	"vireo/pkg/onnximport"
)

func init() {
	register(command{"import", "import a third-party ONNX model as a Vireo model (model.onnx + manifest.json)", runImport})
}

// importConfig is what `vireo import` needs.
type importConfig struct {
	file, name, task, labels, layout, mean, std, size, color, version, out, decode string
	points                                                                         int
	threshold                                                                      float64
	push                                                                           bool
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stderr)
	var c importConfig
	fs.StringVar(&c.name, "name", "", "model name (required)")
	fs.StringVar(&c.task, "task", "", "classify, multilabel, segment or regress (required, except with --decode)")
	fs.StringVar(&c.labels, "labels", "", "file with one label per line (classes, or point names for regress); default: 0..K-1 from the output shape")
	fs.StringVar(&c.layout, "input-layout", "auto", "layout of the model's image input: auto, nchw or nhwc (an NHWC model gets an NCHW input)")
	fs.StringVar(&c.mean, "mean", "", "per-channel mean of pixels scaled to [0,1], comma-separated (default 0)")
	fs.StringVar(&c.std, "std", "", "per-channel std, comma-separated (default 1)")
	fs.StringVar(&c.size, "size", "", "HxW input size for models whose height or width is dynamic")
	fs.StringVar(&c.color, "color", "rgb", "channel order the model expects: rgb or bgr")
	fs.StringVar(&c.version, "version", "v1", "version written in the manifest of --out")
	fs.IntVar(&c.points, "points", 0, "regress: number of (x,y) points (default: output size / 2)")
	fs.Float64Var(&c.threshold, "threshold", 0, "multilabel: decision threshold (default 0.2)")
	fs.StringVar(&c.out, "out", "", "directory to write model.onnx and manifest.json to")
	fs.StringVar(&c.decode, "decode", "", "append a model's decoder to the graph: blazeface (MediaPipe BlazeFace front 128: task regress, 8 points = face box corners + 6 keypoints; RGB scaled to [-1,1] unless --mean/--std)")
	fs.BoolVar(&c.push, "push", false, "also push the model as a new version into the NATS model store")
	nf := addNATSFlags(fs)
	// The ONNX file is the one positional argument; flags may come after it.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.file, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.file == "" {
		return usagef("import: missing FILE.onnx (vireo import FILE.onnx --name NAME --task TASK --out DIR)")
	}
	if c.decode == onnximport.DecodeBlazeFace {
		if c.task == "" {
			c.task = string(model.Regress)
		}
		if c.task != string(model.Regress) {
			return usagef("import: --decode blazeface gives a regress model (got --task %s)", c.task)
		}
		if c.mean == "" && c.std == "" { // MediaPipe's input: v/127.5 - 1
			c.mean, c.std = "0.5", "0.5"
		}
	}
	if c.name == "" || c.task == "" {
		return usagef("import: --name and --task are required")
	}
	if c.out == "" && !c.push {
		return usagef("import: give --out DIR, --push, or both")
	}
	onnxBytes, m, rep, err := importModel(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %s: opset %d, %d -> %d nodes (%d folded), input nchw %dx%dx%d (original layout %s, %d transposes removed, dynamic batch %v), task %s\n",
		c.file, rep.Opset, rep.NodesIn, rep.NodesOut, rep.Folded, m.Input.Channels, m.Input.Height, m.Input.Width, rep.Layout, rep.TransposesRemoved, rep.DynamicBatch, m.Task)
	if rep.Decode != "" {
		fmt.Fprintf(stdout, "decoder %s appended: outputs %s\n", rep.Decode, strings.Join(m.Labels, ", "))
	}
	if c.out != "" {
		if err := model.Save(c.out, onnxBytes, m); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", c.out)
	}
	if c.push {
		nc, subj, err := nf.connect("import")
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("import: jetstream: %w", err)
		}
		st, err := modelstore.Open(ctx, js, modelstore.Options{Prefix: subj.Prefix()})
		if err != nil {
			return err
		}
		v, err := st.Push(ctx, c.name, onnxBytes, m)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s %s (not serving yet: promote it with `vireo models` or the HTTP API)\n", c.name, v)
	}
	return nil
}

// importModel imports c.file and builds its manifest.
func importModel(c importConfig) ([]byte, model.Manifest, onnximport.Report, error) {
	var m model.Manifest
	layout := c.layout
	if layout == "auto" {
		layout = onnximport.LayoutAuto
	}
	res, err := onnximport.ImportFile(c.file, onnximport.Options{InputLayout: layout, Decode: c.decode})
	if err != nil {
		return nil, m, onnximport.Report{}, fmt.Errorf("import %s: %w", c.file, err)
	}
	g := res.Graph()
	if len(g.Inputs) != 1 {
		return nil, m, res.Report, fmt.Errorf("import %s: the model has %d inputs (want one image input)", c.file, len(g.Inputs))
	}
	in := g.Inputs[0]
	if len(in.Shape) != 4 {
		return nil, m, res.Report, fmt.Errorf("import %s: input %q has shape %v (want an image: rank 4)", c.file, in.Name, in.Shape)
	}
	ch, h, w := in.Shape[1], in.Shape[2], in.Shape[3]
	if c.size != "" {
		sh, sw, ok := parseSize(c.size)
		if !ok {
			return nil, m, res.Report, usagef("import: --size %q: want HxW", c.size)
		}
		if (h > 0 && h != sh) || (w > 0 && w != sw) {
			return nil, m, res.Report, usagef("import: --size %dx%d but the model's input is fixed at %dx%d", sh, sw, h, w)
		}
		h, w = sh, sw
	}
	if ch <= 0 {
		return nil, m, res.Report, fmt.Errorf("import %s: input %q has a dynamic channel count %v", c.file, in.Name, in.Shape)
	}
	if h <= 0 || w <= 0 {
		return nil, m, res.Report, usagef("import: input %q has dynamic height or width %v: give --size HxW", in.Name, in.Shape)
	}
	mean, err := parseFloats(c.mean, ch, 0)
	if err != nil {
		return nil, m, res.Report, usagef("import: --mean: %v", err)
	}
	std, err := parseFloats(c.std, ch, 1)
	if err != nil {
		return nil, m, res.Report, usagef("import: --std: %v", err)
	}
	var labels []string
	if c.labels != "" {
		b, err := os.ReadFile(c.labels)
		if err != nil {
			return nil, m, res.Report, fmt.Errorf("import: labels: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	task := model.Task(c.task)
	var k int // classes or output values, when static
	if out := g.Outputs[0]; len(out.Shape) >= 2 {
		k = out.Shape[1]
	}
	points := c.points
	if task == model.Regress && points == 0 && k > 0 {
		points = k / 2
	}
	if labels == nil && c.decode == onnximport.DecodeBlazeFace {
		labels = append([]string(nil), onnximport.BlazeFacePoints...)
	}
	if labels == nil && task != model.Regress && k > 0 {
		for i := 0; i < k; i++ {
			labels = append(labels, strconv.Itoa(i))
		}
	}
	producer := res.Model.ProducerName
	if producer == "" {
		producer = "unknown"
	}
	m = model.Manifest{
		Name:          c.name,
		Version:       c.version,
		Task:          task,
		Labels:        labels,
		Threshold:     c.threshold,
		Input:         model.Input{Width: w, Height: h, Channels: ch, Layout: "nchw", Color: c.color},
		Normalization: model.Normalization{Mean: mean, Std: std},
		VoidClass:     model.NoVoid,
		Points:        points,
		CreatedAt:     time.Now().UTC(),
		Arch:          "imported:" + producer,
		Notes:         fmt.Sprintf("imported from %s (opset %d, original input layout %s)%s", fileBase(c.file), res.Report.Opset, res.Report.Layout, decodeNote(res.Report.Decode)),
	}
	if task != model.Regress {
		m.Points = 0
	}
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		return nil, m, res.Report, fmt.Errorf("import: %w", err)
	}
	if err := model.CheckGraph(m, g); err != nil {
		return nil, m, res.Report, fmt.Errorf("import: the model's outputs do not fit task %s: %w", task, err)
	}
	b, err := onnx.Encode(res.Model)
	if err != nil {
		return nil, m, res.Report, fmt.Errorf("import: encode: %w", err)
	}
	return b, m, res.Report, nil
}

func fileBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func parseSize(s string) (h, w int, ok bool) {
	a, b, found := strings.Cut(strings.ToLower(s), "x")
	if !found {
		return 0, 0, false
	}
	h, err1 := strconv.Atoi(a)
	w, err2 := strconv.Atoi(b)
	return h, w, err1 == nil && err2 == nil && h > 0 && w > 0
}

// parseFloats reads n comma-separated floats (one value is repeated n
// times; empty means def for each).
func parseFloats(s string, n int, def float64) ([]float64, error) {
	out := make([]float64, n)
	if s == "" {
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != n && len(parts) != 1 {
		return nil, fmt.Errorf("%d values for %d channels", len(parts), n)
	}
	for i := range out {
		p := parts[0]
		if len(parts) == n {
			p = parts[i]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", p, err)
		}
		out[i] = v
	}
	return out, nil
}

func decodeNote(d string) string {
	if d == "" {
		return ""
	}
	return ", decoder " + d + " appended"
}
