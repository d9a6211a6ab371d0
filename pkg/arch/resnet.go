package arch

import (
	"fmt"

	"vireo/pkg/graph"
)

// feature is an encoder activation the U-Net taps: its value name, channel
// count and stride relative to the input.
type feature struct {
	name     string
	channels int
	stride   int
}

// encoder is the built ResNet body.
type encoder struct {
	out      string // layer4's output
	channels int    // layer4's channels
	stride   int    // total stride
	skips    []feature
}

// resnet adds a torchvision-layout ResNet body with BasicBlocks
// (blocks per stage: [2,2,2,2] resnet18, [3,4,6,3] resnet34) on x, with
// torchvision's initializer names (conv1.weight, bn1.*, layerL.B.conv1.weight,
// layerL.B.downsample.{0,1}.*). The stem and layer1..2 go to group 0,
// layer3..4 to group 1 (fastai's resnet split).
//
//	stem:   x (N,C,H,W) -> conv 7x7/2 -> BN -> ReLU (N,64w,H/2,W/2) -> maxpool 3x3/2 (H/4)
//	small:  x (N,C,H,W) -> conv 3x3/1 -> BN -> ReLU (N,64w,H,W)
//	layerL: BasicBlocks, the first of layers 2..4 with stride 2 and a 1x1/2 conv+BN shortcut
func (b *builder) resnet(x string, blocks []int) encoder {
	b.group = 0
	w := b.cfg.Width
	widths := [4]int{scaled(64, w), scaled(128, w), scaled(256, w), scaled(512, w)}
	stem := widths[0]
	var e encoder
	if b.cfg.SmallStem {
		x = b.smallStem(x, stem)
		e.skips = append(e.skips, feature{x, stem, 1})
		e.stride = 1
	} else {
		x = b.conv(x, "conv1", b.cfg.InChannels, stem, 7, 2, 3, true, false)
		x = b.bn(x, "bn1", stem, false)
		x = b.relu(x, "relu")
		e.skips = append(e.skips, feature{x, stem, 2})
		x = b.node("MaxPool", "maxpool", []string{x}, map[string]graph.Attr{
			"kernel_shape": ints(3, 3),
			"strides":      ints(2, 2),
			"pads":         ints(1, 1, 1, 1),
		})
		e.stride = 4
	}
	return b.stages(x, e, stem, widths[:], blocks, false)
}

// smallStem is the 3x3/1 stem (conv1, bn1, relu) of ch channels.
func (b *builder) smallStem(x string, ch int) string {
	x = b.conv(x, "conv1", b.cfg.InChannels, ch, 3, 1, 1, true, false)
	x = b.bn(x, "bn1", ch, false)
	return b.relu(x, "relu")
}

// stages adds the BasicBlock stages layer1.. on x (cin channels) to the
// encoder e: blocks[l] blocks of widths[l] channels, the first block of
// each stage with stride 2 (of stage 0 too when down0), stages from the
// third on in layer group 1; every stage but the last is a skip.
func (b *builder) stages(x string, e encoder, cin int, widths, blocks []int, down0 bool) encoder {
	for l, n := range blocks {
		if l == 2 {
			b.group = 1
		}
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 && (l > 0 || down0) {
				stride = 2
			}
			x = b.basicBlock(x, fmt.Sprintf("layer%d.%d", l+1, i), cin, widths[l], stride)
			cin = widths[l]
			e.stride *= stride
		}
		if l < len(blocks)-1 {
			e.skips = append(e.skips, feature{x, cin, e.stride})
		}
	}
	e.out, e.channels = x, cin
	return e
}

// basicBlock is torchvision's BasicBlock:
//
//	y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//
// conv1 is 3x3/stride, conv2 3x3/1; shortcut is x, or conv 1x1/stride + BN
// when the stride or the channel count changes.
func (b *builder) basicBlock(x, name string, cin, cout, stride int) string {
	y := b.conv(x, name+".conv1", cin, cout, 3, stride, 1, true, false)
	y = b.bn(y, name+".bn1", cout, false)
	y = b.relu(y, name+".relu1")
	y = b.conv(y, name+".conv2", cout, cout, 3, 1, 1, true, false)
	y = b.bn(y, name+".bn2", cout, b.cfg.ZeroInitResidual)
	sc := x
	if stride != 1 || cin != cout {
		sc = b.conv(x, name+".downsample.0", cin, cout, 1, stride, 0, true, false)
		sc = b.bn(sc, name+".downsample.1", cout, false)
	}
	y = b.node("Add", name+".add", []string{y, sc}, nil)
	return b.relu(y, name+".relu2")
}

// resnetSmall adds the small-input ResNet body (resnet14s, resnet8s) on x:
// the 3x3/1 stem keeps the input's resolution for one conv, then three
// stages of BasicBlocks (blocks per stage: [2,2,2] resnet14s, [1,1,1]
// resnet8s), each opening with a stride-2 block (conv 3x3/2 and a 1x1/2
// conv+BN shortcut), total stride 8:
//
//	stem:   x (N,C,H,W) -> conv 3x3/1 -> BN -> ReLU (N,64w,H,W)
//	layer1: (N,128w,H/2,W/2)   layer2: (N,256w,H/4)   layer3: (N,512w,H/8)
//
// resnet14s is resnet18's small-stem variant without its full-resolution
// layer1 (at 28x28 a quarter of the work, on 64w channels, too few to keep
// the GEMMs busy); its layer1..3 are resnet18's layer2..4: at 28x28 and
// w=0.25, 14x14 x32, 7x7 x64 and 4x4 x128. The initializer names follow
// torchvision's (conv1, bn1, layerL.B.*), so the fastai split is by name
// as for resnet18: the stem, layer1 and layer2 in group 0, layer3 in
// group 1.
func (b *builder) resnetSmall(x string, blocks []int) encoder {
	b.group = 0
	w := b.cfg.Width
	stem := scaled(64, w)
	widths := []int{scaled(128, w), scaled(256, w), scaled(512, w)}
	x = b.smallStem(x, stem)
	e := encoder{stride: 1, skips: []feature{{x, stem, 1}}}
	return b.stages(x, e, stem, widths, blocks, true)
}
