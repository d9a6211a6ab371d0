package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/cpu"
	"vireo/pkg/kernels/kernelstest"
)

// The conformance suite's tensors are small, so its ops run inline. These
// tests run the pool and layout ops on tensors big enough to split across
// threads and require the 2-thread result to equal the 1-thread result
// bit for bit (every output and gradient element is computed by the same
// loop either way). Under -race they also check the parallel paths do not
// share writes.

// parallelCase is one op run as y = op(c, x) on fresh outputs.
type parallelCase struct {
	name   string
	xs, ys kernels.Shape
	op     func(c *cpu.CPU, y, x *kernels.Tensor) error
}

func parallelCases() []parallelCase {
	pool := func(k, s, pad int, kind kernels.PoolKind, ceil bool) kernels.PoolParams {
		return kernels.PoolParams{Kind: kind, Kernel: [2]int{k, k}, Strides: [2]int{s, s}, Pads: [4]int{pad, pad, pad, pad}, CeilMode: ceil, CountIncludePad: kind == kernels.PoolAvg}
	}
	img := kernels.Shape{2, 24, 33, 31}
	var cs []parallelCase
	for _, p := range []kernels.PoolParams{pool(3, 2, 1, kernels.PoolMax, false), pool(3, 2, 1, kernels.PoolAvg, true), pool(2, 2, 0, kernels.PoolMax, true)} {
		ys, _ := kernels.Pool2DOutShape(img, p)
		cs = append(cs,
			parallelCase{fmt.Sprintf("pool2d %+v", p), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Pool2D(y, x, p) }},
			parallelCase{fmt.Sprintf("pool2d backward %+v", p), ys, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error {
				// x is fixed (a deterministic function of its shape).
				x := kernels.FromSlice(kernelstest.Rand(rand.New(rand.NewPCG(1, 1)), img.Numel(), -1, 1), img...)
				return c.Pool2DBackward(dx, dy, x, nil, p)
			}})
	}
	for _, kind := range []kernels.PoolKind{kernels.PoolMax, kernels.PoolAvg} {
		cs = append(cs, parallelCase{fmt.Sprintf("globalpool %d", kind), img, kernels.Shape{2, 24, 1, 1}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.GlobalPool(y, x, kind) }})
	}
	for _, rp := range []kernels.ResizeParams{
		{Mode: kernels.ResizeNearest, Scales: []float32{1, 1, 2, 2}},
		{Mode: kernels.ResizeNearest, Coord: kernels.CoordAsymmetric, Nearest: kernels.NearestFloor, Scales: []float32{1, 1, 0.7, 1.6}},
		{Mode: kernels.ResizeLinear, Coord: kernels.CoordAlignCorners, Scales: []float32{1, 1, 1.5, 0.5}},
	} {
		ys, _ := kernels.ResizeOutShape(img, rp)
		cs = append(cs,
			parallelCase{fmt.Sprintf("resize %+v", rp), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Resize(y, x, rp) }},
			parallelCase{fmt.Sprintf("resize backward %+v", rp), ys, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error { return c.ResizeBackward(dx, dy, rp) }})
	}
	for _, mode := range []kernels.PadMode{kernels.PadConstant, kernels.PadReflect, kernels.PadEdge} {
		pp := kernels.PadParams{Mode: mode, Pads: []int{0, 1, 3, 2, 1, 0, 4, -1}, Value: 0.5}
		ys, _ := kernels.PadOutShape(img, pp)
		cs = append(cs,
			parallelCase{fmt.Sprintf("pad %d", mode), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Pad(y, x, pp) }},
			parallelCase{fmt.Sprintf("pad backward %d", mode), ys, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error { return c.PadBackward(dx, dy, pp) }})
	}
	sp := kernels.SliceParams{Starts: []int{1, 20, 0, 30}, Ends: []int{-1, 2, 33, 0}, Steps: []int{-1, -3, 2, -1}}
	sys, _ := kernels.SliceOutShape(img, sp)
	cs = append(cs,
		parallelCase{"slice", img, sys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Slice(y, x, sp) }},
		parallelCase{"slice backward", sys, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error { return c.SliceBackward(dx, dy, sp) }})
	for _, crd := range []bool{false, true} {
		dp := kernels.DepthToSpaceParams{Blocksize: 2, CRD: crd}
		ys, _ := kernels.DepthToSpaceOutShape(img, dp)
		cs = append(cs,
			parallelCase{fmt.Sprintf("depthtospace %v", crd), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.DepthToSpace(y, x, dp) }},
			parallelCase{fmt.Sprintf("depthtospace backward %v", crd), ys, img, func(c *cpu.CPU, dx, dy *kernels.Tensor) error { return c.DepthToSpaceBackward(dx, dy, dp) }})
	}
	for _, perm := range [][]int{{0, 2, 3, 1}, {0, 3, 1, 2}, {3, 1, 0, 2}, {1, 0, 2, 3}} {
		ys, _ := kernels.TransposeOutShape(img, perm)
		cs = append(cs, parallelCase{fmt.Sprintf("transpose %v", perm), img, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Transpose(y, x, perm) }})
	}
	cs = append(cs,
		parallelCase{"broadcastto", kernels.Shape{24, 1, 31}, img, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.BroadcastTo(y, x) }},
		parallelCase{"concat", img, kernels.Shape{2, 48, 33, 31}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Concat(y, []*kernels.Tensor{x, x}, 1) }},
		parallelCase{"split", kernels.Shape{2, 48, 33, 31}, img, func(c *cpu.CPU, y, x *kernels.Tensor) error {
			return c.Split([]*kernels.Tensor{y, kernels.NewHost(img...)}, x, 1)
		}})
	return cs
}

func TestPoolLayoutParallelMatchesSerial(t *testing.T) {
	c1, c2 := newCPU(t, 1), newCPU(t, 2)
	for _, pc := range parallelCases() {
		x := kernels.FromSlice(kernelstest.Rand(rand.New(rand.NewPCG(2, 3)), pc.xs.Numel(), -1, 1), pc.xs...)
		y1, y2 := kernels.NewHost(pc.ys...), kernels.NewHost(pc.ys...)
		if err := pc.op(c1, y1, x); err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		if err := pc.op(c2, y2, x); err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		kernelstest.AssertClose(t, pc.name+" (2 threads vs 1)", y2.Data, y1.Data, kernelstest.TolExact)
	}
}

// BenchmarkPool2D measures max and average pooling, 3x3 stride 2 pad 1
// (ResNet's stem pool) and 2x2 stride 2; GB/s counts x read plus y written.
func BenchmarkPool2D(b *testing.B) {
	for _, bc := range []struct {
		name string
		xs   kernels.Shape
		p    kernels.PoolParams
	}{
		{"max3x3s2/1x64x112x112", kernels.Shape{1, 64, 112, 112}, kernels.PoolParams{Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}},
		{"avg3x3s2/1x64x112x112", kernels.Shape{1, 64, 112, 112}, kernels.PoolParams{Kind: kernels.PoolAvg, Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}},
		{"max2x2s2/8x64x56x56", kernels.Shape{8, 64, 56, 56}, kernels.PoolParams{Kernel: [2]int{2, 2}, Strides: [2]int{2, 2}}},
	} {
		ys, err := kernels.Pool2DOutShape(bc.xs, bc.p)
		if err != nil {
			b.Fatal(err)
		}
		benchThreads(b, bc.name, bc.xs, ys, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Pool2D(y, x, bc.p) })
	}
}

// benchThreads runs y = op(x) on 1 and 2 threads, reporting GB/s of x read
// plus y written.
func benchThreads(b *testing.B, name string, xs, ys kernels.Shape, op func(c *cpu.CPU, y, x *kernels.Tensor) error) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
			c := newCPU(b, threads)
			x := kernels.FromSlice(kernelstest.Rand(rand.New(rand.NewPCG(1, 2)), xs.Numel(), -1, 1), xs...)
			y := kernels.NewHost(ys...)
			b.SetBytes(int64(4 * (xs.Numel() + ys.Numel())))
			b.ResetTimer()
			for range b.N {
				if err := op(c, y, x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(4*(xs.Numel()+ys.Numel()))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkLayout measures the layout ops the input and decoder paths use.
func BenchmarkLayout(b *testing.B) {
	img := kernels.Shape{8, 64, 56, 56}
	nhwc := kernels.Shape{8, 56, 56, 64}
	benchThreads(b, "transpose_nchw_nhwc/8x64x56x56", img, nhwc, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Transpose(y, x, []int{0, 2, 3, 1}) })
	benchThreads(b, "transpose_nhwc_nchw/8x56x56x64", nhwc, img, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Transpose(y, x, []int{0, 3, 1, 2}) })
	up := kernels.ResizeParams{Scales: []float32{1, 1, 2, 2}}
	benchThreads(b, "resize_nearest2x/2x64x56x56", kernels.Shape{2, 64, 56, 56}, kernels.Shape{2, 64, 112, 112}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Resize(y, x, up) })
	lin := kernels.ResizeParams{Mode: kernels.ResizeLinear, Scales: []float32{1, 1, 2, 2}}
	benchThreads(b, "resize_linear2x/2x64x56x56", kernels.Shape{2, 64, 56, 56}, kernels.Shape{2, 64, 112, 112}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Resize(y, x, lin) })
	pp := kernels.PadParams{Mode: kernels.PadReflect, Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}}
	benchThreads(b, "pad_reflect1/8x64x56x56", img, kernels.Shape{8, 64, 58, 58}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Pad(y, x, pp) })
	benchThreads(b, "concat_c/8x64x56x56x2", img, kernels.Shape{8, 128, 56, 56}, func(c *cpu.CPU, y, x *kernels.Tensor) error { return c.Concat(y, []*kernels.Tensor{x, x}, 1) })
}

// TestMaxPoolBackwardTies: where a window holds equal maxima, its gradient
// goes to the first in row-major order, for windows inside the plane and
// windows that overlap the padding alike (the C kernel's two paths).
func TestMaxPoolBackwardTies(t *testing.T) {
	c := newCPU(t, 1)
	p := kernels.PoolParams{Kind: kernels.PoolMax, Kernel: [2]int{3, 3}, Strides: [2]int{2, 2}, Pads: [4]int{1, 1, 1, 1}}
	xs := kernels.Shape{1, 1, 5, 5}
	ys, err := kernels.Pool2DOutShape(xs, p) // 3x3
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 25)
	for i := range x {
		x[i] = 1 // every window ties
	}
	dy := make([]float32, ys.Numel())
	for i := range dy {
		dy[i] = float32(int(1) << i)
	}
	dx := kernels.FromSlice(make([]float32, 25), xs...)
	if err := c.Pool2DBackward(dx, kernels.FromSlice(dy, ys...), kernels.FromSlice(x, xs...), nil, p); err != nil {
		t.Fatal(err)
	}
	// Window (oh, ow) starts at (2oh-1, 2ow-1); its first in-plane element
	// is (max(0, 2oh-1), max(0, 2ow-1)).
	want := make([]float32, 25)
	for oh := range 3 {
		for ow := range 3 {
			want[max(0, 2*oh-1)*5+max(0, 2*ow-1)] += dy[oh*3+ow]
		}
	}
	for i := range want {
		if dx.Data[i] != want[i] {
			t.Fatalf("dx = %v, want %v", dx.Data, want)
		}
	}
}

// TestDepthToSpaceDefinition checks DepthToSpace and its backward against
// ONNX's definition, element by element, for blocks 2 (the vectorised
// case) and 3, both channel orders, odd widths and 1 and 2 threads.
func TestDepthToSpaceDefinition(t *testing.T) {
	for _, threads := range []int{1, 2} {
		c := newCPU(t, threads)
		for _, b := range []int{2, 3} {
			for _, crd := range []bool{false, true} {
				N, oc, H, W := 2, 3, 5, 7
				C := oc * b * b
				p := kernels.DepthToSpaceParams{Blocksize: b, CRD: crd}
				x := kernels.FromSlice(kernelstest.Rand(rand.New(rand.NewPCG(uint64(b), 9)), N*C*H*W, -1, 1), N, C, H, W)
				ys, err := kernels.DepthToSpaceOutShape(x.Shape, p)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]float32, ys.Numel())
				for n := range N {
					for ch0 := range oc {
						for h := range H * b {
							for w := range W * b {
								i, j := h%b, w%b
								ch := (i*b+j)*oc + ch0
								if crd {
									ch = ch0*b*b + i*b + j
								}
								want[((n*oc+ch0)*H*b+h)*W*b+w] = x.Data[((n*C+ch)*H+h/b)*W+w/b]
							}
						}
					}
				}
				name := fmt.Sprintf("b=%d crd=%v threads=%d", b, crd, threads)
				y := kernels.NewHost(ys...)
				if err := c.DepthToSpace(y, x, p); err != nil {
					t.Fatal(err)
				}
				kernelstest.AssertClose(t, name, y.Data, want, kernelstest.TolExact)
				// The backward of a permutation is its inverse.
				dx := kernels.NewHost(x.Shape...)
				if err := c.DepthToSpaceBackward(dx, y, p); err != nil {
					t.Fatal(err)
				}
				kernelstest.AssertClose(t, name+" backward", dx.Data, x.Data, kernelstest.TolExact)
			}
		}
	}
}
