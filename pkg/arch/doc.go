// Package arch builds Vireo's native model architectures as ONNX-shaped
// graphs (package graph's IR), ready to train with the graph's autodiff, to
// run on any kernels.Backend, and to write as ONNX files:
//
//   - a torchvision-layout ResNet encoder with BasicBlocks, resnet18
//     ([2,2,2,2]) and resnet34 ([3,4,6,3]), at full width (64,128,256,512)
//     or scaled by a width multiplier ("resnet18@0.25": 16,32,64,128),
//     with the 7x7/2 stem and max pool or a small 3x3/1 stem for
//     28x28..64x64 inputs;
//   - resnet14s and resnet8s, ResNets for small inputs (Fashion-MNIST's
//     28x28): the 3x3/1 stem at the input's resolution (64w channels),
//     then three stages of BasicBlocks (two per stage, resnet14s; one,
//     resnet8s), each opening with stride 2 (128w, 256w, 512w:
//     "resnet14s@0.25" is 16 then 32,64,128 at 14x14, 7x7, 4x4), total
//     stride 8; the same names (conv1, bn1, layer1..3) and head, no
//     U-Net. resnet14s is resnet18's small-stem variant without its
//     layer1: at 28x28 that stage is a quarter of the work, on the fewest
//     channels (64w) at full resolution, where the GEMMs run least
//     efficiently; resnet8s has half of resnet14s's blocks and work;
//   - fastai's pooling head (concat of global max and average pooling,
//     Flatten, BN, Dropout(p/2), Linear(->512), ReLU, BN, Dropout(p),
//     Linear) for single-label and multi-label classification (logits) and
//     for point regression (2*Points unbounded values, trained with MSE on
//     points scaled to [-1,1], as fastai's BIWI head-pose model);
//   - a U-Net decoder on the same encoder ("resnet34-unet"), a simplified
//     fastai DynamicUnet: skips from the stem's ReLU and layer1..3, pixel
//     shuffle (ICNR init) or transposed-conv upsampling, BN on each skip,
//     two 3x3 conv+BN+ReLU per stage, a 1x1 conv to the classes at the
//     input's resolution.
//
// Build(name, task, cfg) is the entry point. A Model's graph has one input
// "input" (N,C,H,W) with N dynamic and one output "output". Initializers
// carry PyTorch's state_dict names (conv1.weight, layer1.0.bn1.running_mean,
// ...), so torchvision encoder weights map one to one. Model.Groups splits
// them the fastai way (stem..layer2, layer3..layer4, head or decoder) for
// discriminative learning rates and freeze/unfreeze; every initializer is in
// exactly one group. BatchNorm running statistics are initializers too, but
// not trained parameters (Trainable says which).
//
// Initialisation is deterministic given Config.Seed: Kaiming normal on
// fan_out for the encoder's convs (torchvision), on fan_in for the head's
// Linears and the decoder's convs (fastai), BN scale 1 and bias 0
// (optionally 0 scale on each block's last BN), zero biases.
//
// FLOPs counts a graph's conv and matmul work; BenchModel times a model on
// a backend and prints one JSON object (`vireo bench model`).
//
// The builders only allocate host memory for the initializers; nothing here
// blocks, starts goroutines, or keeps state between calls.
package arch
