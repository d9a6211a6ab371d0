package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels"
	"vireo/pkg/kernels/kernelstest"
)

// resnet18At64 are the distinct convolutions of a ResNet-18 training step
// at 64x64 with batch 32 (`vireo bench train`'s default), stem first.
var resnet18At64 = []benchConv{
	{32, 3, 64, 64, 7, 2, 1},
	{32, 64, 16, 64, 3, 1, 1},
	{32, 64, 16, 128, 3, 2, 1},
	{32, 128, 8, 128, 3, 1, 1},
	{32, 64, 16, 128, 1, 2, 1},
	{32, 128, 8, 256, 3, 2, 1},
	{32, 256, 4, 256, 3, 1, 1},
	{32, 256, 4, 512, 3, 2, 1},
	{32, 512, 2, 512, 3, 1, 1},
}

// BenchmarkConv2DBackwardResNet18 times the weight gradient (grad=dw)
// and the input gradient (grad=dx) of each convolution of a ResNet-18
// step apart, at 1 and 2 threads:
//
//	go test ./pkg/kernels/cpu -run '^$' -bench ConvBackwardResNet18 -benchtime 20x
//
// GFLOP/s counts 2*numel(y)*K per gradient.
func BenchmarkConv2DBackwardResNet18(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, bc := range resnet18At64 {
		xs, ws, p := bc.shapes()
		ys, err := kernels.Conv2DOutShape(xs, ws, p)
		if err != nil {
			b.Fatal(err)
		}
		xv, wv, dyv := kernelstest.Rand(r, xs.Numel(), -1, 1), kernelstest.Rand(r, ws.Numel(), -1, 1), kernelstest.Rand(r, ys.Numel(), -1, 1)
		flops := 2 * float64(ys.Numel()) * float64(ws[1]*ws[2]*ws[3])
		for _, threads := range []int{1, 2} {
			c := newCPU(b, threads)
			x, w, dy := kernelstest.Upload(b, c, xv, xs...), kernelstest.Upload(b, c, wv, ws...), kernelstest.Upload(b, c, dyv, ys...)
			dx, _ := c.Alloc(xs)
			dw, _ := c.Alloc(ws)
			for _, grad := range []string{"dw", "dx"} {
				gx, gw := dx, dw
				if grad == "dw" {
					gx = nil
				} else {
					gw = nil
				}
				b.Run(fmt.Sprintf("%s/grad=%s/threads=%d", bc, grad, threads), func(b *testing.B) {
					for b.Loop() {
						if err := c.Conv2DBackward(gx, gw, nil, dy, x, w, p); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
