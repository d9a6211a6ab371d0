package arch

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"vireo/pkg/graph"
)

// torchvision's parameter counts with the plain 1000-class fc (512*1000 +
// 1000 = 513,000 of them): resnet18 11,689,512 and resnet34 21,797,672.
const torchFC = 512*1000 + 1000

func TestParamCountsMatchTorchvision(t *testing.T) {
	for _, tc := range []struct {
		arch  string
		torch int
	}{
		{"resnet18", 11_689_512},
		{"resnet34", 21_797_672},
	} {
		m, err := Build(tc.arch, TaskClassify, Config{Classes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		enc := m.NumParams(0, 1)
		if got, want := enc+torchFC, tc.torch; got != want {
			t.Errorf("%s: encoder %d + fc %d = %d params (want torchvision's %d)", tc.arch, enc, torchFC, got, want)
		}
		// fastai head: BN(1024), Linear(1024,512), BN(512), Linear(512,1000).
		head := 2*1024 + 1024*512 + 512 + 2*512 + 512*1000 + 1000
		if got := m.NumParams(2); got != head {
			t.Errorf("%s: head has %d params (want %d)", tc.arch, got, head)
		}
	}
}

func TestGroupsCoverInitializersOnce(t *testing.T) {
	for _, name := range []string{"resnet18", "resnet34@0.25", "resnet18-unet@0.125", "resnet34-unet", "resnet14s@0.25"} {
		for _, up := range []string{UpsamplePixelShuffle, UpsampleConvTranspose} {
			m, err := Build(name, "", Config{Classes: 5, Dropout: DefaultDropout, Upsample: up})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Groups) != 3 {
				t.Fatalf("%s: %d groups (want 3)", name, len(m.Groups))
			}
			seen := map[string]int{}
			for gi, g := range m.Groups {
				if len(g) == 0 {
					t.Errorf("%s: group %d is empty", name, gi)
				}
				for _, p := range g {
					seen[p]++
					if _, ok := m.Graph.Initializers[p]; !ok {
						t.Errorf("%s: group %d names %q, not an initializer", name, gi, p)
					}
				}
			}
			for p := range m.Graph.Initializers {
				if seen[p] != 1 {
					t.Errorf("%s: initializer %q is in %d groups (want 1)", name, p, seen[p])
				}
			}
			// Body groups hold the encoder only, the last group the rest.
			for _, p := range m.Groups[2] {
				if !(len(p) > 5 && (p[:5] == "head." || p[:8] == "decoder.")) {
					t.Errorf("%s: %q in the head group", name, p)
				}
			}
			if !slices.Contains(m.Groups[0], "layer2.0.conv1.weight") || !slices.Contains(m.Groups[1], "layer3.0.conv1.weight") {
				t.Errorf("%s: fastai's split puts layer2 in group 0 and layer3 in group 1", name)
			}
		}
	}
}

func TestGraphIsWellFormed(t *testing.T) {
	for _, name := range []string{"resnet18@0.25", "resnet34-unet@0.25"} {
		for _, small := range []bool{false, true} {
			m, err := Build(name, "", Config{Classes: 3, Dropout: 0.5, SmallStem: small})
			if err != nil {
				t.Fatal(err)
			}
			g := m.Graph
			defined := map[string]bool{"input": true}
			for n := range g.Initializers {
				defined[n] = true
			}
			names := map[string]bool{}
			// Nodes are appended in a topological order.
			for _, n := range g.Nodes {
				if names[n.Name] {
					t.Errorf("%s: duplicate node name %q", name, n.Name)
				}
				names[n.Name] = true
				for _, in := range n.Inputs {
					if !defined[in] {
						t.Errorf("%s: node %q reads %q before it is defined", name, n.Name, in)
					}
				}
				for _, o := range n.Outputs {
					if defined[o] {
						t.Errorf("%s: %q defined twice", name, o)
					}
					defined[o] = true
				}
			}
			if len(g.Outputs) != 1 || g.Outputs[0].Name != "output" || !defined["output"] {
				t.Errorf("%s: outputs %+v (want one defined \"output\")", name, g.Outputs)
			}
			if len(g.Inputs) != 1 || g.Inputs[0].Name != "input" || g.Inputs[0].Shape[0] != -1 || g.Inputs[0].Shape[1] != 3 {
				t.Errorf("%s: inputs %+v (want input (-1,3,H,W))", name, g.Inputs)
			}
			for n, tn := range g.Initializers {
				if tn.DType != graph.Float32 || len(tn.Float) != tn.Numel() || tn.Name != n {
					t.Errorf("%s: initializer %q: dtype %v, %d values for shape %v", name, n, tn.DType, len(tn.Float), tn.Shape)
				}
			}
			wantStride := 32
			if small {
				wantStride = 8
			}
			if m.Stride != wantStride {
				t.Errorf("%s small=%v: stride %d (want %d)", name, small, m.Stride, wantStride)
			}
		}
	}
}

// TestSmallResNetLayout checks resnet14s: the 3x3/1 stem at the input's
// resolution, three stride-2 stages of two BasicBlocks with the widths
// 128w,256w,512w, total stride 8, and no layer4; and resnet8s, one block
// per stage.
func TestSmallResNetLayout(t *testing.T) {
	m, err := Build("resnet14s@0.25", TaskClassify, Config{Classes: 10, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != "resnet14s@0.25" || m.Stride != 8 {
		t.Errorf("arch %q stride %d (want resnet14s@0.25, 8)", m.Arch, m.Stride)
	}
	shapes, err := graph.InferShapes(m.Graph, map[string][]int{"input": {2, 1, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int{
		"relu":           {2, 16, 28, 28},
		"layer1.1.relu2": {2, 32, 14, 14},
		"layer2.1.relu2": {2, 64, 7, 7},
		"layer3.1.relu2": {2, 128, 4, 4},
	} {
		if got := shapes[name]; !slices.Equal(got, want) {
			t.Errorf("%s: shape %v (want %v)", name, got, want)
		}
	}
	for _, w := range []string{"conv1.weight", "layer1.0.downsample.0.weight", "layer3.1.conv2.weight"} {
		if _, ok := m.Graph.Initializers[w]; !ok {
			t.Errorf("no initializer %s", w)
		}
	}
	for n := range m.Graph.Initializers {
		if len(n) > 6 && n[:6] == "layer4" {
			t.Errorf("initializer %s: resnet14s has no layer4", n)
		}
	}
	// resnet8s: one block per stage.
	m8, err := Build("resnet8s@0.25", TaskClassify, Config{Classes: 10, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m8.Graph.Initializers["layer3.0.conv2.weight"]; !ok || m8.Arch != "resnet8s@0.25" || m8.Stride != 8 {
		t.Errorf("resnet8s@0.25: arch %q stride %d, layer3.0 present %v (want resnet8s@0.25, 8, true)", m8.Arch, m8.Stride, ok)
	}
	for n := range m8.Graph.Initializers {
		if len(n) > 8 && n[:5] == "layer" && n[6:9] == ".1." {
			t.Errorf("resnet8s: initializer %s of a second block", n)
		}
	}
	if w := m.Graph.Initializers["conv1.weight"]; !slices.Equal(w.Shape, []int{16, 1, 3, 3}) {
		t.Errorf("conv1.weight shape %v (want [16 1 3 3])", w.Shape)
	}
	// Conv MACs at 28x28: stem 784*9*16; layer1 196*(16*9*32 + 3*32*9*32
	// + 16*32); layer2 49*(32*9*64 + 3*64*9*64 + 32*64); layer3
	// 16*(64*9*128 + 3*128*9*128 + 64*128); head 256*512 + 512*10.
	f, err := FLOPs(m.Graph, map[string][]int{"input": {1, 1, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	macs := 784*9*16 + 196*(16*9*32+3*32*9*32+16*32) + 49*(32*9*64+3*64*9*64+32*64) + 16*(64*9*128+3*128*9*128+64*128) + 256*512 + 512*10
	if f != int64(2*macs) {
		t.Errorf("FLOPs at 28x28: %d (want %d)", f, 2*macs)
	}
}

func TestDeterministicInit(t *testing.T) {
	build := func(seed uint64) *Model {
		m, err := Build("resnet18-unet@0.125", TaskSegment, Config{Classes: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b, c := build(7), build(7), build(8)
	if !reflect.DeepEqual(a.Graph, b.Graph) || !reflect.DeepEqual(a.Groups, b.Groups) {
		t.Error("two builds with the same seed differ")
	}
	w := "layer1.0.conv1.weight"
	if reflect.DeepEqual(a.Graph.Initializers[w].Float, c.Graph.Initializers[w].Float) {
		t.Errorf("seeds 7 and 8 give the same %s", w)
	}
}

func TestInitStatistics(t *testing.T) {
	m, err := Build("resnet34", TaskClassify, Config{Classes: 10, ZeroInitResidual: true})
	if err != nil {
		t.Fatal(err)
	}
	// Kaiming normal, fan_out: layer3.0.conv2 is (256,256,3,3), std
	// sqrt(2/(256*9)) = 0.02946.
	w := m.Graph.Initializers["layer3.0.conv2.weight"].Float
	var s, s2 float64
	for _, v := range w {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(w))
	mean, std := s/n, math.Sqrt(s2/n-(s/n)*(s/n))
	if want := 0.029463; abs(mean) > 0.001 || abs(std-want) > 0.02*want {
		t.Errorf("layer3.0.conv2.weight mean %.5f std %.5f (want 0 and %.5f)", mean, std, want)
	}
	for name, want := range map[string]float32{
		"layer3.0.bn2.weight": 0, "layer3.0.bn1.weight": 1, "bn1.weight": 1,
		"layer3.0.downsample.1.weight": 1, "bn1.bias": 0, "bn1.running_var": 1, "bn1.running_mean": 0,
	} {
		for _, v := range m.Graph.Initializers[name].Float {
			if v != want {
				t.Errorf("%s has %v (want all %v)", name, v, want)
				break
			}
		}
	}
}

func TestICNRInit(t *testing.T) {
	m, err := Build("resnet18-unet@0.125", TaskSegment, Config{Classes: 2})
	if err != nil {
		t.Fatal(err)
	}
	w := m.Graph.Initializers["decoder.block0.up.conv.weight"]
	cin := w.Shape[1]
	for c := 0; c < w.Shape[0]/4; c++ {
		for s := 1; s < 4; s++ {
			a := w.Float[(c*4)*cin : (c*4+1)*cin]
			b := w.Float[(c*4+s)*cin : (c*4+s+1)*cin]
			if !slices.Equal(a, b) {
				t.Fatalf("ICNR: sub-pixel %d of channel %d differs from sub-pixel 0", s, c)
			}
		}
	}
}

func TestParseArchAndErrors(t *testing.T) {
	for in, want := range map[string]Spec{
		"resnet18":            {Depth: 18},
		"ResNet34-unet":       {Depth: 34, UNet: true},
		"resnet18@0.25":       {Depth: 18, Width: 0.25},
		"resnet18-unet@0.125": {Depth: 18, Width: 0.125, UNet: true},
		"resnet34@.5-unet":    {Depth: 34, Width: 0.5, UNet: true},
		"resnet14s":           {Depth: 14, Small: true},
		"resnet14s@0.25":      {Depth: 14, Width: 0.25, Small: true},
		"resnet8s@0.5":        {Depth: 8, Width: 0.5, Small: true},
	} {
		got, err := ParseArch(in)
		if err != nil || got != want {
			t.Errorf("ParseArch(%q) = %+v, %v (want %+v)", in, got, err, want)
		}
	}
	for _, bad := range []string{"resnet50", "resnet18-unet@0.5-unet", "resnet18@", "resnet18@-1", "vgg16", "", "resnet14s-unet", "resnet14s@0.25-unet", "resnet14", "resnet8s-unet", "resnet18s"} {
		if _, err := ParseArch(bad); !errors.Is(err, ErrArch) {
			t.Errorf("ParseArch(%q) error %v (want ErrArch)", bad, err)
		}
	}
	m, err := Build("resnet18-unet@0.25", "", Config{Classes: 2})
	if err != nil || m.Arch != "resnet18-unet@0.25" || m.Task != TaskSegment {
		t.Errorf("Build: %v, %v", m, err)
	}
	for _, tc := range []struct {
		name, task string
		cfg        Config
		want       error
	}{
		{"resnet18-unet", TaskClassify, Config{Classes: 2}, ErrArch},
		{"resnet14s", TaskSegment, Config{Classes: 2}, ErrArch},
		{"resnet18", TaskSegment, Config{Classes: 2}, ErrArch},
		{"resnet18", "detect", Config{Classes: 2}, ErrArch},
		{"resnet18", TaskClassify, Config{}, ErrConfig},
		{"resnet18", TaskRegress, Config{}, ErrConfig},
		{"resnet18@0.5", TaskClassify, Config{Classes: 2, Width: 0.25}, ErrConfig},
		{"resnet18", TaskClassify, Config{Classes: 2, Dropout: 1}, ErrConfig},
		{"resnet18", TaskClassify, Config{Classes: 2, Width: 0.01}, ErrConfig},
		{"resnet18-unet", TaskSegment, Config{Classes: 2, Upsample: "bilinear"}, ErrConfig},
	} {
		if _, err := Build(tc.name, tc.task, tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("Build(%q, %q, %+v) error %v (want %v)", tc.name, tc.task, tc.cfg, err, tc.want)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
