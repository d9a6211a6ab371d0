package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain reference loops for the pool family: one output element at a time,
// straight from the ONNX definitions. x is (N,C,H,W).

// refPoolWindow calls fn for every tap of window (oh, ow) that lies inside
// the input, in row-major tap order, and returns the number of real taps and
// the number of taps inside the padded input.
func refPoolWindow(H, W, oh, ow int, p kernels.PoolParams, fn func(ih, iw int)) (valid, padded int) {
	for kh := 0; kh < p.Kernel[0]; kh++ {
		ih := oh*p.Strides[0] - p.Pads[0] + kh*p.Dilations[0]
		for kw := 0; kw < p.Kernel[1]; kw++ {
			iw := ow*p.Strides[1] - p.Pads[1] + kw*p.Dilations[1]
			inH, inW := ih >= 0 && ih < H, iw >= 0 && iw < W
			if inH && inW {
				valid++
				if fn != nil {
					fn(ih, iw)
				}
			}
			if ih >= -p.Pads[0] && ih < H+p.Pads[2] && iw >= -p.Pads[1] && iw < W+p.Pads[3] {
				padded++
			}
		}
	}
	return valid, padded
}

// refPool2D is ONNX MaxPool/AveragePool; ys from Pool2DOutShape.
func refPool2D(x []float32, xs, ys kernels.Shape, p kernels.PoolParams) []float32 {
	p = p.WithDefaults()
	H, W, oH, oW := xs[2], xs[3], ys[2], ys[3]
	y := make([]float32, ys.Numel())
	for pl := 0; pl < xs[0]*xs[1]; pl++ {
		for oh := 0; oh < oH; oh++ {
			for ow := 0; ow < oW; ow++ {
				m, s := math.Inf(-1), 0.0
				valid, padded := refPoolWindow(H, W, oh, ow, p, func(ih, iw int) {
					v := float64(x[(pl*H+ih)*W+iw])
					m = math.Max(m, v)
					s += v
				})
				var out float64
				switch {
				case p.Kind == kernels.PoolMax && valid == 0:
					out = -math.MaxFloat32
				case p.Kind == kernels.PoolMax:
					out = m
				case p.CountIncludePad && padded > 0:
					out = s / float64(padded)
				case !p.CountIncludePad && valid > 0:
					out = s / float64(valid)
				}
				y[(pl*oH+oh)*oW+ow] = float32(out)
			}
		}
	}
	return y
}

// refPool2DBackward: max routes dy to the first maximum of the window,
// average spreads dy/divisor over its real taps.
func refPool2DBackward(dy, x []float32, xs, ys kernels.Shape, p kernels.PoolParams) []float32 {
	p = p.WithDefaults()
	H, W, oH, oW := xs[2], xs[3], ys[2], ys[3]
	dx := make([]float32, xs.Numel())
	for pl := 0; pl < xs[0]*xs[1]; pl++ {
		for oh := 0; oh < oH; oh++ {
			for ow := 0; ow < oW; ow++ {
				g := dy[(pl*oH+oh)*oW+ow]
				if p.Kind == kernels.PoolMax {
					at := -1
					refPoolWindow(H, W, oh, ow, p, func(ih, iw int) {
						i := (pl*H+ih)*W + iw
						if at < 0 || x[i] > x[at] {
							at = i
						}
					})
					if at >= 0 {
						dx[at] += g
					}
					continue
				}
				valid, padded := refPoolWindow(H, W, oh, ow, p, nil)
				div := valid
				if p.CountIncludePad {
					div = padded
				}
				if div == 0 {
					continue
				}
				refPoolWindow(H, W, oh, ow, p, func(ih, iw int) {
					dx[(pl*H+ih)*W+iw] += g / float32(div)
				})
			}
		}
	}
	return dx
}
