package kernelstest

import "vireo/pkg/kernels"

// refNormalizeU8 is the InputOps contract one element at a time, in
// float64: output channel c' of pixel (n,h,w) reads byte channel c (c' =
// C-1-c with SwapRB), y[n,c',h,w] = (v/255 - mean[c']) / std[c'].
func refNormalizeU8(src []byte, p kernels.NormalizeParams) []float32 {
	N, H, W, C := p.N, p.H, p.W, p.C
	y := make([]float32, N*C*H*W)
	for n := 0; n < N; n++ {
		for h := 0; h < H; h++ {
			for w := 0; w < W; w++ {
				for c := 0; c < C; c++ {
					co := c
					if p.SwapRB {
						co = C - 1 - c
					}
					v := float64(src[((n*H+h)*W+w)*C+c])
					y[((n*C+co)*H+h)*W+w] = float32((v/255 - float64(p.Mean[co])) / float64(p.Std[co]))
				}
			}
		}
	}
	return y
}
