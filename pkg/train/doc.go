// Package train fits pkg/arch models with pkg/graph training programs on any
// kernels.Backend, with the recipes of fast.ai course-v3 lesson 3: the
// learning-rate finder with an automatic suggestion, the one-cycle schedule
// for learning rate and momentum, discriminative learning rates over the
// model's layer groups, freeze/unfreeze, progressive resizing, per-sample
// loss weights (the retrain service weights corrections up), knowledge
// distillation towards a teacher's logits (Distill: the retrain service
// keeps the serving version's answers on its replay items), checkpoints
// that resume, and the lesson's metrics. It writes the trained model as
// ONNX plus a pkg/model manifest, and PNG plots of losses and learning
// rate.
//
// # Pieces
//
//   - OneCycle is fastai v1's fit_one_cycle schedule (pct_start 0.3,
//     div_factor 25, final_div 25e4, moms 0.95->0.85->0.95, cosine
//     phases), one value per iteration.
//   - Rates are per-group learning rates: Const(lr) for every group,
//     Slice(lo, hi) geometric from lo (first group) to hi (head), and
//     Slice(0, hi) fastai's slice(hi): hi/10 for the body, hi for the head.
//   - Optimizer is SGD with momentum or AdamW (beta1 follows the schedule's
//     momentum), decoupled weight decay for both (fastai's true_wd), its
//     state in backend tensors owned by the Learner.
//   - Learner owns one training Program for the current input size,
//     recompiled (parameters, running statistics and optimiser state carried
//     over) by Resize, Freeze/Unfreeze, checkpoint loading and the LR
//     finder's restore.
//   - FindLR is the LR finder's algorithm over any step function; Learner.LRFind
//     runs it on the model and restores the weights afterwards.
//   - Metrics accumulate over a validation pass on the host: accuracy,
//     accuracy_thresh, fbeta, acc_no_void, iou, mse, point_error.
//
// # Ownership and blocking
//
// A Learner is not safe for concurrent use; it owns its Program, optimiser
// tensors and the data loaders it starts (every pass closes its loader,
// which joins the loader's goroutines). Fit, LRFind and Validate block
// until done or until ctx is cancelled. Checkpoints and model directories
// are written to a temporary file renamed into place.
//
// # Precision
//
// Everything runs in float32 unless Config.MixedPrecision is set on a
// backend with math modes (kernels.MathModer: the CUDA backend). Then the
// Learner sets the backend to bf16 until Close: GEMMs and implicit-GEMM
// convolutions round their operands to bfloat16 on the tensor cores and
// sum in FP32; tensors, master weights, optimiser state and every other
// op stay FP32. bf16 has FP32's exponent range, so there is no loss
// scaling. On the CPU backend MixedPrecision is refused with
// ErrMixedPrecision instead of being silently ignored.
package train
