package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"vireo/pkg/arch"
	"vireo/pkg/backend"
	"vireo/pkg/data"
	"vireo/pkg/model"
	"vireo/pkg/train"
)

func init() {
	register(command{"train", "train a model on a prepared dataset (lr_find, one-cycle, freeze, progressive resizing) and write ONNX + manifest", runTrain})
	benchSubs["train"] = benchTrain
}

// trainOpts are `vireo train`'s flags.
type trainOpts struct {
	task, dataName, archName, out, name, parent string
	size, epochs, freezeEpochs, bs, workers     int
	sizes, lr, optim, aug, checkpoint           string
	flipVert                                    bool
	wd, maxLighting, maxZoom, maxRotate         float64
	maxShift, erase, labelSmoothing, dropout    float64
	padding                                     string
	resume, mixed, smallStem, noProgress        bool
	seed                                        uint64
	limit                                       int
	cpuProfile                                  string
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", stderr)
	bc := backendFlags(fs)
	var o trainOpts
	fs.StringVar(&o.task, "task", "", "classify, multilabel, segment or regress (default: the dataset's task; must match it)")
	fs.StringVar(&o.dataName, "data", "", "prepared dataset: a name under --data-root or a folder holding dataset.json (required)")
	dataRootFlag := fs.String("data-root", dataRoot(), "where `vireo data prepare` put the datasets [VIREO_DATA]")
	fs.StringVar(&o.archName, "arch", "", "architecture, e.g. resnet18@0.25, resnet34, resnet18-unet@0.25, resnet14s@0.25 (small inputs) (default resnet18@0.25, -unet for segment)")
	fs.IntVar(&o.size, "size", 0, "input side in pixels (default: the dataset's width, at most 128)")
	fs.StringVar(&o.sizes, "sizes", "", "progressive resizing: comma-separated sides, e.g. 64,128 (each gets --freeze-epochs then --epochs with the same weights)")
	fs.IntVar(&o.epochs, "epochs", 5, "epochs per size (unfrozen)")
	fs.IntVar(&o.freezeEpochs, "freeze-epochs", 0, "epochs per size with the body frozen before unfreezing (fastai's stage 1; useful for fine-tuning)")
	fs.StringVar(&o.lr, "lr", "auto", "max learning rate: auto (lr_find's suggestion) or a number")
	fs.StringVar(&o.optim, "opt", "adamw", "optimiser: adamw or sgd")
	fs.Float64Var(&o.wd, "wd", train.DefaultWeightDecay, "decoupled weight decay (0: none)")
	fs.Float64Var(&o.labelSmoothing, "label-smoothing", 0, "label-smoothed cross-entropy for classify and segment: eps of the target spread over all classes (fastai's LabelSmoothingCrossEntropy, e.g. 0.1; 0: none)")
	fs.Float64Var(&o.dropout, "dropout", 0, "Dropout in a pooling head (classify, multilabel, regress): fastai's ps, the first Dropout drops half of it and the one before the last Linear all of it (fastai's default is 0.5; 0: no Dropout)")
	fs.IntVar(&o.bs, "bs", 64, "batch size")
	fs.IntVar(&o.workers, "workers", 0, "data loader workers (0: one per core)")
	fs.StringVar(&o.aug, "aug", "default", "augmentation: default (per task: horizontal flips; small rotate/zoom/lighting), none")
	fs.BoolVar(&o.flipVert, "flip-vert", false, "with --aug default, also flip vertically and turn by 90 degrees (the 8 dihedral symmetries; fastai's flip_vert, for overhead imagery like Planet's)")
	fs.Float64Var(&o.maxLighting, "max-lighting", -1, "with --aug default, the brightness/contrast change instead of the task's (fastai's max_lighting; 0: none, e.g. when a label is itself about lighting)")
	fs.Float64Var(&o.maxZoom, "max-zoom", -1, "with --aug default, the largest zoom factor (>= 1) instead of the task's (fastai's max_zoom; 1: none)")
	fs.Float64Var(&o.maxRotate, "max-rotate", -1, "with --aug default, the largest rotation in degrees instead of the task's (fastai's max_rotate; 0: none)")
	fs.Float64Var(&o.maxShift, "max-shift", -1, "with --aug default, move each item by up to this fraction of its side in whole pixels instead of the task's (fastai's rand_pad and crop; 0: none)")
	fs.Float64Var(&o.erase, "erase", -1, "with --aug default, the probability of random erasing (a random 2-30% rectangle of noise) instead of the task's (0: none)")
	fs.StringVar(&o.padding, "padding", "reflection", "what a transform shows outside the image: reflection (fastai's default), zeros or border")
	fs.StringVar(&o.out, "out", "", "model directory to write: model.onnx, manifest.json, losses.png, lr.png, lr_find.png (required)")
	fs.StringVar(&o.name, "name", "", "model name in the manifest (default: the dataset's name)")
	fs.StringVar(&o.parent, "parent", "", "parent version recorded in the manifest")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint file written after every epoch (default OUT/checkpoint.vck)")
	fs.BoolVar(&o.resume, "resume", false, "continue from --checkpoint where it stopped (same flags)")
	fs.BoolVar(&o.mixed, "mixed-precision", false, "bf16 tensor-core GEMMs and convolutions with FP32 master weights and sums (CUDA backend only: refused on the CPU backend)")
	fs.BoolVar(&o.smallStem, "small-stem", false, "3x3/1 stem instead of 7x7/2 + max pool (default: on for sizes <= 64)")
	fs.BoolVar(&o.noProgress, "no-progress", false, "no progress bar on stderr")
	fs.Uint64Var(&o.seed, "seed", 42, "seed for initialisation, order and augmentation")
	fs.IntVar(&o.limit, "limit", 0, "use only the first N training items (quick runs)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.dataName == "" || o.out == "" {
		return usagef("train: --data and --out are required")
	}
	switch {
	case o.aug != "default" && o.aug != "none":
		return usagef("train: --aug %q: want default or none", o.aug)
	case o.aug == "none" && o.flipVert:
		return usagef("train: --flip-vert needs --aug default (got --aug none)")
	case o.maxLighting != -1 && (o.maxLighting < 0 || o.maxLighting > 0.95):
		return usagef("train: --max-lighting %g: want 0..0.95", o.maxLighting)
	case o.maxZoom != -1 && (o.maxZoom < 1 || o.maxZoom > 10):
		return usagef("train: --max-zoom %g: want 1..10", o.maxZoom)
	case o.maxRotate != -1 && (o.maxRotate < 0 || o.maxRotate > 180):
		return usagef("train: --max-rotate %g: want 0..180", o.maxRotate)
	case o.maxShift != -1 && (o.maxShift < 0 || o.maxShift > 0.5):
		return usagef("train: --max-shift %g: want 0..0.5", o.maxShift)
	case o.erase != -1 && (o.erase < 0 || o.erase > 1):
		return usagef("train: --erase %g: want 0..1", o.erase)
	case o.aug == "none" && (o.maxLighting != -1 || o.maxZoom != -1 || o.maxRotate != -1 || o.maxShift != -1 || o.erase != -1):
		return usagef("train: --max-lighting, --max-zoom, --max-rotate, --max-shift and --erase need --aug default (got --aug none)")
	}
	if !(o.labelSmoothing >= 0 && o.labelSmoothing < 1) {
		return usagef("train: --label-smoothing %g: want 0 <= eps < 1", o.labelSmoothing)
	}
	if !(o.dropout >= 0 && o.dropout < 1) {
		return usagef("train: --dropout %g: want 0 <= p < 1", o.dropout)
	}
	if _, ok := paddings[o.padding]; !ok {
		return usagef("train: --padding %q: want reflection, zeros or border", o.padding)
	}
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return fmt.Errorf("train: --cpuprofile: %w", err)
	}
	defer stopProfile()
	return trainMain(ctx, o, *dataRootFlag, *bc, stdout, stderr)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 8 || n > 4096 {
			return nil, usagef("train: --sizes %q: want comma-separated sides in 8..4096", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// defaultAugment is the per-task augmentation of `--aug default`: the
// lesson's get_transforms (no warp for multi-label tiles). flipVert adds the
// vertical flips and quarter turns (all 8 dihedral symmetries), which suit
// overhead imagery only: fashion-tiles places its items upright, and
// training on turned items cost it fbeta.
func defaultAugment(task data.Task, flipVert bool) *data.Augment {
	var a *data.Augment
	switch task {
	case data.MultiLabel:
		a = &data.Augment{FlipH: true, MaxLighting: 0.1, MaxZoom: 1.05}
	case data.Regress:
		// No flips, unlike the lesson's BIWI: on megamind-face (60 epochs,
		// seeds 1 and 2) they took point_error from 0.037 and 0.038 to 0.038
		// and 0.059 (perhaps its Haar-cascade centres are not
		// mirror-symmetric; not verified).
		a = &data.Augment{MaxRotate: 5, MaxZoom: 1.05, MaxLighting: 0.2}
	case data.Segment:
		a = &data.Augment{FlipH: true, MaxRotate: 5, MaxZoom: 1.1, MaxLighting: 0.2}
	default:
		a = &data.Augment{FlipH: true}
	}
	if flipVert {
		a.FlipH, a.Dihedral = false, true
	}
	return a
}

// augString says what aug does, for the manifest's notes.
func augString(a *data.Augment) string {
	if a == nil {
		return "none"
	}
	var f []string
	switch {
	case a.Dihedral:
		f = append(f, "dihedral")
	case a.FlipH:
		f = append(f, "flip")
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"rotate", a.MaxRotate}, {"zoom", a.MaxZoom}, {"warp", a.MaxWarp}, {"lighting", a.MaxLighting}, {"shift", a.MaxShift}, {"erase", a.Erase}} {
		if v.v != 0 {
			f = append(f, fmt.Sprintf("%s %g", v.name, v.v))
		}
	}
	if len(f) == 0 {
		return "none"
	}
	return strings.Join(f, ", ")
}

// paddings are --padding's values.
var paddings = map[string]data.Padding{"reflection": data.PadReflection, "zeros": data.PadZeros, "border": data.PadBorder}

// trainAugment is the augmentation of the flags: nil for --aug none, else
// the task's default with the --max-* flags that were given (not -1).
func trainAugment(o trainOpts, task data.Task) *data.Augment {
	if o.aug == "none" {
		return nil
	}
	aug := defaultAugment(task, o.flipVert)
	for _, f := range []struct{ flag, field *float64 }{{&o.maxLighting, &aug.MaxLighting}, {&o.maxZoom, &aug.MaxZoom}, {&o.maxRotate, &aug.MaxRotate}, {&o.maxShift, &aug.MaxShift}, {&o.erase, &aug.Erase}} {
		if *f.flag != -1 {
			*f.field = *f.flag
		}
	}
	return aug
}

func trainMain(ctx context.Context, o trainOpts, root string, bc backend.Config, stdout, stderr io.Writer) error {
	dir, err := data.Locate(root, o.dataName)
	if err != nil {
		return err
	}
	dm, err := data.ReadManifest(dir)
	if err != nil {
		return err
	}
	split, err := data.Open(dir)
	if err != nil {
		return err
	}
	meta := split.Meta
	if o.task != "" && data.Task(o.task) != meta.Task {
		return usagef("train: --task %s but dataset %s is %s", o.task, dm.Name, meta.Task)
	}
	if o.limit > 0 && o.limit < split.Train.Len() {
		idx := make([]int, o.limit)
		for i := range idx {
			idx[i] = i
		}
		split.Train = data.Subset(split.Train, idx)
	}
	sizes := []int{o.size}
	if o.sizes != "" {
		if sizes, err = parseSizes(o.sizes); err != nil {
			return err
		}
	} else if o.size == 0 {
		sizes[0] = min(dm.Width, 128)
	}
	if o.archName == "" {
		o.archName = "resnet18@0.25"
		if meta.Task == data.Segment {
			o.archName = "resnet18-unet@0.25"
		}
	}
	small := o.smallStem || sizes[0] <= 64
	var lrVal float64
	if o.lr != "auto" {
		if lrVal, err = strconv.ParseFloat(o.lr, 64); err != nil || !(lrVal > 0) || lrVal > 10 {
			return usagef("train: --lr %q: want auto or a number in (0, 10]", o.lr)
		}
	}
	if o.epochs < 1 || o.freezeEpochs < 0 || o.bs < 1 {
		return usagef("train: --epochs >= 1, --freeze-epochs >= 0 and --bs >= 1 (got %d, %d, %d)", o.epochs, o.freezeEpochs, o.bs)
	}
	var optim train.Optim
	switch o.optim {
	case "adamw":
		optim = train.AdamW
	case "sgd":
		optim = train.SGD
	default:
		return usagef("train: --opt %q: want adamw or sgd", o.optim)
	}
	aug := trainAugment(o, meta.Task)
	wd := o.wd
	if wd == 0 {
		wd = -1
	}
	if o.name == "" {
		o.name = dm.Name
	}
	if o.checkpoint == "" {
		o.checkpoint = filepath.Join(o.out, "checkpoint.vck")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	b, err := backend.Open(bc)
	if err != nil {
		return err
	}
	defer b.Close()

	channels := dm.Channels
	if channels != 1 {
		channels = 3
	}
	if o.dropout != 0 && meta.Task == data.Segment {
		return usagef("train: --dropout is for a pooling head; the %s task's U-Net has none", meta.Task)
	}
	acfg := arch.Config{InChannels: channels, SmallStem: small, Seed: o.seed, Dropout: o.dropout}
	if meta.Task == data.Regress {
		acfg.Points = meta.Points
	} else {
		acfg.Classes = len(meta.Classes)
	}
	m, err := arch.Build(o.archName, string(meta.Task), acfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "computing normalisation statistics of %s...\n", dm.Name)
	mean, std, err := data.ComputeStats(ctx, split.Train, channels, 2000)
	if err != nil {
		return err
	}
	l, err := train.New(b, m, train.Config{
		Meta: meta, BatchSize: o.bs, Size: sizes[0], Channels: channels, Optimizer: optim, WeightDecay: wd, LabelSmoothing: o.labelSmoothing,
		MixedPrecision: o.mixed, Seed: o.seed, Log: zerolog.Nop(),
		Loader: data.LoaderConfig{Augment: aug, Padding: paddings[o.padding], Mean: mean, Std: std, Workers: o.workers},
	})
	if err != nil {
		return err
	}
	defer l.Close()
	if o.resume {
		if err := l.LoadCheckpoint(o.checkpoint); err != nil {
			return err
		}
		p := l.Position()
		fmt.Fprintf(stderr, "resuming from %s at stage %d epoch %d\n", o.checkpoint, p.Stage, p.Epoch)
	}
	fmt.Fprintf(stdout, "%s: %s on %s (%d train, %d valid), %d params, backend %s, sizes %v, batch %d\n",
		dm.Name, m.Arch, meta.Task, split.Train.Len(), split.Valid.Len(), m.NumParams(), b.Name(), sizes, o.bs)

	d := train.Data{Train: split.Train, Valid: split.Valid}
	tbl := &epochTable{w: stdout}
	var bar *trainBar
	if !o.noProgress {
		bar = &trainBar{w: stderr}
	}
	l.OnBatch = func(bi train.BatchInfo) {
		if bar != nil {
			bar.update(bi)
		}
	}
	l.OnEpoch = func(ei train.EpochInfo) {
		if bar != nil {
			bar.clear()
		}
		tbl.row(ei)
	}
	start := time.Now()
	// The plan: per size, optionally frozen epochs at slice(lr), then the
	// unfrozen epochs: one rate for every group when training from scratch
	// (no frozen stage), else the lesson's slice(lr/500, lr/5) after a
	// frozen stage. With --lr auto, lr_find runs at the start of each
	// size's first stage, on the weights trained so far.
	l.OnLRFind = func(stage int, res *train.LRFindResult) {
		if bar != nil {
			bar.clear()
		}
		png := filepath.Join(o.out, fmt.Sprintf("lr_find_stage%d.png", stage))
		if err := res.Plot(png); err != nil {
			fmt.Fprintf(stderr, "lr_find plot: %v\n", err)
		}
		fmt.Fprintf(stdout, "stage %d lr_find: suggestion %.3g (steepest descent of the smoothed loss; minimum at %.3g), plot %s\n", stage, res.Suggestion, res.MinLR, png)
	}
	auto := o.lr == "auto"
	first := func(sugg float64, _ train.Rates) train.Rates {
		lr := lrVal
		if auto {
			lr = sugg
		}
		if o.freezeEpochs > 0 {
			return train.Slice(0, lr)
		}
		return train.Const(lr)
	}
	unfrozen := func(_ float64, prev train.Rates) train.Rates { return train.Slice(prev.Hi/500, prev.Hi/5) }
	var plan []train.Stage
	for _, s := range sizes {
		plan = append(plan, train.Stage{Size: s, Epochs: max(o.freezeEpochs, o.epochs), Freeze: o.freezeEpochs > 0, FindLR: auto, Auto: first})
		if o.freezeEpochs > 0 {
			plan[len(plan)-1].Epochs = o.freezeEpochs
			plan = append(plan, train.Stage{Size: s, Epochs: o.epochs, Auto: unfrozen})
		}
	}
	if !o.noProgress {
		fmt.Fprintf(stderr, "training (lr_find first when --lr auto)...\n")
	}
	for i, st := range plan {
		lr := "slice(lr/500, lr/5) of the stage before"
		if st.Freeze || o.freezeEpochs == 0 {
			lr = "lr_find's suggestion"
			if !auto {
				lr = first(0, train.Rates{}).String()
			}
		}
		fmt.Fprintf(stdout, "stage %d: %d epochs at %dx%d, lr %s, frozen %v\n", i, st.Epochs, st.Size, st.Size, lr, st.Freeze)
	}
	if err := l.Run(ctx, plan, d, train.RunOptions{Checkpoint: o.checkpoint}); err != nil {
		if bar != nil {
			bar.clear()
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted; continue with --resume (checkpoint %s): %w", o.checkpoint, err)
		}
		return err
	}
	total := time.Since(start)
	fmt.Fprintf(stdout, "total time: %s\n", total.Round(time.Second))

	_, met, err := l.Validate(ctx, split.Valid)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "dataset.json"))
	if err != nil {
		return err
	}
	man, err := l.Export(o.out, train.ExportInfo{
		Name: o.name, Parent: o.parent, Mean: mean, Std: std, Metrics: met.Values(), DataDigest: model.Digest(raw), Dataset: o.dataName,
		Notes: fmt.Sprintf("vireo train: %d epochs per size %v, freeze %d, %s lr %s wd %g, batch %d, label smoothing %g, dropout %g, augment %s, seed %d, %s",
			o.epochs, sizes, o.freezeEpochs, optim, o.lr, o.wd, o.bs, o.labelSmoothing, o.dropout, augString(aug), o.seed, total.Round(time.Second)),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (model.onnx, manifest.json, %s, %s); metrics %s\n", o.out, train.LossPlotFile, train.LRPlotFile, formatMetrics(man.Metrics, met.Names()))
	return nil
}

func formatMetrics(m map[string]float64, names []string) string {
	var parts []string
	for _, n := range names {
		if v, ok := m[n]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4f", n, v))
		}
	}
	return strings.Join(parts, " ")
}

// epochTable prints fastai's per-epoch table.
type epochTable struct {
	w      io.Writer
	header bool
}

func (t *epochTable) row(e train.EpochInfo) {
	if !t.header {
		fmt.Fprintf(t.w, "%-6s %-5s %-6s %-11s %-11s", "stage", "size", "epoch", "train_loss", "valid_loss")
		for _, n := range e.MetricNames {
			fmt.Fprintf(t.w, " %-*s", max(len(n), 10), n)
		}
		fmt.Fprintf(t.w, " %-8s %s\n", "img/s", "time")
		t.header = true
	}
	fmt.Fprintf(t.w, "%-6d %-5d %-6d %-11.6f %-11.6f", e.Stage, e.Size, e.Epoch+1, e.TrainLoss, e.ValidLoss)
	for _, n := range e.MetricNames {
		v, ok := e.Metrics[n]
		if !ok {
			fmt.Fprintf(t.w, " %-*s", max(len(n), 10), "-")
			continue
		}
		fmt.Fprintf(t.w, " %-*.6f", max(len(n), 10), v)
	}
	fmt.Fprintf(t.w, " %-8.1f (%s)\n", e.ImagesPerS, fmtDur(e.Time))
}

func fmtDur(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// trainBar redraws one stderr line per batch: epoch, bar, batches,
// loss, ETA of the epoch.
type trainBar struct {
	w    io.Writer
	last time.Time
	drew bool
}

func (p *trainBar) update(b train.BatchInfo) {
	if time.Since(p.last) < 200*time.Millisecond && b.Batch != b.Batches {
		return
	}
	p.last = time.Now()
	const width = 30
	done := width * b.Batch / max(b.Batches, 1)
	eta := time.Duration(0)
	if b.Batch > 0 {
		eta = time.Duration(float64(b.Elapsed) / float64(b.Batch) * float64(b.Batches-b.Batch))
	}
	fmt.Fprintf(p.w, "\rstage %d epoch %d/%d [%s%s] %d/%d loss %.4f lr %.2e ETA %s ", b.Stage, b.Epoch+1, b.Epochs,
		strings.Repeat("#", done), strings.Repeat(".", width-done), b.Batch, b.Batches, b.Smoothed, b.LR, fmtDur(eta))
	p.drew = true
}

func (p *trainBar) clear() {
	if p.drew {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 110))
		p.drew = false
	}
}

func benchTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench train", stderr)
	bc := backendFlags(fs)
	var o train.BenchOptions
	fs.StringVar(&o.Arch, "arch", "resnet18", "architecture, e.g. resnet18, resnet18@0.25, resnet18-unet, resnet14s@0.25")
	fs.StringVar(&o.Task, "task", "", "classify, multilabel, segment or regress (default: segment for a U-Net, classify otherwise)")
	fs.IntVar(&o.Size, "size", 64, "input side")
	fs.IntVar(&o.Batch, "batch", 32, "batch size")
	fs.IntVar(&o.Channels, "channels", 3, "input channels")
	fs.BoolVar(&o.SmallStem, "small-stem", false, "3x3/1 stem (for 28..64 px inputs)")
	fs.BoolVar(&o.Freeze, "freeze", false, "time steps with the body frozen (head and BatchNorm train; compare images/s)")
	optim := fs.String("opt", "adamw", "optimiser: adamw or sgd")
	fs.IntVar(&o.Reps, "reps", 5, "timed rounds (median reported)")
	fs.IntVar(&o.M, "m", 1024, "SGEMM reference M")
	fs.IntVar(&o.K, "k", 1024, "SGEMM reference K")
	fs.IntVar(&o.N, "n", 1024, "SGEMM reference N")
	fs.BoolVar(&o.CPUClock, "cpu-clock", false, "time by process CPU time instead of wall time")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed steps and the SGEMM reference to this file")
	profile := fs.Int("profile", 0, "also time every kernel, forward and backward, over --reps more steps: the JSON gains \"ops\", and stderr gets the time, cores kept busy and GFLOP/s per op type and of the N slowest kernels (0: off)")
	fs.Bool("json", false, "print one JSON object (the only format so far)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *optim {
	case "adamw":
		o.Optimizer = train.AdamW
	case "sgd":
		o.Optimizer = train.SGD
	default:
		return usagef("bench train: --opt %q: want adamw or sgd", *optim)
	}
	if *profile < 0 {
		return usagef("bench train: --profile %d: want >= 0", *profile)
	}
	b, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer b.Close()
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if *profile > 0 {
		o.Profile = o.Reps
	}
	res, err := train.Bench(ctx, b, o)
	if err != nil {
		return err
	}
	if *profile > 0 {
		rows := make([]profRow, len(res.Ops))
		for i, op := range res.Ops {
			wall := time.Duration(op.MS * 1e6)
			rows[i] = profRow{node: op.Node, op: op.Op, shape: op.Shape, backward: op.Backward, wall: wall,
				cpu: time.Duration(op.Cores * float64(wall)), flops: op.FLOPs}
		}
		if err := writeProfile(stderr, rows, *profile); err != nil {
			return err
		}
	}
	return json.NewEncoder(stdout).Encode(res)
}
