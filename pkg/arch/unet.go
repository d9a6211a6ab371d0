package arch

import (
	"fmt"
	"math"

	"vireo/pkg/graph"
)

// unet adds a U-Net decoder on the encoder (a simplified fastai
// DynamicUnet) in layer group 2 and returns the logits' value name,
// (N,Classes,H,W) for inputs whose H and W are divisible by e.stride.
//
//	middle: layer4 (N,c,H/32,W/32) -> conv3x3(c->2c)+BN+ReLU -> conv3x3(2c->c)+BN+ReLU
//	block:  up(x: c -> c/2, 2x) ++ BN(skip) -> conv3x3(ni->nf)+BN+ReLU -> conv3x3(nf->nf)+BN+ReLU
//	        ni = c/2 + skip channels, nf = ni (ni/2 in the last block), one block
//	        per skip: layer3, layer2, layer1, the stem's ReLU (the deepest tap
//	        per stride, so the small stem's ReLU, at layer1's stride, is not used)
//	final:  up(x: c -> c, 2x) until stride 1 -> conv1x1(c->Classes) with bias
//
// up is Config.Upsample: a 1x1 conv to 4x channels with ICNR init, then
// DepthToSpace(2, CRD) and ReLU (fastai's PixelShuffle_ICNR without blur);
// or ConvTranspose 2x2/2 and ReLU.
func (b *builder) unet(e encoder) string {
	b.group = 2
	x, c, stride := e.out, e.channels, e.stride
	x = b.convBNReLU(x, "decoder.middle.0", c, 2*c)
	x = b.convBNReLU(x, "decoder.middle.1", 2*c, c)

	var skips []feature
	for i := len(e.skips) - 1; i >= 0; i-- {
		s := e.skips[i]
		if len(skips) > 0 && skips[len(skips)-1].stride == s.stride {
			continue
		}
		skips = append(skips, s)
	}
	for i, s := range skips {
		name := fmt.Sprintf("decoder.block%d", i)
		up := c
		if stride > s.stride {
			up = max(c/2, 1)
			x = b.upsample(x, name+".up", c, up)
			stride /= 2
		}
		sk := b.bn(s.name, name+".skip_bn", s.channels, false)
		x = b.node("Concat", name+".concat", []string{x, sk}, map[string]graph.Attr{"axis": intAttr(1)})
		ni := up + s.channels
		nf := ni
		if i == len(skips)-1 {
			nf = max(ni/2, 1)
		}
		x = b.convBNReLU(x, name+".conv1", ni, nf)
		x = b.convBNReLU(x, name+".conv2", nf, nf)
		c = nf
	}
	for i := 0; stride > 1; i++ {
		x = b.upsample(x, fmt.Sprintf("decoder.final.up%d", i), c, c)
		stride /= 2
	}
	return b.conv(x, "decoder.out", c, b.cfg.Classes, 1, 1, 0, false, true)
}

// convBNReLU is a 3x3/1 conv (fastai's init: Kaiming normal on fan_in, no
// bias), BN and ReLU.
func (b *builder) convBNReLU(x, name string, cin, cout int) string {
	x = b.conv(x, name+".conv", cin, cout, 3, 1, 1, false, false)
	x = b.bn(x, name+".bn", cout, false)
	return b.relu(x, name+".relu")
}

// upsample doubles H and W: x (N,cin,h,w) -> (N,cout,2h,2w).
func (b *builder) upsample(x, name string, cin, cout int) string {
	if b.cfg.Upsample == UpsampleConvTranspose {
		// Each output pixel sees exactly one input pixel's cin channels,
		// so fan_in is cin.
		w := b.param(name+".weight", []int{cin, cout, 2, 2}, b.normal(cin*cout*4, math.Sqrt(2/float64(cin))))
		bias := b.param(name+".bias", []int{cout}, make([]float32, cout))
		x = b.node("ConvTranspose", name, []string{x, w, bias}, map[string]graph.Attr{
			"kernel_shape": ints(2, 2),
			"strides":      ints(2, 2),
			"pads":         ints(0, 0, 0, 0),
			"dilations":    ints(1, 1),
			"group":        intAttr(1),
		})
		return b.relu(x, name+".relu")
	}
	// ICNR: draw W0 (cout,cin) and give the 4 sub-pixel channels of each
	// output channel the same kernel, so the shuffle starts as a
	// nearest-neighbour upsample of a 1x1 conv (no checkerboard). CRD
	// order: input channel c*4 + i*2 + j lands on output channel c at
	// offset (i,j), as PyTorch's PixelShuffle.
	w0 := b.normal(cout*cin, math.Sqrt(2/float64(cin)))
	wv := make([]float32, 4*cout*cin)
	for c := 0; c < cout; c++ {
		for s := 0; s < 4; s++ {
			copy(wv[(c*4+s)*cin:(c*4+s+1)*cin], w0[c*cin:(c+1)*cin])
		}
	}
	w := b.param(name+".conv.weight", []int{4 * cout, cin, 1, 1}, wv)
	bias := b.param(name+".conv.bias", []int{4 * cout}, make([]float32, 4*cout))
	x = b.node("Conv", name+".conv", []string{x, w, bias}, map[string]graph.Attr{
		"kernel_shape": ints(1, 1),
		"strides":      ints(1, 1),
		"pads":         ints(0, 0, 0, 0),
		"dilations":    ints(1, 1),
		"group":        intAttr(1),
	})
	x = b.node("DepthToSpace", name+".shuffle", []string{x}, map[string]graph.Attr{
		"blocksize": intAttr(2),
		"mode":      {Kind: graph.AttrString, String: "CRD"},
	})
	return b.relu(x, name+".relu")
}
