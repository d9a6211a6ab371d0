package predict

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"sync"
	"time"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/model"
	"vireo/pkg/onnx"
	"vireo/pkg/schema"
)

// Errors. Each is wrapped with details (%w) including got/want.
var (
	// ErrModel: the ONNX bytes or manifest cannot be served (decode error,
	// disagreement, an output this package cannot post-process).
	ErrModel = errors.New("predict: unusable model")
	// ErrInput: a frame does not fit the model (size, channels, pixels).
	ErrInput = errors.New("predict: invalid frame")
	// ErrOutput: the network produced a value no result can carry (NaN).
	ErrOutput = errors.New("predict: invalid model output")
	// ErrClosed: Run after Close.
	ErrClosed = errors.New("predict: predictor closed")
)

// DefaultMaxBatch is Options.MaxBatch when zero.
const DefaultMaxBatch = 16

// MaxSegClasses is the most classes a segmentation model may have: the mask
// is an 8-bit PNG.
const MaxSegClasses = 256

// Options configure Load.
type Options struct {
	// MaxBatch is the largest batch one program runs (0: DefaultMaxBatch).
	MaxBatch int
	// NoWarm skips compiling and running buckets 1 and MaxBatch at Load.
	NoWarm bool
	// Pad runs every batch padded up to its bucket, as a device whose
	// time hardly depends on the batch size (a GPU) prefers. By default a
	// batch that would waste more than 1/8 of its bucket runs as the
	// largest bucket that fits plus the rest (5 frames as 4+1, not 8): on
	// a CPU a frame costs about the same in any batch, so padding is
	// wasted work.
	Pad bool
}

func (o *Options) setDefaults() {
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
}

// Validate reports unusable options (after defaults).
func (o Options) Validate() error {
	if o.MaxBatch < 1 || o.MaxBatch > schema.MaxFramesPerBatch {
		return fmt.Errorf("%w: MaxBatch (got=%d, want 1..%d)", ErrModel, o.MaxBatch, schema.MaxFramesPerBatch)
	}
	return nil
}

// bucket is one compiled batch size.
type bucket struct {
	n    int
	prog *graph.Program
	in   *kernels.Tensor // (n,C,H,W) normalised input
}

// Predictor runs one model version. Use Load.
type Predictor struct {
	mu      sync.Mutex
	b       kernels.Backend
	g       *graph.Graph
	m       model.Manifest
	task    schema.Task
	inName  string
	sizes   []int // bucket sizes, ascending
	pad     bool  // Options.Pad
	buckets map[int]*bucket
	norm    kernels.NormalizeParams
	// probs: the graph already ends in Softmax (classify) or Sigmoid
	// (multilabel).
	probs    bool
	outShape []int // output shape at batch 1
	pix      []byte
	out      []float32
	// post: the reused buffers of each goroutine that post-processes a
	// batch's segmentation outputs (postWorkers of them).
	post   []postBuffers
	closed bool
	now    func() time.Time
}

// Task maps a manifest task to the result contract's task.
func Task(t model.Task) (schema.Task, error) {
	switch t {
	case model.Classify:
		return schema.TaskClassification, nil
	case model.MultiLabel:
		return schema.TaskMultiLabel, nil
	case model.Segment:
		return schema.TaskSegmentation, nil
	case model.Regress:
		return schema.TaskRegression, nil
	}
	return "", fmt.Errorf("%w: task (got=%q, want classify, multilabel, segment or regress)", ErrModel, t)
}

// Load decodes onnxBytes, checks them against m, compiles the inference
// program for batch 1 (and warms buckets 1 and MaxBatch unless
// opts.NoWarm). m must be complete (Name and Version set, as the model
// store returns it): every Result carries them.
func Load(b kernels.Backend, onnxBytes []byte, m model.Manifest, opts Options) (*Predictor, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: nil backend", ErrModel)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	if err := schema.ValidateModel(m.Name); err != nil {
		return nil, fmt.Errorf("%w: manifest name: %w", ErrModel, err)
	}
	task, err := Task(m.Task)
	if err != nil {
		return nil, err
	}
	if m.ModelDigest != "" {
		if got := model.Digest(onnxBytes); got != m.ModelDigest {
			return nil, fmt.Errorf("%w: %w (got=%s, want=%s)", ErrModel, model.ErrDigest, got, m.ModelDigest)
		}
	}
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	g := om.Graph
	if err := model.CheckGraph(m, g); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	var inputs []string
	for _, in := range g.Inputs {
		if _, isInit := g.Initializers[in.Name]; !isInit {
			inputs = append(inputs, in.Name)
		}
	}
	if len(inputs) != 1 || len(g.Outputs) < 1 {
		return nil, fmt.Errorf("%w: graph inputs/outputs (got=%d/%d, want 1 image input and an output)", ErrModel, len(inputs), len(g.Outputs))
	}
	in := m.Input
	p := &Predictor{
		b: b, g: g, m: m, task: task, inName: inputs[0], pad: opts.Pad,
		buckets: map[int]*bucket{},
		norm: kernels.NormalizeParams{
			H: in.Height, W: in.Width, C: in.Channels,
			Mean:   f32s(m.Normalization.Mean),
			Std:    f32s(m.Normalization.Std),
			SwapRB: in.Channels == 3 && in.Color == "rgb",
		},
		now: time.Now,
	}
	for n := 1; n < opts.MaxBatch; n *= 2 {
		p.sizes = append(p.sizes, n)
	}
	p.sizes = append(p.sizes, opts.MaxBatch)
	p.probs = endsIn(g, g.Outputs[0].Name, map[schema.Task]string{
		schema.TaskClassification: "Softmax", schema.TaskMultiLabel: "Sigmoid",
	}[task])

	if _, err := p.bucket(1); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.checkOutput(); err != nil {
		p.Close()
		return nil, err
	}
	if !opts.NoWarm {
		if err := p.Warm(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// endsIn reports whether output is produced by a node of op type op.
func endsIn(g *graph.Graph, output, op string) bool {
	if op == "" {
		return false
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == output {
				return n.Op == op
			}
		}
	}
	return false
}

// checkOutput checks the output shape at batch 1 against the task.
func (p *Predictor) checkOutput() error {
	s := p.outShape
	k := len(p.m.Labels)
	switch p.task {
	case schema.TaskClassification, schema.TaskMultiLabel:
		if len(s) != 2 || s[1] != k {
			return fmt.Errorf("%w: output shape (got=%v, want=(1,%d) for %s)", ErrModel, s, k, p.m.Task)
		}
	case schema.TaskRegression:
		if len(s) != 2 || s[1] != 2*p.m.Points {
			return fmt.Errorf("%w: output shape (got=%v, want=(1,%d) for %d points)", ErrModel, s, 2*p.m.Points, p.m.Points)
		}
	case schema.TaskSegmentation:
		if len(s) != 4 || s[1] != k {
			return fmt.Errorf("%w: output shape (got=%v, want=(1,%d,H,W))", ErrModel, s, k)
		}
		if k > MaxSegClasses {
			return fmt.Errorf("%w: segmentation classes (got=%d, want<=%d for an 8-bit mask)", ErrModel, k, MaxSegClasses)
		}
		if s[2] > schema.MaxMaskDim || s[3] > schema.MaxMaskDim {
			return fmt.Errorf("%w: mask size (got=%dx%d, want<=%d each)", ErrModel, s[3], s[2], schema.MaxMaskDim)
		}
	}
	return nil
}

// bucket returns the program for batch size n (a bucket size), compiling
// it on first use.
func (p *Predictor) bucket(n int) (*bucket, error) {
	if bk := p.buckets[n]; bk != nil {
		return bk, nil
	}
	in := p.m.Input
	shape := []int{n, in.Channels, in.Height, in.Width}
	prog, err := graph.Compile(p.g, p.b, graph.Options{InputShapes: map[string][]int{p.inName: shape}})
	if err != nil {
		return nil, fmt.Errorf("%w: compile for batch %d: %w", ErrModel, n, err)
	}
	t, err := p.b.Alloc(shape)
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("predict: input for batch %d: %w", n, err)
	}
	if p.outShape == nil {
		shapes, err := graph.InferShapes(p.g, map[string][]int{p.inName: {1, in.Channels, in.Height, in.Width}})
		if err != nil {
			prog.Close()
			p.b.Free(t)
			return nil, fmt.Errorf("%w: %w", ErrModel, err)
		}
		p.outShape = shapes[p.g.Outputs[0].Name]
	}
	bk := &bucket{n: n, prog: prog, in: t}
	p.buckets[n] = bk
	return bk, nil
}

// Warm compiles and runs buckets 1 and MaxBatch once on zero frames.
func (p *Predictor) Warm() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range []int{1, p.sizes[len(p.sizes)-1]} {
		bk, err := p.bucket(n)
		if err != nil {
			return err
		}
		if _, err := p.forward(bk, n, make([]byte, n*p.frameBytes())); err != nil {
			return fmt.Errorf("predict: warm batch %d: %w", n, err)
		}
	}
	return nil
}

// Manifest returns the manifest the Predictor serves.
func (p *Predictor) Manifest() model.Manifest { return p.m }

// Version is the served version (Manifest().Version).
func (p *Predictor) Version() string { return p.m.Version }

// MaxBatch is the largest batch one program runs.
func (p *Predictor) MaxBatch() int { return p.sizes[len(p.sizes)-1] }

func (p *Predictor) frameBytes() int {
	return p.m.Input.Width * p.m.Input.Height * p.m.Input.Channels
}

// CheckFrame reports whether f fits the model: its input size and
// channels, the pixel count and the original size (for regression).
func (p *Predictor) CheckFrame(f *schema.Frame) error {
	in := p.m.Input
	if f.Width != in.Width || f.Height != in.Height || f.Channels != in.Channels {
		return fmt.Errorf("%w: source %q seq %d: size (got=%dx%dx%d, want=%dx%dx%d, the model %s %s input)",
			ErrInput, f.Source, f.Seq, f.Width, f.Height, f.Channels, in.Width, in.Height, in.Channels, p.m.Name, p.m.Version)
	}
	if len(f.Pixels) != p.frameBytes() {
		return fmt.Errorf("%w: source %q seq %d: pixels (got=%d bytes, want=%d)", ErrInput, f.Source, f.Seq, len(f.Pixels), p.frameBytes())
	}
	if f.OrigWidth < 1 || f.OrigHeight < 1 {
		return fmt.Errorf("%w: source %q seq %d: original size (got=%dx%d, want >= 1x1)", ErrInput, f.Source, f.Seq, f.OrigWidth, f.OrigHeight)
	}
	if err := schema.ValidateSource(f.Source); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return nil
}

// Run predicts every frame and returns one Result per frame, in order.
// Frames must fit the model (CheckFrame); any that does not fails the call
// before anything runs. More than MaxBatch frames run as several batches.
func (p *Predictor) Run(ctx context.Context, frames []schema.Frame) ([]schema.Result, error) {
	for i := range frames {
		if err := p.CheckFrame(&frames[i]); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make([]schema.Result, 0, len(frames))
	fb := p.frameBytes()
	for start := 0; start < len(frames); {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		n := p.runSize(len(frames) - start)
		chunk := frames[start:min(start+n, len(frames))]
		start += len(chunk)
		bk, err := p.bucket(n)
		if err != nil {
			return nil, err
		}
		need := n * fb
		if cap(p.pix) < need {
			p.pix = make([]byte, need)
		}
		pix := p.pix[:need]
		for i := range chunk {
			copy(pix[i*fb:], chunk[i].Pixels)
		}
		clear(pix[len(chunk)*fb:])
		y, err := p.forward(bk, n, pix)
		if err != nil {
			return nil, err
		}
		rs, err := p.results(chunk, y, p.now())
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// results post-processes the outputs y of chunk: segmentation over
// postWorkers goroutines (frame i on worker i%postWorkers), the cheap
// tasks inline.
func (p *Predictor) results(chunk []schema.Frame, y []float32, now time.Time) ([]schema.Result, error) {
	out := make([]schema.Result, len(chunk))
	workers := 1
	if p.task == schema.TaskSegmentation {
		workers = min(postWorkers, len(chunk))
	}
	for len(p.post) < workers {
		p.post = append(p.post, postBuffers{})
	}
	// Each worker stops at its first failing frame; the error of the
	// earliest frame is returned, as a serial loop would.
	errs := make([]error, len(chunk))
	run := func(w int) {
		for i := w; i < len(chunk); i += workers {
			r, err := p.result(&chunk[i], y, i, now, &p.post[w])
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = r
		}
	}
	if workers == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for w := 1; w < workers; w++ {
			wg.Go(func() { run(w) })
		}
		run(0)
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runSize is the bucket the next of rest frames run in: MaxBatch for
// MaxBatch or more; else the smallest bucket that holds them when padding
// (Options.Pad) or when it wastes at most 1/8 of it; else the largest
// bucket that they fill (the rest run next).
func (p *Predictor) runSize(rest int) int {
	b := p.bucketSize(rest)
	if b <= rest || p.pad || rest*8 >= b*7 {
		return b
	}
	fill := p.sizes[0]
	for _, s := range p.sizes {
		if s <= rest {
			fill = s
		}
	}
	return fill
}

func (p *Predictor) bucketSize(n int) int {
	for _, s := range p.sizes {
		if s >= n {
			return s
		}
	}
	return p.sizes[len(p.sizes)-1]
}

// forward normalises pix (n frames) into the bucket's input, runs the
// program and downloads the output to p.out.
func (p *Predictor) forward(bk *bucket, n int, pix []byte) ([]float32, error) {
	np := p.norm
	np.N = n
	if err := p.b.NormalizeU8(bk.in, pix, np); err != nil {
		return nil, fmt.Errorf("predict: normalize: %w", err)
	}
	outs, err := bk.prog.Run(bk.in)
	if err != nil {
		return nil, fmt.Errorf("predict: run %s %s batch %d: %w", p.m.Name, p.m.Version, n, err)
	}
	o := outs[0]
	if cap(p.out) < o.Numel() {
		p.out = make([]float32, o.Numel())
	}
	y := p.out[:o.Numel()]
	if err := p.b.Download(y, o); err != nil {
		return nil, fmt.Errorf("predict: download output: %w", err)
	}
	return y, nil
}

// result post-processes row i of the output y.
func (p *Predictor) result(f *schema.Frame, y []float32, i int, now time.Time, pb *postBuffers) (schema.Result, error) {
	lat := float64(now.Sub(f.Captured)) / float64(time.Millisecond)
	if lat < 0 || math.IsNaN(lat) {
		lat = 0
	}
	r := schema.Result{
		SchemaVersion: schema.Version,
		Source:        f.Source,
		Seq:           f.Seq,
		TS:            f.Captured,
		Model:         p.m.Name,
		ModelVersion:  p.m.Version,
		Task:          p.task,
		LatencyMS:     lat,
	}
	per := 1
	for _, d := range p.outShape[1:] {
		per *= d
	}
	row := y[i*per : (i+1)*per]
	if j := firstNonFinite(row); j >= 0 {
		return schema.Result{}, fmt.Errorf("%w: %s %s: output %d of source %q seq %d is %v", ErrOutput, p.m.Name, p.m.Version, j, f.Source, f.Seq, row[j])
	}
	var err error
	switch p.task {
	case schema.TaskClassification:
		probs := Softmax(row)
		if p.probs {
			probs = widen(row)
		}
		r.Scores = scores(p.m.Labels, probs)
		r.Labels = []string{p.m.Labels[argmax(probs)]}
	case schema.TaskMultiLabel:
		probs := Sigmoid(row)
		if p.probs {
			probs = widen(row)
		}
		r.Scores = scores(p.m.Labels, probs)
		for j, pr := range probs {
			if pr >= p.m.Threshold {
				r.Labels = append(r.Labels, p.m.Labels[j])
			}
		}
	case schema.TaskSegmentation:
		k, h, w := p.outShape[1], p.outShape[2], p.outShape[3]
		if cap(pb.mask) < h*w {
			pb.mask = make([]uint8, h*w)
		}
		mask := pb.mask[:h*w]
		r.ClassFraction = argmaxMaskInto(mask, row, k, h, w)
		r.Width, r.Height = w, h
		r.Classes = append([]string(nil), p.m.Labels...)
		if r.MaskPNG, err = maskPNG(mask, w, h, &pb.png); err != nil {
			return schema.Result{}, err
		}
	case schema.TaskRegression:
		r.Points = Points(row, f.OrigWidth, f.OrigHeight)
	}
	if err := r.Validate(); err != nil {
		return schema.Result{}, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	return r, nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in v, or -1.
// It tests the exponent bits (all ones only for NaN and Inf): a
// segmentation output has tens of thousands of values per frame, and the
// float64 conversions of math.IsNaN/IsInf cost more than the argmax.
func firstNonFinite(v []float32) int {
	for j, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			return j
		}
	}
	return -1
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		// Clamp rounding just outside [0,1] (a Softmax or Sigmoid
		// computed in float32).
		out[i] = math.Min(1, math.Max(0, float64(x)))
	}
	return out
}

func scores(labels []string, probs []float64) map[string]float64 {
	m := make(map[string]float64, len(labels))
	for j, l := range labels {
		m[l] = probs[j]
	}
	return m
}

func argmax(v []float64) int {
	best := 0
	for j := range v {
		if v[j] > v[best] {
			best = j
		}
	}
	return best
}

// Softmax returns the softmax of logits, computed in float64 with the
// maximum subtracted.
func Softmax(logits []float32) []float64 {
	out := make([]float64, len(logits))
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for i, v := range logits {
		out[i] = math.Exp(float64(v) - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// Sigmoid returns 1/(1+exp(-x)) of each logit.
func Sigmoid(logits []float32) []float64 {
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = 1 / (1 + math.Exp(-float64(v)))
	}
	return out
}

// ArgmaxMask takes (K,H,W) scores of one image and returns the class id of
// each pixel (the first maximum, row-major H*W) and each class's share of
// the pixels.
func ArgmaxMask(scores []float32, k, h, w int) ([]uint8, []float64) {
	mask := make([]uint8, h*w)
	return mask, argmaxMaskInto(mask, scores, k, h, w)
}

// argmaxMaskInto is ArgmaxMask writing the class ids into mask (h*w).
func argmaxMaskInto(mask []uint8, scores []float32, k, h, w int) []float64 {
	hw := h * w
	counts := make([]int, k)
	for px := 0; px < hw; px++ {
		best, bv := 0, scores[px]
		for c := 1; c < k; c++ {
			if v := scores[c*hw+px]; v > bv {
				best, bv = c, v
			}
		}
		mask[px] = uint8(best)
		counts[best]++
	}
	frac := make([]float64, k)
	for c, n := range counts {
		frac[c] = float64(n) / float64(hw)
	}
	return frac
}

// MaskPNG encodes a class-id mask (h*w, row-major) as an 8-bit grey PNG.
func MaskPNG(mask []uint8, w, h int) ([]byte, error) {
	return maskPNG(mask, w, h, nil)
}

// maskPNG is MaskPNG reusing the encoder's buffers (its zlib writer is
// ~0.7 MB to set up: allocating one per frame cost as much CPU as the
// compression) when pool is not nil.
func maskPNG(mask []uint8, w, h int, pool png.EncoderBufferPool) ([]byte, error) {
	if len(mask) != w*h {
		return nil, fmt.Errorf("%w: mask (got=%d pixels, want=%dx%d)", ErrOutput, len(mask), w, h)
	}
	img := &image.Gray{Pix: mask, Stride: w, Rect: image.Rect(0, 0, w, h)}
	var buf bytes.Buffer
	buf.Grow(w*h/8 + 128)
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: pool}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("predict: encode mask: %w", err)
	}
	return buf.Bytes(), nil
}

// postBuffers are one post-processing goroutine's segmentation buffers.
type postBuffers struct {
	mask []uint8    // one frame's class ids
	png  pngBuffers // the PNG encoder's buffers
}

// postWorkers is how many goroutines post-process a batch's segmentation
// outputs (argmax, PNG): ~0.3 ms per 160x160 frame, 5 ms per batch of 16
// that kept one core busy while the engine waited for the next batch.
const postWorkers = 2

// pngBuffers keeps one PNG encoder buffer for one post-processing
// goroutine; it implements png.EncoderBufferPool.
type pngBuffers struct{ b *png.EncoderBuffer }

func (p *pngBuffers) Get() *png.EncoderBuffer {
	b := p.b
	p.b = nil
	return b
}

func (p *pngBuffers) Put(b *png.EncoderBuffer) { p.b = b }

// Points turns x0,y0,x1,y1,... in [-1,1] into pixels of a frame of size
// ow x oh: x = (v+1)/2*ow, y = (v+1)/2*oh.
func Points(v []float32, ow, oh int) []schema.Point {
	pts := make([]schema.Point, len(v)/2)
	for i := range pts {
		pts[i] = schema.Point{
			X: (float64(v[2*i]) + 1) / 2 * float64(ow),
			Y: (float64(v[2*i+1]) + 1) / 2 * float64(oh),
		}
	}
	return pts
}

// Close frees the programs and buffers. Run after Close returns ErrClosed.
func (p *Predictor) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, bk := range p.buckets {
		bk.prog.Close()
		p.b.Free(bk.in)
	}
	p.buckets = nil
}
