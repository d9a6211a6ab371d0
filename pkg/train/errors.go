package train

import "errors"

// Errors of package train; each is wrapped with %w and a got/want message.
var (
	// ErrConfig is an invalid configuration field or argument.
	ErrConfig = errors.New("train: invalid config")
	// ErrData is a batch whose shape or targets do not fit the model.
	ErrData = errors.New("train: bad batch")
	// ErrDiverged is a loss that became NaN or infinite during training.
	ErrDiverged = errors.New("train: loss diverged")
	// ErrCheckpoint is an unreadable or mismatched checkpoint.
	ErrCheckpoint = errors.New("train: bad checkpoint")
	// ErrMixedPrecision is a request for mixed precision on a backend
	// without fp16 support (every backend but CUDA).
	ErrMixedPrecision = errors.New("train: mixed precision needs a GPU backend")
)
