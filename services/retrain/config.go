package retrain

import (
	"errors"
	"fmt"
	"math"
	"time"

	"vireo/pkg/kernels"
	"vireo/pkg/schema"
)

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("retrain: invalid config")

// Config of the retrain service. The zero value plus defaults retrains every
// model that receives corrections, on the CPU, after 20 new ones.
type Config struct {
	// Prefix is the subject prefix ("" means schema.DefaultPrefix).
	Prefix string `json:"prefix"`
	// Models to retrain; empty means every model that gets corrections.
	Models []string `json:"models"`
	// Replicas of the streams, buckets and consumer this service creates.
	Replicas int `json:"replicas"`
	// NoProvision skips creating/updating Vireo's streams and buckets at
	// start (schema.Provision); the service's own bucket, object store and
	// consumer are always created or updated.
	NoProvision bool `json:"no_provision"`

	// MinCorrections new valid corrections of a model trigger a run.
	MinCorrections int `json:"min_corrections"`
	// Schedule, when > 0, also runs every Schedule for each model that has
	// at least one new correction.
	Schedule time.Duration `json:"schedule"`

	// DataRoot is where prepared datasets are found (data.Locate's root;
	// `vireo data prepare --dir`).
	DataRoot string `json:"data_root"`
	// Datasets maps a model to its training dataset (a name under DataRoot
	// or a path). A model not listed uses its manifest's dataset.
	Datasets map[string]string `json:"datasets"`
	// ReplayItems is the size of the replay sample drawn from the model's
	// original training data (so fine-tuning does not forget it).
	ReplayItems int `json:"replay_items"`
	// ValidItems caps the validation items both versions are scored on
	// (a fixed seeded sample; -1 means the whole validation set).
	ValidItems int `json:"valid_items"`
	// HoldoutPercent of the corrections (by a hash of each correction, so
	// a correction stays on its side forever) are held out to test the
	// candidate, never trained on.
	HoldoutPercent int `json:"holdout_percent"`
	// CorrectionWeight is the loss weight of a correction (replay items
	// weigh 1) and CorrectionRepeat how many times each appears per epoch:
	// the lesson's "weight the misclassified examples up".
	CorrectionWeight float64 `json:"correction_weight"`
	CorrectionRepeat int     `json:"correction_repeat"`
	// DistillWeight (λ) and DistillTemperature (T) keep a classifier's
	// answers on the replay items close to the serving version's
	// ("learning without forgetting"): before training, the serving
	// version's logits on every replay item are recorded, and each replay
	// item's loss gains λ·T²·KL(softmax(serving/T) ‖ softmax(candidate/T))
	// (train.Distill). Replay items the serving version gets right by a
	// clear margin then stay so, which their hard labels alone do not
	// enforce. On the bundled fashion model (60 shirts taken for t-shirts
	// corrected) λ 2 cut the t-shirts' loss from 11-13 points to 6-7 for a
	// shirt gain of 1.6-3.7 points instead of 2.9-4.6 (seeds 0-2). A
	// negative DistillWeight turns it off; other tasks do not distil.
	DistillWeight      float64 `json:"distill_weight"`
	DistillTemperature float64 `json:"distill_temperature"`
	// HardNegatives (0: none) items of the classes the serving version
	// took the corrections for join a classifier's training set (weight
	// 1, distilled like the replay): the ones it classifies right with the
	// smallest margin over the corrected class, out of HardNegativePool
	// items of those classes drawn from the training data (not the replay
	// sample). They pin the boundary on the other side of the corrections.
	// Off by default: on the fashion model the t-shirts nearest the
	// corrected shirts are not separable from them by the model's
	// features, so 16 of them cancelled most of the shirt gain (+0.1
	// points, t-shirts -5.0) and 256 all of it.
	HardNegatives    int `json:"hard_negatives"`
	HardNegativePool int `json:"hard_negative_pool"`

	// Fine-tuning: HeadEpochs with the body frozen at LR (one cycle),
	// then BodyEpochs unfrozen with discriminative rates LR/100..LR/5.
	BatchSize  int     `json:"batch_size"`
	HeadEpochs int     `json:"head_epochs"`
	BodyEpochs int     `json:"body_epochs"`
	LR         float64 `json:"lr"`
	Seed       uint64  `json:"seed"`

	// Tolerance is the largest drop of the task's validation metric a
	// candidate may show and still be promoted (for mse, the largest
	// rise); the held-out corrections must also improve.
	Tolerance float64 `json:"tolerance"`
	// Significance is the largest one-sided sign-test p-value of the
	// held-out corrections' item-by-item improvement that promotes (0.05:
	// with no item worse, at least 5 must improve).
	Significance float64 `json:"significance"`

	// Backend by name ("cpu", "cuda") and Threads (0: GOMAXPROCS).
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	// RunTimeout bounds one retrain run.
	RunTimeout time.Duration `json:"run_timeout"`
	// Timeout bounds each NATS request.
	Timeout time.Duration `json:"timeout"`

	// BackendImpl, when set, is used instead of opening Backend; Run does
	// not close it.
	BackendImpl kernels.Backend `json:"-"`
}

// Defaults is the Config a zero Config runs with: every default filled in.
// The CLI's flag defaults must equal these (cmd/vireo tests it).
func Defaults() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MinCorrections == 0 {
		c.MinCorrections = 20
	}
	if c.DataRoot == "" {
		c.DataRoot = "data"
	}
	if c.ReplayItems == 0 {
		c.ReplayItems = 1024
	}
	if c.ValidItems == 0 {
		c.ValidItems = 2000
	}
	if c.HoldoutPercent == 0 {
		c.HoldoutPercent = 25
	}
	if c.CorrectionWeight == 0 {
		c.CorrectionWeight = 2
	}
	if c.CorrectionRepeat == 0 {
		c.CorrectionRepeat = 1
	}
	if c.DistillWeight == 0 {
		c.DistillWeight = 2
	}
	if c.DistillTemperature == 0 {
		c.DistillTemperature = 2
	}
	if c.HardNegativePool == 0 {
		c.HardNegativePool = 1024
	}
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.HeadEpochs == 0 {
		c.HeadEpochs = 1
	}
	if c.BodyEpochs == 0 {
		c.BodyEpochs = 1
	}
	if c.LR == 0 {
		// Fine-tuning a trained model: at 1e-3 (corrections repeated 4
		// times, 2 body epochs) the bundled fashion model gave up t-shirts
		// (0.85 -> 0.30) to fix shirts and every candidate was refused.
		c.LR = 1e-4
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.01
	}
	if c.Significance == 0 {
		c.Significance = 0.05
	}
	if c.Backend == "" {
		c.Backend = "cpu"
	}
	if c.RunTimeout == 0 {
		c.RunTimeout = 30 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports the first unusable field (after defaults).
func (c Config) Validate() error {
	if _, err := schema.NewSubjects(c.Prefix); err != nil {
		return fmt.Errorf("%w: prefix: %w", ErrConfig, err)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if err := schema.ValidateModel(m); err != nil {
			return fmt.Errorf("%w: models: %w", ErrConfig, err)
		}
		if seen[m] {
			return fmt.Errorf("%w: models: %q listed twice", ErrConfig, m)
		}
		seen[m] = true
	}
	for m, d := range c.Datasets {
		if err := schema.ValidateModel(m); err != nil {
			return fmt.Errorf("%w: datasets: %w", ErrConfig, err)
		}
		if d == "" {
			return fmt.Errorf("%w: datasets[%s] is empty (want a dataset name or path)", ErrConfig, m)
		}
	}
	bad := func(field string, got any, want string) error {
		return fmt.Errorf("%w: %s (got=%v, want %s)", ErrConfig, field, got, want)
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return bad("replicas", c.Replicas, "1..5")
	case c.MinCorrections < 1 || c.MinCorrections > 1_000_000:
		return bad("min_corrections", c.MinCorrections, "1..1000000")
	case c.Schedule < 0 || (c.Schedule > 0 && c.Schedule < time.Second):
		return bad("schedule", c.Schedule, "0 (off) or >= 1s")
	case c.ReplayItems < 0 || c.ReplayItems > 1_000_000:
		return bad("replay_items", c.ReplayItems, "0..1000000")
	case c.ValidItems < -1:
		return bad("valid_items", c.ValidItems, ">= -1 (-1: all)")
	case c.HoldoutPercent < 1 || c.HoldoutPercent > 90:
		return bad("holdout_percent", c.HoldoutPercent, "1..90")
	case !(c.CorrectionWeight > 0 && c.CorrectionWeight <= 100):
		return bad("correction_weight", c.CorrectionWeight, "in (0,100]")
	case c.CorrectionRepeat < 1 || c.CorrectionRepeat > 100:
		return bad("correction_repeat", c.CorrectionRepeat, "1..100")
	case !(c.DistillWeight <= 1000) || math.IsNaN(c.DistillWeight):
		return bad("distill_weight", c.DistillWeight, "<= 1000 (negative: off)")
	case !(c.DistillTemperature > 0 && c.DistillTemperature <= 100):
		return bad("distill_temperature", c.DistillTemperature, "in (0,100]")
	case c.HardNegatives < 0 || c.HardNegatives > 100_000:
		return bad("hard_negatives", c.HardNegatives, "0..100000 (0: none)")
	case c.HardNegativePool < 1 || c.HardNegativePool > 1_000_000:
		return bad("hard_negative_pool", c.HardNegativePool, "1..1000000")
	case c.BatchSize < 1 || c.BatchSize > 4096:
		return bad("batch_size", c.BatchSize, "1..4096")
	case c.HeadEpochs < 0 || c.BodyEpochs < 0 || c.HeadEpochs+c.BodyEpochs < 1 || c.HeadEpochs+c.BodyEpochs > 1000:
		return bad("head_epochs+body_epochs", fmt.Sprintf("%d+%d", c.HeadEpochs, c.BodyEpochs), "1..1000 in all, none negative")
	case !(c.LR > 0 && c.LR < 10):
		return bad("lr", c.LR, "in (0,10)")
	case !(c.Tolerance >= 0 && c.Tolerance < 1):
		return bad("tolerance", c.Tolerance, "in [0,1)")
	case !(c.Significance > 0 && c.Significance <= 1):
		return bad("significance", c.Significance, "in (0,1]")
	case c.Threads < 0:
		return bad("threads", c.Threads, ">= 0")
	case c.RunTimeout < time.Second:
		return bad("run_timeout", c.RunTimeout, ">= 1s")
	case c.Timeout <= 0:
		return bad("timeout", c.Timeout, "> 0")
	}
	return nil
}

// Check validates c as Run will, after defaults, without changing c.
func (c Config) Check() error {
	c.setDefaults()
	return c.Validate()
}
