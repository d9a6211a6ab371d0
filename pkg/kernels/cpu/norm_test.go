package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// bnBig is big enough for every batch-norm loop to split across threads.
var bnBig = kernels.Shape{4, 32, 17, 19}

// TestBatchNormParallelMatchesSerial runs the three batch-norm kernels on
// 1 and 2 threads: each output element is computed by the same loop either
// way, so the results must agree bit for bit.
func TestBatchNormParallelMatchesSerial(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	c := bnBig[1]
	x := kernels.FromSlice(kernelstest.Rand(r, bnBig.Numel(), -2, 2), bnBig...)
	dy := kernels.FromSlice(kernelstest.Rand(r, bnBig.Numel(), -1, 1), bnBig...)
	scale := kernels.FromSlice(kernelstest.Rand(r, c, 0.5, 2), c)
	bias := kernels.FromSlice(kernelstest.Rand(r, c, -1, 1), c)
	mean := kernels.FromSlice(kernelstest.Rand(r, c, -1, 1), c)
	variance := kernels.FromSlice(kernelstest.Rand(r, c, 0.1, 2), c)
	type out struct{ y, rm, rv, sm, si, dx, ds, db, yi []float32 }
	run := func(threads int) out {
		cb := newCPU(t, threads)
		y, yi := kernels.NewHost(bnBig...), kernels.NewHost(bnBig...)
		rm, rv := kernels.FromSlice(append([]float32(nil), mean.Data...), c), kernels.FromSlice(append([]float32(nil), variance.Data...), c)
		sm, si := kernels.NewHost(c), kernels.NewHost(c)
		if err := cb.BatchNormInference(yi, x, scale, bias, mean, variance, 1e-5); err != nil {
			t.Fatal(err)
		}
		if err := cb.BatchNormTraining(y, x, scale, bias, rm, rv, sm, si, 1e-5, 0.9); err != nil {
			t.Fatal(err)
		}
		dx, ds, db := kernels.NewHost(bnBig...), kernels.NewHost(c), kernels.NewHost(c)
		if err := cb.BatchNormBackward(dx, ds, db, dy, x, scale, sm, si); err != nil {
			t.Fatal(err)
		}
		return out{y.Data, rm.Data, rv.Data, sm.Data, si.Data, dx.Data, ds.Data, db.Data, yi.Data}
	}
	o1, o2 := run(1), run(2)
	for _, p := range []struct {
		name string
		a, b []float32
	}{{"inference y", o1.yi, o2.yi}, {"training y", o1.y, o2.y}, {"running mean", o1.rm, o2.rm}, {"running var", o1.rv, o2.rv},
		{"saved mean", o1.sm, o2.sm}, {"saved invstd", o1.si, o2.si}, {"dx", o1.dx, o2.dx}, {"dscale", o1.ds, o2.ds}, {"dbias", o1.db, o2.db}} {
		kernelstest.AssertClose(t, p.name+" (2 threads vs 1)", p.b, p.a, kernelstest.TolExact)
	}
}

// TestONNXNodeBatchNorm runs ONNX's BatchNormalization node cases
// (inference and training_mode) on the CPU backend. ONNX's reference
// updates the running variance with the biased batch variance; our
// contract (and PyTorch) uses the unbiased one, so the expected running
// variance is converted before comparing: with M values per channel,
// ours = theirs + (theirs - momentum*input_var)/(M-1).
func TestONNXNodeBatchNorm(t *testing.T) {
	if _, err := os.Stat(onnxNodeDir); err != nil {
		t.Skipf("ONNX node cases not installed (%v); install Debian's libonnx-testdata", err)
	}
	c := newCPU(t, 2)
	dirs, err := os.ReadDir(onnxNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		name := d.Name()
		if !strings.HasPrefix(name, "test_batchnorm_") {
			continue
		}
		tc, err := pbLoadCase(filepath.Join(onnxNodeDir, name))
		if err != nil {
			t.Errorf("%s: load: %v", name, err)
			continue
		}
		got, want, err := runBatchNormCase(c, tc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for k := range got {
			if _, ok := kernelstest.Close(got[k], want[k], kernelstest.TolF32); !ok {
				t.Errorf("%s: output %d differs:\n got %v\nwant %v", name, k, trunc(got[k]), trunc(want[k]))
			}
		}
		ran++
	}
	t.Logf("ran %d ONNX BatchNormalization node cases", ran)
	if ran < 4 {
		t.Errorf("only %d ONNX batchnorm cases ran (want >= 4)", ran)
	}
}

func runBatchNormCase(c *cpu.CPU, tc *pbCase) (got, want [][]float32, err error) {
	if tc.op != "BatchNormalization" || len(tc.inputs) != 5 {
		return nil, nil, fmt.Errorf("op %s with %d inputs (want BatchNormalization with 5)", tc.op, len(tc.inputs))
	}
	ts := make([]*kernels.Tensor, 5)
	for i, in := range tc.inputs {
		if in == nil || in.dtype != 1 {
			return nil, nil, fmt.Errorf("input %d is not float", i)
		}
		ts[i] = kernels.FromSlice(append([]float32(nil), in.floats...), in.dims...)
	}
	eps, momentum := float32(1e-5), float32(0.9)
	if a, ok := tc.attrs["epsilon"]; ok {
		eps = a.f
	}
	if a, ok := tc.attrs["momentum"]; ok {
		momentum = a.f
	}
	x := ts[0]
	y := kernels.NewHost(x.Shape...)
	if tc.attrs["training_mode"].i == 0 {
		if err := c.BatchNormInference(y, x, ts[1], ts[2], ts[3], ts[4], eps); err != nil {
			return nil, nil, err
		}
		return [][]float32{y.Data}, [][]float32{tc.outputs[0].floats}, nil
	}
	ch := x.Shape[1]
	inVar := append([]float32(nil), ts[4].Data...)
	sm, si := kernels.NewHost(ch), kernels.NewHost(ch)
	if err := c.BatchNormTraining(y, x, ts[1], ts[2], ts[3], ts[4], sm, si, eps, momentum); err != nil {
		return nil, nil, err
	}
	if len(tc.outputs) != 3 {
		return nil, nil, fmt.Errorf("%d outputs (want 3)", len(tc.outputs))
	}
	m := float32(x.Numel() / ch)
	wantVar := make([]float32, ch)
	for k, v := range tc.outputs[2].floats {
		wantVar[k] = v + (v-momentum*inVar[k])/(m-1)
	}
	return [][]float32{y.Data, ts[3].Data, ts[4].Data}, [][]float32{tc.outputs[0].floats, tc.outputs[1].floats, wantVar}, nil
}

// BenchmarkBatchNorm measures the three batch-norm kernels on a ResNet
// stage-1 activation; GB/s counts the tensors read and written (x, y for
// the forwards; x, dy, dx for the backward).
func BenchmarkBatchNorm(b *testing.B) {
	for _, xs := range []kernels.Shape{{8, 64, 56, 56}, {64, 64, 7, 7}} {
		benchBatchNorm(b, xs)
	}
}

func benchBatchNorm(b *testing.B, xs kernels.Shape) {
	ch := xs[1]
	r := rand.New(rand.NewPCG(1, 2))
	x := kernels.FromSlice(kernelstest.Rand(r, xs.Numel(), -1, 1), xs...)
	pc := func(lo, hi float32) *kernels.Tensor { return kernels.FromSlice(kernelstest.Rand(r, ch, lo, hi), ch) }
	scale, bias, mean, variance := pc(0.5, 2), pc(-1, 1), pc(-1, 1), pc(0.1, 2)
	sm, si := kernels.NewHost(ch), kernels.NewHost(ch)
	for _, threads := range []int{1, 2} {
		for _, op := range []string{"inference", "training", "backward"} {
			b.Run(fmt.Sprintf("%s/%dx%dx%dx%d/threads=%d", op, xs[0], xs[1], xs[2], xs[3], threads), func(b *testing.B) {
				c := newCPU(b, threads)
				y := kernels.NewHost(xs...)
				tensors := 2
				if op == "backward" {
					tensors = 3
					if err := c.BatchNormTraining(y, x, scale, bias, nil, nil, sm, si, 1e-5, 0.9); err != nil {
						b.Fatal(err)
					}
				}
				dx := kernels.NewHost(xs...)
				bytes := int64(4 * tensors * xs.Numel())
				b.SetBytes(bytes)
				b.ResetTimer()
				for range b.N {
					var err error
					switch op {
					case "inference":
						err = c.BatchNormInference(y, x, scale, bias, mean, variance, 1e-5)
					case "training":
						err = c.BatchNormTraining(y, x, scale, bias, mean, variance, sm, si, 1e-5, 0.9)
					default:
						err = c.BatchNormBackward(dx, nil, nil, y, x, scale, sm, si)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}
