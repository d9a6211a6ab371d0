// Package onnximport brings a third-party ONNX model (a PyTorch, fastai,
// Paddle or TensorFlow export) into Vireo: it decodes the file, checks that
// every op is one the executor implements, folds what can be computed at
// load time, fixes the input layout, and checks the result can be planned.
//
// # What Import does, in order
//
//  1. Decode (package onnx): weights as initializers or Constant nodes;
//     FLOAT16, BFLOAT16 and DOUBLE weights become float32; nodes in file
//     order (the graph is sorted later, never assumed sorted).
//  2. Opset: the default-domain opset must be in [MinOpset, MaxOpset]
//     (9 to 17). Within that range the executor reads both forms of the
//     ops whose attributes became inputs (Clip min/max, Pad pads, Split
//     split, Squeeze/Unsqueeze axes, Resize roi/scales/sizes, Slice
//     starts/ends/axes/steps, ReduceSum axes).
//  3. Op coverage: every node's op is looked up once, and one error
//     (ErrUnsupported) lists every unsupported op with its node count, so a
//     user sees the whole gap at once.
//  4. Folding (graph.FoldConstants): Constant and ConstantOfShape nodes
//     and everything computed from constants become initializers; when the
//     input shapes are static (declared in the file, or fixed through
//     Options.InputShapes), Shape -> Gather -> Cast -> Unsqueeze -> Concat
//     -> Reshape chains are folded too. With dynamic dims those chains stay
//     and graph.Compile folds them for each concrete input shape.
//  5. Fusion (unless Options.NoFuse): a Conv followed by a constant
//     per-channel Mul and/or Add takes them into its weights and bias (a
//     one-group ConvTranspose too), and x*Clip(x+3,0,6)/6 becomes
//     HardSwish (PP-OCR's exports write both out op by op: 330 -> 202
//     nodes for PP-OCRv4 det). Report.Fused. A gated shortcut x + x*s
//     (s a Sigmoid or HardSigmoid) becomes x * (s+1), one pass over x.
//  6. Layout: an NHWC image input (declared (N,H,W,C) with C in 1..4 and H,
//     W not, or Options.InputLayout "nhwc") is turned into an NCHW input,
//     Vireo's frame layout, by a Transpose at the input; a Transpose pair
//     that cancels (the exporter's own NHWC->NCHW) is then removed, so the
//     model computes exactly what it did on the transposed input.
//  7. Batch: an input declared with batch 1 (TensorFlow exports) gets a
//     dynamic batch, so the serving path can batch frames: Reshapes to a
//     constant (1, ...) copy dim 0 instead, and a Concat with an all-zero
//     constant (channel padding) becomes a Pad. Kept only when shapes
//     infer exactly as before at batch 1 and every output follows the
//     batch at 2 (Report.DynamicBatch).
//  8. Decode (Options.Decode): a model-specific decoder appended as graph
//     ops, so the stored file gives what a Vireo task serves and still runs
//     in ONNX Runtime. DecodeBlazeFace: anchor decoding and an exact
//     best-score selection turn BlazeFace's 896 anchors into (N,16) points
//     in [-1,1] (BlazeFacePoints: box corners and six keypoints) and an
//     (N,1) score; served as a regression model, the points land in frame
//     pixels. BlazeFaceDecode is the reference it equals.
//  9. Check: shapes are inferred for the input shapes (or a probe shape
//     for dynamic dims), which surfaces every refused attribute
//     combination as an error naming the node, op and attribute.
//
// Import never panics on any input; all errors wrap ErrUnsupported,
// ErrOpset, ErrInvalid or an error of package onnx or graph.
//
// The package holds no state; its functions are safe for concurrent use.
package onnximport
