// Package retrain is Vireo's retrain service: it turns users' corrections
// into fine-tuned model versions, promoted only when a gate says they are
// better (fast.ai course-v3 lesson 3: fine-tune on the misclassified
// examples, weighted up).
//
// # Entry point
//
//	err := retrain.Run(ctx, retrain.Config{MinCorrections: 20, DataRoot: "data"}, ops.Deps{NC: nc, Log: log})
//
// Run retrains cfg.Models (empty: every model that gets corrections) until
// ctx is done. It provisions Vireo's streams unless cfg.NoProvision, and
// always creates its own: the KV bucket RETRAIN (per model: the newest
// correction a run has seen and the last run's Record; history
// StateHistory) and the Object Store CORRECTED_FRAMES. It opens the
// backend by name unless cfg.BackendImpl is given. Readiness check:
// "retrain".
//
// # Corrections
//
// Corrections (schema.Correction) arrive on <p>.corrections.<model> into
// the CORRECTIONS stream (file storage, never discarded), from ingest's
// POST /v1/models/{model}/corrections or any NATS client; CorrectionID is
// their Nats-Msg-Id, so a retried submit is stored once. At start Run
// indexes every valid correction in the stream; then the durable consumer
// "retrain" validates each new one: an invalid one is terminated with a
// JSON schema.Error on <p>.errors.retrain (reason invalid_correction or
// frame_not_kept); a correction that names (source, seq) has its frame
// copied from FRAMES_KEEP into CORRECTED_FRAMES before it is acked, so it
// outlives the keep window. A hash of each correction decides whether it
// is held out (cfg.HoldoutPercent): it stays on its side forever, so the
// gate never tests on what was trained on.
//
// # Triggers and runs
//
// A run starts when a model has cfg.MinCorrections corrections newer than
// its last run, every cfg.Schedule when it has any, or on a request
// {"action":"start"} on ControlSubject (<p>.retrain.<model>); {"action":
// "status"} answers a Status (state, stage, epoch, batch, corrections,
// pending, last Record). Runs go one at a time in one runner goroutine.
//
// A run fine-tunes from the serving version (its ONNX graph as stored; the
// initializers in fastai's layer groups by their torchvision names): the
// training set is a replay sample of the model's own training data
// (cfg.ReplayItems from the dataset named by cfg.Datasets or the
// manifest's Dataset, found under cfg.DataRoot with data.Locate) plus
// every non-held-out correction repeated cfg.CorrectionRepeat times with
// loss weight cfg.CorrectionWeight. For a classifier the serving version
// first answers the replay items: its logits are distillation targets
// ("learning without forgetting", train.Distill), each replay item's loss
// gaining cfg.DistillWeight·T²·KL(serving ‖ candidate) at temperature
// cfg.DistillTemperature, so the candidate keeps the answers it is not
// corrected on, margins included: fixing shirts taken for t-shirts then
// costs the t-shirts near the boundary about 40% less. Optionally
// (cfg.HardNegatives) the serving version's answers on the corrections
// name the classes they were taken for, and the items of those classes it
// classifies right with the smallest margin over the corrected class join
// the training set (from cfg.HardNegativePool candidates of the training
// data). It trains cfg.HeadEpochs with the body frozen at cfg.LR, then
// cfg.BodyEpochs unfrozen with discriminative rates slice(LR/100, LR/5),
// each a one-cycle (pkg/train). The serving weights
// (before) and the candidate (after) are scored with the task's metric
// (accuracy, fbeta, acc_no_void or mse) on the same validation sample
// (cfg.ValidItems of the dataset's validation part) and on the held-out
// corrections.
//
// # The gate
//
// Gate promotes only if the validation metric drops by no more than
// cfg.Tolerance AND the held-out corrections improve convincingly: item
// by item (Compare), more of them better than worse, with a one-sided
// sign test's p-value at most cfg.Significance (Paired.P), so that one
// lucky item of a handful never promotes a model. Either way the
// candidate is pushed (ONNX + manifest with parent version, correction
// digest, metrics before and after, and the decision in its notes), so
// GET /v1/models/{model}/versions shows every decision; a passing one is
// promoted (the KV pointer moves with the gate's reason; infer hot-swaps
// it). A run that cannot make a candidate (no serving version, no
// dataset, too few corrections) is recorded as failed with the reason.
// Every run is logged, recorded in the RETRAIN bucket and counted in
// vireo_retrain_runs_total{model,outcome}; corrections in
// vireo_retrain_corrections_total{model,outcome}.
//
// # Restarts
//
// Nothing lives only in memory: corrections are in CORRECTIONS, frames in
// CORRECTED_FRAMES, versions in the model store, the last run per model in
// RETRAIN. A restarted service rebuilds its index and counts the
// corrections since the last run again. One retrain service per
// deployment: two would both run.
package retrain
