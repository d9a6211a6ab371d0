package arch

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
)

// trainCase is one architecture overfitting one fixed batch.
type trainCase struct {
	arch, task string
	cfg        Config
	n, size    int
	// maxSteps bounds the AdamW steps; training stops once the loss is
	// under target and at least minSteps were taken (so BN's running
	// statistics have settled for the inference check).
	minSteps, maxSteps int
	target             float64
	// infTarget bounds the loss of the inference program (BN running
	// statistics instead of batch statistics) after training. It is looser
	// for the regressor: random targets on a 1x1 layer4 map are memorised
	// partly through the batch statistics (a constant guess scores 1/3).
	infTarget float64
	lr        float32
}

func newCPU(t testing.TB) kernels.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// batch makes a fixed synthetic batch for the task: x (n,3,s,s) and the
// target in the layout the loss wants.
//   - classify: random images, labels i%Classes (memorisation);
//   - multilabel: random images, random 0/1 targets (n,Classes);
//   - regress: random images, random points in [-1,1] (n,2*Points);
//   - segment: noise plus one bright 4-aligned square per image on channel
//     (class-1); the mask is the square's class, 0 elsewhere (n,s,s).
func batch(tc trainCase, rng *rand.Rand) (x []float32, target []float32, tshape []int) {
	n, s := tc.n, tc.size
	x = make([]float32, n*3*s*s)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	switch tc.task {
	case TaskClassify:
		target = make([]float32, n)
		for i := range target {
			target[i] = float32(i % tc.cfg.Classes)
		}
		return x, target, []int{n}
	case TaskMultiLabel:
		target = make([]float32, n*tc.cfg.Classes)
		for i := range target {
			target[i] = float32(rng.IntN(2))
		}
		return x, target, []int{n, tc.cfg.Classes}
	case TaskRegress:
		target = make([]float32, n*2*tc.cfg.Points)
		for i := range target {
			target[i] = float32(2*rng.Float64() - 1)
		}
		return x, target, []int{n, 2 * tc.cfg.Points}
	}
	for i := range x {
		x[i] *= 0.3
	}
	target = make([]float32, n*s*s)
	for i := 0; i < n; i++ {
		cls := 1 + i%(tc.cfg.Classes-1)
		side := 4 * (1 + rng.IntN(s/8))
		y0, x0 := 4*rng.IntN((s-side)/4+1), 4*rng.IntN((s-side)/4+1)
		for y := y0; y < y0+side; y++ {
			for xx := x0; xx < x0+side; xx++ {
				target[(i*s+y)*s+xx] = float32(cls)
				x[((i*3+(cls-1)%3)*s+y)*s+xx] += 1.5
			}
		}
	}
	return x, target, []int{n, s, s}
}

// lossFns returns the forward and backward of the task's loss.
func lossFns(b kernels.Backend, task string) (func(l, y, t *kernels.Tensor) error, func(d, y, t *kernels.Tensor) error) {
	switch task {
	case TaskMultiLabel:
		return func(l, y, t *kernels.Tensor) error { return b.BCEWithLogits(l, y, t, nil) },
			func(d, y, t *kernels.Tensor) error { return b.BCEWithLogitsBackward(d, y, t, nil, 1) }
	case TaskRegress:
		return func(l, y, t *kernels.Tensor) error { return b.MSE(l, y, t, nil) },
			func(d, y, t *kernels.Tensor) error { return b.MSEBackward(d, y, t, nil, 1) }
	}
	return func(l, y, t *kernels.Tensor) error { return b.CrossEntropy(l, y, t, nil, -1) },
		func(d, y, t *kernels.Tensor) error { return b.CrossEntropyBackward(d, y, t, nil, -1, 1) }
}

func upload(t testing.TB, b kernels.Backend, v []float32, shape ...int) *kernels.Tensor {
	t.Helper()
	x, err := b.Alloc(kernels.Shape(shape))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(x, v); err != nil {
		t.Fatal(err)
	}
	return x
}

func download(t testing.TB, b kernels.Backend, x *kernels.Tensor) []float32 {
	t.Helper()
	v := make([]float32, x.Numel())
	if err := b.Download(v, x); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestArchitecturesTrain overfits each architecture (tiny width) on a
// fixed batch with the graph's Backward and the backend's AdamW, and checks
// that the first backward reaches every trained parameter.
func TestArchitecturesTrain(t *testing.T) {
	cases := []trainCase{
		{arch: "resnet18@0.125", task: TaskClassify, cfg: Config{Classes: 4, SmallStem: true, Dropout: 0.1}, n: 8, size: 16, minSteps: 40, maxSteps: 120, target: 0.01, infTarget: 0.1, lr: 3e-3},
		{arch: "resnet34@0.125", task: TaskMultiLabel, cfg: Config{Classes: 5, SmallStem: true}, n: 8, size: 16, minSteps: 40, maxSteps: 120, target: 0.02, infTarget: 0.1, lr: 3e-3},
		{arch: "resnet18@0.125", task: TaskRegress, cfg: Config{Points: 2}, n: 8, size: 32, minSteps: 40, maxSteps: 150, target: 0.005, infTarget: 0.15, lr: 3e-3},
		{arch: "resnet18-unet@0.125", task: TaskSegment, cfg: Config{Classes: 3, SmallStem: true}, n: 4, size: 16, minSteps: 40, maxSteps: 150, target: 0.05, infTarget: 0.2, lr: 3e-3},
		{arch: "resnet34-unet@0.125", task: TaskSegment, cfg: Config{Classes: 3, Upsample: UpsampleConvTranspose}, n: 4, size: 32, minSteps: 40, maxSteps: 150, target: 0.05, infTarget: 0.2, lr: 3e-3},
		{arch: "resnet8s@0.125", task: TaskRegress, cfg: Config{Points: 2}, n: 8, size: 16, minSteps: 40, maxSteps: 150, target: 0.005, infTarget: 0.15, lr: 3e-3},
		{arch: "resnet14s@0.125", task: TaskClassify, cfg: Config{Classes: 4, Dropout: 0.1}, n: 8, size: 16, minSteps: 40, maxSteps: 120, target: 0.01, infTarget: 0.1, lr: 3e-3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%s", tc.arch, tc.task), func(t *testing.T) {
			trainOne(t, tc)
		})
	}
}

func trainOne(t *testing.T, tc trainCase) {
	b := newCPU(t)
	tc.cfg.Seed = 1
	m, err := Build(tc.arch, tc.task, tc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	inShape := []int{tc.n, 3, tc.size, tc.size}
	prog, err := graph.Compile(m.Graph, b, graph.Options{InputShapes: map[string][]int{"input": inShape}, Training: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()

	// The program's parameters are exactly the model's trained
	// initializers.
	params := prog.Params()
	var want, got []string
	for _, g := range m.Groups {
		for _, p := range g {
			if Trainable(p) {
				want = append(want, p)
			}
		}
	}
	for _, p := range params {
		got = append(got, p.Name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("program params (%d) differ from the model's trainable initializers (%d)", len(got), len(want))
	}

	rng := rand.New(rand.NewPCG(2, 3))
	xv, tv, tshape := batch(tc, rng)
	x := upload(t, b, xv, inShape...)
	target := upload(t, b, tv, tshape...)
	lossT := upload(t, b, []float32{0}, 1)
	fwdLoss, bwdLoss := lossFns(b, tc.task)
	mom := make([][2]*kernels.Tensor, len(params))
	for i, p := range params {
		for j := range mom[i] {
			if mom[i][j], err = b.Alloc(p.Value.Shape); err != nil {
				t.Fatal(err)
			}
		}
	}
	var dy *kernels.Tensor
	first, last := math.NaN(), math.NaN()
	step := 0
	for ; step < tc.maxSteps; step++ {
		outs, err := prog.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		y := outs[0]
		if dy == nil {
			if dy, err = b.Alloc(y.Shape); err != nil {
				t.Fatal(err)
			}
		}
		if err := fwdLoss(lossT, y, target); err != nil {
			t.Fatal(err)
		}
		last = float64(download(t, b, lossT)[0])
		if step == 0 {
			first = last
		}
		if math.IsNaN(last) {
			t.Fatalf("step %d: loss is NaN", step)
		}
		if last < tc.target && step >= tc.minSteps {
			break
		}
		if err := bwdLoss(dy, y, target); err != nil {
			t.Fatal(err)
		}
		if err := prog.Backward(dy); err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			var dead []string
			for _, p := range params {
				if p.Grad == nil {
					dead = append(dead, p.Name+" (nil)")
					continue
				}
				nz := false
				for _, v := range download(t, b, p.Grad) {
					if v != 0 {
						nz = true
						break
					}
				}
				if !nz {
					dead = append(dead, p.Name)
				}
			}
			if len(dead) > 0 {
				t.Errorf("after one backward, %d of %d params have an all-zero gradient: %v", len(dead), len(params), dead)
			}
		}
		for i, p := range params {
			if err := b.AdamWStep(p.Value, p.Grad, mom[i][0], mom[i][1], kernels.AdamWParams{
				LR: tc.lr, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, Step: step + 1,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !(last < tc.target) {
		t.Fatalf("%s %s: loss %.4f after %d steps (from %.4f; want < %v)", m.Arch, tc.task, last, step, first, tc.target)
	}

	// The trained weights and running statistics, written back to the
	// graph, give an inference program (Conv+BN folded, Dropout off) that
	// also fits the batch.
	if err := prog.SyncToGraph(); err != nil {
		t.Fatal(err)
	}
	inf, err := graph.Compile(m.Graph, b, graph.Options{InputShapes: map[string][]int{"input": inShape}})
	if err != nil {
		t.Fatal(err)
	}
	defer inf.Close()
	outs, err := inf.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := fwdLoss(lossT, outs[0], target); err != nil {
		t.Fatal(err)
	}
	infLoss := float64(download(t, b, lossT)[0])
	t.Logf("%s %s: loss %.4f -> %.4f in %d steps; inference loss %.4f", m.Arch, tc.task, first, last, step, infLoss)
	if !(infLoss < tc.infTarget) {
		t.Errorf("%s %s: inference-mode loss %.4f (training-mode %.4f; want < %v)", m.Arch, tc.task, infLoss, last, tc.infTarget)
	}
}
