// Package predict turns a stored model version (ONNX bytes + manifest)
// into something that runs frames: Load decodes the ONNX file (pkg/onnx),
// checks it against the manifest (pkg/model), compiles inference programs
// (pkg/graph, Conv+BatchNorm folded) on a kernels.Backend and warms them;
// Run normalises uint8 frames on the backend (NormalizeU8 with the
// manifest's mean/std, BGR->RGB when the model wants RGB), runs the network
// and post-processes its output into one schema.Result per frame:
//
//   - classify: softmax (unless the graph ends in Softmax), the top label,
//     every label's probability in Scores;
//   - multilabel: sigmoid (unless the graph ends in Sigmoid), the labels
//     whose probability is at or above the manifest's threshold, Scores;
//   - segment: argmax over classes per pixel -> an 8-bit grey PNG of class
//     ids at the output's size (the model's input size for a U-Net), and
//     the share of pixels of each class;
//   - regress: 2*Points values in [-1,1] (x0,y0,x1,y1,...) -> pixels of the
//     original frame, x = (v+1)/2*OrigWidth, y = (v+1)/2*OrigHeight (the
//     fastai scaling the points were trained with).
//
// # Batch sizes
//
// A graph.Program runs one input shape, so a Predictor keeps one program per
// batch-size bucket: the powers of two below MaxBatch, and MaxBatch itself.
// A batch of n frames runs in the smallest bucket >= n, padded with zero
// frames whose outputs are dropped (the inference graph has no op across
// the batch, so padding cannot change the real rows), when that wastes at
// most 1/8 of the bucket or Options.Pad is set (a GPU, whose time hardly
// depends on the batch size); otherwise it runs as the largest bucket it
// fills and then the rest the same way (5 frames as 4+1: on a CPU a
// frame's cost hardly depends on its batch, so padding is wasted work).
// The number of programs is at most log2(MaxBatch)+2, each compiled the
// first time it is needed;
// Load compiles and runs buckets 1 and MaxBatch once so the common sizes
// are warm. More than MaxBatch frames run as several batches. Each program
// holds its own copy of the weights and its planned activations on the
// backend: memory grows with the buckets used.
//
// # Ownership
//
// A Predictor owns its programs and scratch buffers; Close frees them (the
// backend stays the caller's). Run is safe for concurrent use but
// serialised (a mutex): a program reuses its buffers.
package predict
