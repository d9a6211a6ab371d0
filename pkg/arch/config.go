package arch

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"vireo/pkg/graph"
)

// Errors returned by the builders. Wrap them with %w and say got/want.
var (
	// ErrArch is an unknown architecture name or a task the architecture
	// cannot do.
	ErrArch = errors.New("arch: unknown architecture")
	// ErrConfig is an invalid Config field.
	ErrConfig = errors.New("arch: invalid config")
)

// Task names what a model's output means. The graph is the same for
// Classify and MultiLabel (logits); the loss and the post-processing differ.
const (
	TaskClassify   = "classify"   // single label: softmax, cross-entropy
	TaskMultiLabel = "multilabel" // independent labels: sigmoid, BCE with logits
	TaskSegment    = "segment"    // per-pixel classes: U-Net, cross-entropy
	TaskRegress    = "regress"    // 2*Points values, MSE (points scaled to [-1,1])
)

// DefaultDropout is fastai's ps=0.5 for the classifier head: the first
// Dropout of the head drops p/2, the second p.
const DefaultDropout = 0.5

// Config parameterises a model. The zero value is not usable: Build fills
// the defaults listed per field (setDefaults) and then validates.
type Config struct {
	// Classes is the number of output classes (classify, multilabel,
	// segment). Required for those tasks.
	Classes int
	// Points is the number of 2-D points a regressor predicts (its output
	// has 2*Points values: x0,y0,x1,y1,...). Required for regress.
	Points int
	// Width multiplies the encoder's channel counts (64,128,256,512):
	// 0.25 gives 16,32,64,128 (resnet8s, resnet14s: stem 64, stages
	// 128,256,512; 0.25 gives 16 and 32,64,128). 0 means 1 (or the width
	// in the arch name).
	Width float64
	// SmallStem replaces the 7x7/2 conv and the 3x3/2 max pool with one
	// 3x3/1 conv, for 28x28..64x64 inputs (total stride 8 instead of 32).
	// resnet14s always has that stem and ignores it.
	SmallStem bool
	// Dropout is fastai's ps for the pooling head (0 means no Dropout
	// nodes at all; DefaultDropout is fastai's value).
	Dropout float64
	// Hidden is the width of the head's hidden Linear (0 means 512, as
	// fastai's lin_ftrs).
	Hidden int
	// Upsample is the U-Net decoder's upsampler: UpsamplePixelShuffle
	// (default) or UpsampleConvTranspose.
	Upsample string
	// ZeroInitResidual starts the last BatchNorm scale of each residual
	// block at 0, so each block starts as the identity.
	ZeroInitResidual bool
	// InChannels is the number of input channels (0 means 3).
	InChannels int
	// Size, when > 0, fixes the input's H and W in the graph's input
	// description; 0 leaves them dynamic (-1). N is always dynamic.
	Size int
	// Seed makes the initialisation deterministic: the same Seed and
	// Config give bit-identical initializers.
	Seed uint64
}

// U-Net upsamplers.
const (
	UpsamplePixelShuffle  = "pixelshuffle"  // 1x1 conv to 4x channels (ICNR init) + DepthToSpace(2, CRD)
	UpsampleConvTranspose = "convtranspose" // ConvTranspose 2x2 stride 2
)

func (c *Config) setDefaults() {
	if c.Width == 0 {
		c.Width = 1
	}
	if c.Hidden == 0 {
		c.Hidden = 512
	}
	if c.Upsample == "" {
		c.Upsample = UpsamplePixelShuffle
	}
	if c.InChannels == 0 {
		c.InChannels = 3
	}
}

// Validate checks the config for the given task (after defaults).
func (c Config) Validate(task string) error {
	switch {
	case c.Width <= 0 || c.Width > 8 || math.IsNaN(c.Width):
		return fmt.Errorf("%w: Width=%v (want 0 < Width <= 8)", ErrConfig, c.Width)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("%w: Dropout=%v (want 0 <= Dropout < 1)", ErrConfig, c.Dropout)
	case c.Hidden < 0:
		return fmt.Errorf("%w: Hidden=%d (want >= 0)", ErrConfig, c.Hidden)
	case c.InChannels < 0:
		return fmt.Errorf("%w: InChannels=%d (want >= 0)", ErrConfig, c.InChannels)
	case c.Size < 0:
		return fmt.Errorf("%w: Size=%d (want >= 0)", ErrConfig, c.Size)
	case c.Upsample != UpsamplePixelShuffle && c.Upsample != UpsampleConvTranspose:
		return fmt.Errorf("%w: Upsample=%q (want %q or %q)", ErrConfig, c.Upsample, UpsamplePixelShuffle, UpsampleConvTranspose)
	}
	switch task {
	case TaskClassify, TaskMultiLabel, TaskSegment:
		if c.Classes < 1 {
			return fmt.Errorf("%w: Classes=%d for task %s (want >= 1)", ErrConfig, c.Classes, task)
		}
	case TaskRegress:
		if c.Points < 1 {
			return fmt.Errorf("%w: Points=%d for task %s (want >= 1)", ErrConfig, c.Points, task)
		}
	default:
		return fmt.Errorf("%w: task %q (want %s|%s|%s|%s)", ErrArch, task, TaskClassify, TaskMultiLabel, TaskSegment, TaskRegress)
	}
	if w := scaled(64, c.Width); w < 2 {
		return fmt.Errorf("%w: Width=%v gives %d stem channels (want >= 2)", ErrConfig, c.Width, w)
	}
	return nil
}

// Model is a built architecture: an ONNX-shaped graph with one float input
// "input" (N,C,H,W) and one output "output", its initializers grouped the
// fastai way.
type Model struct {
	// Graph has input "input" (N,InChannels,H,W), N dynamic (-1), and
	// output "output": (N,Classes) logits, (N,2*Points) values, or
	// (N,Classes,H,W) logits for segmentation.
	Graph *graph.Graph
	// Groups lists every initializer name exactly once, per layer group,
	// body first, head last: [stem+layer1+layer2], [layer3+layer4],
	// [head or decoder] (fastai's resnet split; resnet8s, resnet14s:
	// [stem+layer1+layer2], [layer3], [head]). Use them for
	// discriminative learning rates and freeze/unfreeze.
	Groups [][]string
	// Arch is the canonical name, e.g. "resnet34-unet", "resnet18@0.25".
	Arch string
	// Task is one of the Task constants.
	Task string
	// Stride is the encoder's total stride: segmentation inputs need H
	// and W divisible by it (32, or 8 with SmallStem and for resnet14s).
	Stride int
}

// Trainable reports whether the initializer name is a trained parameter
// (conv/linear weights and biases, BatchNorm scale and bias) rather than a
// BatchNorm running statistic (a buffer, as PyTorch calls it).
func Trainable(name string) bool {
	return !strings.HasSuffix(name, ".running_mean") && !strings.HasSuffix(name, ".running_var")
}

// NumParams is the number of trained values (PyTorch's
// sum(p.numel() for p in model.parameters())), over the given groups (all
// groups when none are given).
func (m *Model) NumParams(groups ...int) int {
	if len(groups) == 0 {
		for i := range m.Groups {
			groups = append(groups, i)
		}
	}
	n := 0
	for _, gi := range groups {
		for _, name := range m.Groups[gi] {
			if Trainable(name) {
				n += m.Graph.Initializers[name].Numel()
			}
		}
	}
	return n
}

// Spec is a parsed architecture name.
type Spec struct {
	Depth int     // 18 or 34; 8 or 14 for the small-input resnet8s, resnet14s
	Width float64 // 0 when the name has no @width
	UNet  bool
	// Small is the small-input ResNet ("resnet8s", "resnet14s"): a 3x3/1
	// stem and three stride-2 stages (see resnetSmall); it has no U-Net.
	Small bool
}

var archRE = regexp.MustCompile(`^resnet(18|34|14s|8s)(-unet)?(?:@([0-9]*\.?[0-9]+))?(-unet)?$`)

// ParseArch parses "resnet18", "resnet34", "resnet18-unet", "resnet34-unet",
// each with an optional width, "resnet18@0.25" or "resnet18-unet@0.25"
// (also "resnet18@0.25-unet"), and the small-input "resnet8s" and
// "resnet14s" with an optional width, "resnet14s@0.25" (no -unet).
func ParseArch(name string) (Spec, error) {
	m := archRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(name)))
	if m == nil || (m[2] != "" && m[4] != "") || (strings.HasSuffix(m[1], "s") && (m[2] != "" || m[4] != "")) {
		return Spec{}, fmt.Errorf("%w: %q (want resnet18|resnet34, optional -unet, optional @width; or resnet8s|resnet14s, optional @width)", ErrArch, name)
	}
	s := Spec{UNet: m[2] != "" || m[4] != ""}
	s.Depth, _ = strconv.Atoi(strings.TrimSuffix(m[1], "s"))
	s.Small = strings.HasSuffix(m[1], "s")
	if m[3] != "" {
		w, err := strconv.ParseFloat(m[3], 64)
		if err != nil || w <= 0 {
			return Spec{}, fmt.Errorf("%w: width %q in %q (want a positive number)", ErrArch, m[3], name)
		}
		s.Width = w
	}
	return s, nil
}

// Name is the canonical name of s with width w: "resnet34-unet",
// "resnet18@0.25".
func (s Spec) Name(w float64) string {
	n := "resnet" + strconv.Itoa(s.Depth)
	if s.Small {
		n += "s"
	}
	if s.UNet {
		n += "-unet"
	}
	if w != 1 && w != 0 {
		n += "@" + strconv.FormatFloat(w, 'g', -1, 64)
	}
	return n
}

// Build builds the named architecture for task (empty task: segment for a
// U-Net, classify otherwise). A width in the name is used when cfg.Width is
// 0; giving both with different values is an error.
func Build(name, task string, cfg Config) (*Model, error) {
	spec, err := ParseArch(name)
	if err != nil {
		return nil, err
	}
	if task == "" {
		task = TaskClassify
		if spec.UNet {
			task = TaskSegment
		}
	}
	if spec.Width != 0 {
		if cfg.Width != 0 && cfg.Width != spec.Width {
			return nil, fmt.Errorf("%w: width %v in %q and Config.Width=%v disagree", ErrConfig, spec.Width, name, cfg.Width)
		}
		cfg.Width = spec.Width
	}
	if spec.UNet != (task == TaskSegment) {
		return nil, fmt.Errorf("%w: %q cannot do task %s (want a -unet arch for %s only)", ErrArch, name, task, TaskSegment)
	}
	cfg.setDefaults()
	if err := cfg.Validate(task); err != nil {
		return nil, err
	}
	b := newBuilder(spec.Name(cfg.Width), cfg)
	var enc encoder
	switch {
	case spec.Small && spec.Depth == 8:
		enc = b.resnetSmall(inputName, []int{1, 1, 1})
	case spec.Small:
		enc = b.resnetSmall(inputName, []int{2, 2, 2})
	case spec.Depth == 34:
		enc = b.resnet(inputName, []int{3, 4, 6, 3})
	default:
		enc = b.resnet(inputName, []int{2, 2, 2, 2})
	}
	var out string
	var outShape []int
	switch task {
	case TaskClassify, TaskMultiLabel:
		out = b.poolHead(enc.out, enc.channels, cfg.Classes)
		outShape = []int{-1, cfg.Classes}
	case TaskRegress:
		out = b.poolHead(enc.out, enc.channels, 2*cfg.Points)
		outShape = []int{-1, 2 * cfg.Points}
	case TaskSegment:
		out = b.unet(enc)
		hw := -1
		if cfg.Size > 0 {
			hw = cfg.Size
		}
		outShape = []int{-1, cfg.Classes, hw, hw}
	}
	b.finish(out, outShape)
	return &Model{Graph: b.g, Groups: b.groups, Arch: spec.Name(cfg.Width), Task: task, Stride: enc.stride}, nil
}

// scaled is round(c*w), at least 1.
func scaled(c int, w float64) int {
	n := int(math.Round(float64(c) * w))
	if n < 1 {
		n = 1
	}
	return n
}
