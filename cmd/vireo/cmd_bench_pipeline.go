package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gocv.io/x/gocv"

	"vireo/pkg/arch"
	"vireo/pkg/backend"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/bench"
	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/pkg/onnx"
	"vireo/pkg/ops"
	"vireo/pkg/predict"
	"vireo/pkg/schema"
	"vireo/services/frames"
	"vireo/services/infer"
)

func init() {
	benchSubs["pipeline"] = benchPipeline
}

// pipelineBench are `vireo bench pipeline`'s settings.
type pipelineBench struct {
	modelDir  string
	archName  string
	task      string
	size      int
	video     string
	sources   int
	everyN    int
	everyN1   int
	maxBatch  int
	inFlight  int
	engineFor time.Duration
	latFor    time.Duration
	rounds    int
	noSync    bool
	noKeep    bool
	quick     bool
	quiet     bool
	phases    map[string]bool
}

// Phases of bench pipeline (--phases); the engine is always measured.
var pipelinePhases = []string{"decode", "pipeline", "latency", "batch1"}

// pipelineReport is the one JSON object bench pipeline prints.
type pipelineReport struct {
	Model          string  `json:"model"`
	Arch           string  `json:"arch,omitempty"`
	Task           string  `json:"task"`
	Input          string  `json:"input"`
	Backend        string  `json:"backend"`
	Threads        int     `json:"threads"`
	Sources        int     `json:"sources"`
	MaxBatch       int     `json:"max_batch"`
	SyncAlways     bool    `json:"sync_always"`
	Quick          bool    `json:"quick"`
	PipelineFrames int     `json:"pipeline_frames"`
	PipelineFPS    float64 `json:"pipeline_fps"`
	MeanBatch      float64 `json:"pipeline_mean_batch"`
	// Batches of the saturated run by the batcher's flush trigger.
	Triggers      map[string]float64 `json:"pipeline_batch_triggers"`
	PipelineCores float64            `json:"pipeline_cpu_cores"`
	NoKeep        bool               `json:"no_keep"`
	// Frames per second of process CPU time: on a shared machine the
	// wall-clock rates depend on the share of the cores this process got.
	PipelinePerCPU float64 `json:"pipeline_frames_per_cpu_s"`
	EnginePerCPU   float64 `json:"engine_frames_per_cpu_s"`
	// PipelineCPURatio is pipeline_frames_per_cpu_s / engine_frames_per_cpu_s:
	// the pipeline's rate against the engine's on the same CPU budget.
	PipelineCPURatio float64 `json:"pipeline_vs_engine_per_cpu"`
	EngineFPS        float64 `json:"engine_fps"`
	PipelineRatio    float64 `json:"pipeline_vs_engine"`
	PipelineFPS1     float64 `json:"pipeline_fps_batch1"`
	EngineFPS1       float64 `json:"engine_fps_batch1"`
	BatchGain        float64 `json:"batch_gain"`
	EngineGain       float64 `json:"engine_batch_gain"`
	RateAt50         float64 `json:"rate_at_50"`
	RateAt90         float64 `json:"rate_at_90"`
	P50At50          float64 `json:"p50_ms_at_50"`
	P99At50          float64 `json:"p99_ms_at_50"`
	P50At90          float64 `json:"p50_ms_at_90"`
	P99At90          float64 `json:"p99_ms_at_90"`
	P50              float64 `json:"p50_ms"`
	P99              float64 `json:"p99_ms"`
	DecodeFPS        float64 `json:"decode_fps"`
	GocvFPS          float64 `json:"gocv_fps"`
	DecodeRatio      float64 `json:"decode_vs_gocv"`
	Seconds          float64 `json:"seconds"`
}

// benchPipelineModel is the default model: the bundled vtest-people
// (a resnet18-unet@0.1875 person segmenter at 160x160, trained on the
// very video the sources read). It is what `make demo` serves on
// vtest.avi, so the pipeline is measured on the work it exists for; a
// tiny untrained classifier (--model "") runs in ~1 ms per frame, less
// than decoding the frame, and would measure the video decoder instead.
const benchPipelineModel = "models/vtest-people"

const pipelineHelp = `vireo bench pipeline: the whole pipeline in one process, side by side with its parts.
  pipeline_fps      results/s with --sources concurrent file sources (frames service -> Arrow
                    batches on embedded JetStream -> infer's batcher -> model -> JSON results),
                    from registration to the last result
  engine_fps        the same model through pkg/predict alone on full --max-batch batches of
                    decoded frames (mean of a run before and one after the pipeline run), in
                    the same process with the same --threads; pipeline_vs_engine is the ratio.
                    The engine alone has every core; the pipeline's engine shares them with
                    decoding --sources videos, NATS and encoding, so on a shared or small
                    machine also read
  pipeline_vs_engine_per_cpu  pipeline_frames_per_cpu_s / engine_frames_per_cpu_s: frames per
                    second of process CPU time (user+system), i.e. both on the same CPU budget
                    (the pipeline's includes the decoding and NATS it needs)
  pipeline_mean_batch, pipeline_batch_triggers  infer's batches in the saturated run
  batch_gain        pipeline_fps / pipeline_fps_batch1 (infer --max-batch 1), both saturated;
                    engine_batch_gain is the same for the engine alone (the ceiling on a CPU)
  p50_ms_at_50 ...  capture-to-result latency of single-frame batches published at 50% and
                    90% of pipeline_fps (p50_ms, p99_ms: the 50% values)
  decode_fps        frames service decode+resize+publish of the video (every frame), against
  gocv_fps          a bare gocv read+resize loop on the same file (medians of --rounds)
The embedded server runs with sync_interval always as vireo up does (--no-sync: off).`

func benchPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench pipeline", stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, pipelineHelp); fs.PrintDefaults() }
	bc := backendFlags(fs)
	var o pipelineBench
	fs.StringVar(&o.modelDir, "model", benchPipelineModel, "model folder (model.onnx + manifest.json); empty: an untrained --arch model")
	fs.StringVar(&o.archName, "arch", "resnet18@0.25", "architecture of the untrained model")
	fs.StringVar(&o.task, "task", arch.TaskClassify, "task of the untrained model")
	fs.IntVar(&o.size, "size", 64, "input size of the untrained model")
	fs.StringVar(&o.video, "video", filepath.Join("/usr/share/doc/opencv-doc/examples/data", "vtest.avi"), "video file each source reads")
	fs.IntVar(&o.sources, "sources", 4, "concurrent file sources")
	fs.IntVar(&o.everyN, "every-n", 1, "sampling of each source in the batch-16 run")
	fs.IntVar(&o.everyN1, "every-n-batch1", 2, "sampling of each source in the batch-1 run")
	fs.IntVar(&o.maxBatch, "max-batch", 16, "infer's largest batch")
	fs.IntVar(&o.inFlight, "max-in-flight", 0, "infer's batches publishing while the next runs (0: its default)")
	fs.DurationVar(&o.engineFor, "engine-time", 3*time.Second, "time of each engine measurement")
	fs.DurationVar(&o.latFor, "latency-time", 4*time.Second, "time of each paced latency run")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of the decode and gocv measurements")
	fs.BoolVar(&o.noKeep, "no-keep", false, "infer does not keep input frames for corrections (vireo up keeps them)")
	fs.BoolVar(&o.noSync, "no-sync", false, "run the embedded JetStream without sync_interval always")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&o.quick, "quick", false, "a tiny model and few frames, to check the harness (numbers mean little)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr (by default one per measurement as it ends)")
	phases := fs.String("phases", strings.Join(pipelinePhases, ","), "phases to run, of "+strings.Join(pipelinePhases, ",")+" (latency needs pipeline; fields of skipped phases stay 0)")
	fs.Bool("json", false, "print one JSON object (the only format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.quick {
		o.modelDir, o.archName, o.size, o.everyN, o.everyN1 = "", "resnet18@0.125", 32, 40, 80
		o.engineFor, o.latFor, o.rounds = 300*time.Millisecond, 500*time.Millisecond, 1
	}
	if o.sources < 1 || o.everyN < 1 || o.everyN1 < 1 || o.maxBatch < 2 || o.rounds < 1 || o.engineFor <= 0 || o.latFor <= 0 {
		return usagef("bench pipeline: --sources %d, --every-n %d, --every-n-batch1 %d, --rounds %d (want >= 1), --max-batch %d (want >= 2), --engine-time %v, --latency-time %v (want > 0)",
			o.sources, o.everyN, o.everyN1, o.rounds, o.maxBatch, o.engineFor, o.latFor)
	}
	o.phases = map[string]bool{}
	for _, ph := range strings.Split(*phases, ",") {
		if !slices.Contains(pipelinePhases, ph) {
			return usagef("bench pipeline: --phases: unknown phase %q (want some of %s)", ph, strings.Join(pipelinePhases, ","))
		}
		o.phases[ph] = true
	}
	if o.phases["latency"] && !o.phases["pipeline"] {
		return usagef("bench pipeline: --phases: latency runs at fractions of the pipeline's rate: add pipeline")
	}
	if st, err := os.Stat(o.video); err != nil || !st.Mode().IsRegular() {
		return usagef("bench pipeline: --video %q: not a readable file (%v)", o.video, err)
	}
	be, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer be.Close()
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	rep, err := runPipelineBench(ctx, o, be, stderr)
	if err != nil {
		return err
	}
	rep.Backend, rep.Threads = bc.Name, bc.Threads
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// benchModelBytes returns the ONNX bytes and manifest of --model, or of an
// untrained --arch model.
func benchModelBytes(o pipelineBench) ([]byte, model.Manifest, error) {
	if o.modelDir != "" {
		m, b, err := model.Load(o.modelDir)
		return b, m, err
	}
	classes := 3
	cfg := arch.Config{Classes: classes, Size: o.size, Seed: 1}
	labels := []string{"a", "b", "c"}
	if o.task == arch.TaskRegress {
		cfg.Classes, cfg.Points, labels = 0, 1, nil
	}
	am, err := arch.Build(o.archName, o.task, cfg)
	if err != nil {
		return nil, model.Manifest{}, err
	}
	b, err := onnx.Encode(onnx.NewModel(am.Graph))
	if err != nil {
		return nil, model.Manifest{}, err
	}
	m := model.Manifest{
		Name: "bench", Version: "v0001", Task: model.Task(o.task), Labels: labels, Arch: am.Arch,
		Input:         model.Input{Width: o.size, Height: o.size, Channels: 3},
		Normalization: model.Normalization{Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}},
		VoidClass:     model.NoVoid,
		Points:        cfg.Points,
		CreatedAt:     time.Now().UTC(),
	}
	if o.task == arch.TaskSegment {
		m.VoidClass = classes - 1
	}
	m.SetDefaults()
	m.ModelDigest = model.Digest(b)
	return b, m, m.Validate()
}

// Model names of the phases: each phase has its own frames subject and
// consumer, so nothing one phase leaves behind reaches the next.
const (
	benchModelBatch = "bench-batch"
	benchModelOne   = "bench-one"
	benchModelDec   = "bench-decode"
)

func runPipelineBench(ctx context.Context, o pipelineBench, be kernels.Backend, stderr io.Writer) (*pipelineReport, error) {
	start := time.Now()
	onnxBytes, man, err := benchModelBytes(o)
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: model: %w", err)
	}
	w, h := man.Input.Width, man.Input.Height
	rep := &pipelineReport{Model: man.Name, Arch: man.Arch, Task: string(man.Task), Input: fmt.Sprintf("%dx%dx%d", w, h, man.Input.Channels),
		Sources: o.sources, MaxBatch: o.maxBatch, SyncAlways: !o.noSync, Quick: o.quick, NoKeep: o.noKeep}
	if man.Input.Channels != 3 {
		return nil, fmt.Errorf("bench pipeline: model input has %d channels, want 3 (video frames)", man.Input.Channels)
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	// say prints one progress line per finished measurement (the run
	// takes a minute or more; the JSON comes at the end).
	say := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, "bench pipeline: "+format+"\n", a...)
		}
	}
	say("%s (%s), %d sources of %s", man.Name, rep.Input, o.sources, filepath.Base(o.video))

	// Bare gocv first: it also decodes the frames the engine and the
	// latency runs use.
	gocvRates := make([]float64, 0, o.rounds)
	rate, pix, err := gocvLoop(o.video, w, h, o.maxBatch)
	if err != nil {
		return nil, err
	}
	gocvRates = append(gocvRates, rate)

	dir, err := os.MkdirTemp("", "vireo-bench-pipeline-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Config{StoreDir: dir, Port: -1, NoSync: o.noSync}, log)
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("vireo bench pipeline"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	subj, err := schema.NewSubjects(schema.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	if err := schema.Provision(ctx, js, subj, 1, 0); err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	store, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{benchModelBatch, benchModelOne, benchModelDec} {
		v, err := store.Push(ctx, name, onnxBytes, man)
		if err != nil {
			return nil, fmt.Errorf("bench pipeline: push: %w", err)
		}
		if _, err := store.Promote(ctx, name, v, "bench"); err != nil {
			return nil, fmt.Errorf("bench pipeline: promote: %w", err)
		}
	}
	kv, err := js.KeyValue(ctx, subj.SourcesKV(1).Bucket)
	if err != nil {
		return nil, err
	}
	col := &benchCollector{last: map[string]time.Time{}, count: map[string]int{}, eos: map[string]benchEOS{}, lat: map[string][]float64{}}
	for _, s := range []string{subj.Prefix() + ".results.*.*", subj.EventsAll()} {
		sub, err := nc.Subscribe(s, col.handle)
		if err != nil {
			return nil, err
		}
		defer sub.Unsubscribe()
	}
	ph := &benchPhases{o: o, js: js, kv: kv, subj: subj, col: col, log: log, say: say}

	// The frames service runs through every phase.
	svcCtx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	var wg sync.WaitGroup
	var framesErr error
	wg.Go(func() {
		framesErr = frames.Run(svcCtx, frames.Config{NoProvision: true}, ops.Deps{NC: nc, Log: log})
	})
	defer wg.Wait()
	defer stopSvc()

	// Decode: frames service vs bare gocv, interleaved.
	decRates := make([]float64, 0, o.rounds)
	for i := range o.rounds {
		if !o.phases["decode"] {
			break
		}
		if i > 0 {
			r, _, err := gocvLoop(o.video, w, h, 0)
			if err != nil {
				return nil, err
			}
			gocvRates = append(gocvRates, r)
		}
		n, d, err := ph.decode(ctx, fmt.Sprintf("dec-%d", i))
		if err != nil {
			return nil, err
		}
		decRates = append(decRates, float64(n)/d.Seconds())
		say("decode round %d/%d: frames service %.0f frames/s, bare gocv %.0f", i+1, o.rounds, decRates[i], gocvRates[i])
	}
	if o.phases["decode"] {
		rep.DecodeFPS, rep.GocvFPS = bench.Median(decRates), bench.Median(gocvRates)
		rep.DecodeRatio = rep.DecodeFPS / rep.GocvFPS
	}

	// Engine alone.
	pred, err := predict.Load(be, onnxBytes, man, predict.Options{MaxBatch: o.maxBatch})
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: %w", err)
	}
	defer pred.Close()
	batch := make([]schema.Frame, o.maxBatch)
	for i := range batch {
		batch[i] = schema.Frame{Source: "engine", Seq: uint64(i), Captured: time.Now(), OrigWidth: 768, OrigHeight: 576,
			Width: w, Height: h, Channels: 3, Pixels: pix[i%len(pix)]}
	}
	engineA, perCPUA, err := engineRate(ctx, pred, batch, o.engineFor)
	if err != nil {
		return nil, err
	}
	rep.EngineFPS1, _, err = engineRate(ctx, pred, batch[:1], o.engineFor)
	if err != nil {
		return nil, err
	}
	say("engine alone: %.0f frames/s at batch %d, %.0f at batch 1", engineA, o.maxBatch, rep.EngineFPS1)

	// Pipeline at --max-batch, then latency at 50% and 90% of its rate.
	if o.phases["pipeline"] {
		if err := ph.saturated(ctx, nc, be, rep, pix, w, h); err != nil {
			return nil, err
		}
	}
	engineB, perCPUB, err := engineRate(ctx, pred, batch, o.engineFor)
	if err != nil {
		return nil, err
	}
	say("engine alone again: %.0f frames/s at batch %d", engineB, o.maxBatch)
	rep.EnginePerCPU = (perCPUA + perCPUB) / 2
	rep.EngineFPS = (engineA + engineB) / 2
	rep.PipelineRatio = rep.PipelineFPS / rep.EngineFPS
	rep.EngineGain = rep.EngineFPS / rep.EngineFPS1
	rep.PipelineCPURatio = rep.PipelinePerCPU / rep.EnginePerCPU

	// Pipeline at max batch 1.
	if o.phases["batch1"] {
		stopInfer, err := ph.startInfer(ctx, nc, be, benchModelOne, 1)
		if err != nil {
			return nil, err
		}
		n, d, err := ph.pipeline(ctx, benchModelOne, "one", o.everyN1)
		if serr := stopInfer(); err == nil {
			err = serr
		}
		if err != nil {
			return nil, err
		}
		rep.PipelineFPS1 = float64(n) / d.Seconds()
		say("pipeline at max batch 1: %d frames, %.0f frames/s", n, rep.PipelineFPS1)
		if rep.PipelineFPS > 0 {
			rep.BatchGain = rep.PipelineFPS / rep.PipelineFPS1
		}
	}

	stopSvc()
	wg.Wait()
	if framesErr != nil && !errors.Is(framesErr, context.Canceled) {
		return nil, fmt.Errorf("bench pipeline: frames: %w", framesErr)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// saturated runs the pipeline at --max-batch on --sources file sources,
// then single-frame batches at 50% and 90% of its rate for latency.
func (p *benchPhases) saturated(ctx context.Context, nc *nats.Conn, be kernels.Backend, rep *pipelineReport, pix [][]byte, w, h int) error {
	stopInfer, err := p.startInfer(ctx, nc, be, benchModelBatch, p.o.maxBatch)
	if err != nil {
		return err
	}
	cpu0 := kernels.ProcessCPUTime()
	n, d, err := p.pipeline(ctx, benchModelBatch, "b", p.o.everyN)
	if err != nil {
		_ = stopInfer()
		return err
	}
	rep.PipelineCores = (kernels.ProcessCPUTime() - cpu0).Seconds() / d.Seconds()
	rep.PipelinePerCPU = float64(n) / (kernels.ProcessCPUTime() - cpu0).Seconds()
	rep.PipelineFrames = n
	rep.MeanBatch, rep.Triggers = p.batchStats()
	rep.PipelineFPS = float64(n) / d.Seconds()
	p.say("pipeline at max batch %d: %d frames, %.0f frames/s, mean batch %.1f", p.o.maxBatch, n, rep.PipelineFPS, rep.MeanBatch)
	for _, f := range []struct {
		frac     float64
		rate     *float64
		p50, p99 *float64
	}{{0.5, &rep.RateAt50, &rep.P50At50, &rep.P99At50}, {0.9, &rep.RateAt90, &rep.P50At90, &rep.P99At90}} {
		if !p.o.phases["latency"] {
			break
		}
		*f.rate = f.frac * rep.PipelineFPS
		lat, err := p.latency(ctx, benchModelBatch, fmt.Sprintf("lat%d", int(f.frac*100)), *f.rate, pix, w, h)
		if err != nil {
			_ = stopInfer()
			return err
		}
		*f.p50, *f.p99 = quantileMs(lat, 0.50), quantileMs(lat, 0.99)
		p.say("latency at %.0f%% of that (%.0f frames/s): p50 %.1f ms, p99 %.1f ms", 100*f.frac, *f.rate, *f.p50, *f.p99)
	}
	rep.P50, rep.P99 = rep.P50At50, rep.P99At50
	return stopInfer()
}

// gocvLoop reads every frame of path and resizes it to w x h as the frames
// service does (area when shrinking), and returns frames/s and the pixels
// (BGR HWC) of the first keep frames.
func gocvLoop(path string, w, h, keep int) (float64, [][]byte, error) {
	vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return 0, nil, fmt.Errorf("bench pipeline: %s: not a video OpenCV can read (%v)", path, err)
	}
	defer vc.Close()
	m, r := gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer r.Close()
	var kept [][]byte
	n := 0
	t0 := time.Now()
	for vc.Read(&m) && !m.Empty() {
		interp := gocv.InterpolationLinear
		if w <= m.Cols() && h <= m.Rows() {
			interp = gocv.InterpolationArea
		}
		gocv.Resize(m, &r, image.Pt(w, h), 0, 0, interp)
		b := r.ToBytes()
		if len(kept) < keep {
			kept = append(kept, b)
		}
		n++
	}
	d := time.Since(t0)
	if n == 0 || len(kept) < keep {
		return 0, nil, fmt.Errorf("bench pipeline: %s: decoded %d frames, want at least %d", path, n, max(keep, 1))
	}
	return float64(n) / d.Seconds(), kept, nil
}

// engineRate runs batch through pred for at least d after two warm-up
// runs and returns frames per second of wall time and of process CPU time.
func engineRate(ctx context.Context, pred *predict.Predictor, batch []schema.Frame, d time.Duration) (fps, perCPU float64, err error) {
	for range 2 {
		if _, err := pred.Run(ctx, batch); err != nil {
			return 0, 0, fmt.Errorf("bench pipeline: engine: %w", err)
		}
	}
	n := 0
	c0, t0 := kernels.ProcessCPUTime(), time.Now()
	for time.Since(t0) < d {
		if _, err := pred.Run(ctx, batch); err != nil {
			return 0, 0, fmt.Errorf("bench pipeline: engine: %w", err)
		}
		n += len(batch)
	}
	return float64(n) / time.Since(t0).Seconds(), float64(n) / (kernels.ProcessCPUTime() - c0).Seconds(), nil
}

// benchPhases runs the phases against one embedded server.
type benchPhases struct {
	o    pipelineBench
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	subj schema.Subjects
	col  *benchCollector
	log  zerolog.Logger
	reg  *prometheus.Registry // the running infer's metrics
	say  func(format string, a ...any)
}

// batchStats is the running infer's mean batch size so far and its
// batches per flush trigger.
func (p *benchPhases) batchStats() (float64, map[string]float64) {
	mfs, err := p.reg.Gather()
	if err != nil {
		return math.NaN(), nil
	}
	mean, trig := math.NaN(), map[string]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "vireo_infer_batch_size":
			var sum float64
			var n uint64
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
				n += m.GetHistogram().GetSampleCount()
			}
			if n > 0 {
				mean = sum / float64(n)
			}
		case "vireo_infer_batches_total":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "trigger" {
						trig[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return mean, trig
}

// phaseTimeout bounds one phase: generous, a stuck pipeline fails the
// bench instead of hanging it.
const phaseTimeout = 5 * time.Minute

// register puts a file source into the SOURCES bucket (what ingest's POST
// /v1/sources does after validating).
func (p *benchPhases) register(ctx context.Context, id, mdl string, everyN int) error {
	reg := schema.SourceRegistration{SchemaVersion: schema.Version, ID: id, URL: p.o.video, Model: mdl, EveryN: everyN}
	if err := reg.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	_, err = p.kv.Put(ctx, id, b)
	return err
}

// decode runs one source through the frames service alone (no infer
// serves its model) and returns the frames it published and the time from
// registration to its end-of-stream event.
func (p *benchPhases) decode(ctx context.Context, id string) (int, time.Duration, error) {
	t0 := time.Now()
	if err := p.register(ctx, id, benchModelDec, 1); err != nil {
		return 0, 0, err
	}
	var e benchEOS
	err := p.col.wait(ctx, "decode "+id, func() bool {
		var ok bool
		e, ok = p.col.eos[id]
		return ok
	})
	if err != nil {
		return 0, 0, err
	}
	if e.Reason != "eof" || e.Frames == 0 {
		return 0, 0, fmt.Errorf("bench pipeline: decode %s ended %q after %d frames: %s", id, e.Reason, e.Frames, e.Detail)
	}
	return int(e.Frames), e.at.Sub(t0), nil
}

// startInfer runs the infer service for mdl alone with the given max
// batch and returns once its consumer is pulling; stop ends and joins it.
func (p *benchPhases) startInfer(ctx context.Context, nc *nats.Conn, be kernels.Backend, mdl string, maxBatch int) (stop func() error, err error) {
	ictx, cancel := context.WithCancel(ctx)
	p.reg = prometheus.NewRegistry()
	done := make(chan error, 1)
	go func() {
		done <- infer.Run(ictx, infer.Config{Models: []string{mdl}, MaxBatch: maxBatch, MaxDelay: 5 * time.Millisecond, MaxInFlight: p.o.inFlight, BackendImpl: be, NoProvision: true, NoKeep: p.o.noKeep},
			ops.Deps{NC: nc, Log: p.log, Metrics: p.reg})
	}()
	stop = func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("bench pipeline: infer %s: %w", mdl, err)
		}
		return nil
	}
	deadline := time.Now().Add(phaseTimeout)
	for {
		ci, err := p.js.Consumer(ctx, p.subj.StreamName(schema.StreamFrames), "infer-"+mdl)
		if err == nil {
			if info, err := ci.Info(ctx); err == nil && info.NumWaiting > 0 {
				return stop, nil
			}
		}
		select {
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("bench pipeline: infer %s stopped before serving: %v", mdl, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, fmt.Errorf("bench pipeline: infer %s not pulling after %v", mdl, phaseTimeout)
		}
	}
}

// pipeline registers --sources file sources for mdl and returns the
// results received and the time from registration to the last result.
func (p *benchPhases) pipeline(ctx context.Context, mdl, tag string, everyN int) (int, time.Duration, error) {
	ids := make([]string, p.o.sources)
	t0 := time.Now()
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", tag, i)
		if err := p.register(ctx, ids[i], mdl, everyN); err != nil {
			return 0, 0, err
		}
	}
	var total int
	var last time.Time
	err := p.col.wait(ctx, "pipeline "+tag, func() bool {
		total, last = 0, time.Time{}
		for _, id := range ids {
			e, ok := p.col.eos[id]
			if !ok || p.col.count[id] < int(e.Frames) {
				return false
			}
			if e.Reason != "eof" {
				return false
			}
			total += p.col.count[id]
			if p.col.last[id].After(last) {
				last = p.col.last[id]
			}
		}
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	return total, last.Sub(t0), nil
}

// latency publishes single-frame batches for mdl at rate frames/s for
// --latency-time (at least 50 frames) and returns each result's
// capture-to-receipt latency, the first 10% (warm-up) left out.
func (p *benchPhases) latency(ctx context.Context, mdl, source string, rate float64, pix [][]byte, w, h int) ([]float64, error) {
	n := max(50, int(rate*p.o.latFor.Seconds()))
	subject, err := p.subj.Frames(mdl)
	if err != nil {
		return nil, err
	}
	mem := memory.NewGoAllocator()
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		f := schema.Frame{Source: source, Seq: uint64(i), Captured: time.Now(), OrigWidth: 768, OrigHeight: 576,
			Width: w, Height: h, Channels: 3, Pixels: pix[i%len(pix)]}
		b, err := schema.EncodeFrames(mem, mdl, []schema.Frame{f})
		if err != nil {
			return nil, err
		}
		id, err := schema.MsgID(source, uint64(i))
		if err != nil {
			return nil, err
		}
		if _, err := p.js.PublishAsync(subject, b, jetstream.WithMsgID(id)); err != nil {
			return nil, fmt.Errorf("bench pipeline: publish %s: %w", source, err)
		}
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(phaseTimeout):
		return nil, fmt.Errorf("bench pipeline: %s: publish acks not back", source)
	}
	var lat []float64
	err = p.col.wait(ctx, "latency "+source, func() bool {
		lat = p.col.lat[source]
		return len(lat) >= n
	})
	if err != nil {
		return nil, err
	}
	return append([]float64(nil), lat[n/10:]...), nil
}

// benchCollector records results and end-of-stream events.
type benchCollector struct {
	mu    sync.Mutex
	count map[string]int
	last  map[string]time.Time
	lat   map[string][]float64 // seconds, capture to receipt
	eos   map[string]benchEOS
}

type benchEOS struct {
	schema.EndOfStream
	at time.Time
}

func (c *benchCollector) handle(m *nats.Msg) {
	now := time.Now()
	if strings.Contains(m.Subject, ".events.") {
		var e schema.EndOfStream
		if json.Unmarshal(m.Data, &e) == nil {
			c.mu.Lock()
			c.eos[e.Source] = benchEOS{e, now}
			c.mu.Unlock()
		}
		return
	}
	var r schema.Result
	if json.Unmarshal(m.Data, &r) != nil {
		return // an Arrow result batch
	}
	c.mu.Lock()
	c.count[r.Source]++
	c.last[r.Source] = now
	c.lat[r.Source] = append(c.lat[r.Source], now.Sub(r.TS).Seconds())
	c.mu.Unlock()
}

// wait polls done (called with the lock held) until it is true.
func (c *benchCollector) wait(ctx context.Context, what string, done func() bool) error {
	deadline := time.Now().Add(phaseTimeout)
	for {
		c.mu.Lock()
		ok := done()
		c.mu.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench pipeline: %s not done after %v", what, phaseTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// quantileMs is the q quantile (nearest rank) of seconds, in ms.
func quantileMs(sec []float64, q float64) float64 {
	if len(sec) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), sec...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)] * 1000
}
