package schema

import (
	"errors"
	"fmt"
	"strings"
)

// Version is the version of every contract in this package: the Arrow
// schemas carry it in their metadata (key "vireo.schema_version"), the JSON
// contracts in their "schema_version" field. Decoders accept exactly this
// version; a change that old readers cannot read bumps it.
const Version = 1

// Errors. Each is wrapped with details (%w) including got/want.
var (
	// ErrInvalidName: a subject token (model, source, service) is not safe.
	ErrInvalidName = errors.New("schema: invalid name")
	// ErrInvalid: a JSON contract failed validation.
	ErrInvalid = errors.New("schema: invalid message")
	// ErrMalformed: Arrow IPC bytes could not be decoded or do not match the
	// schema.
	ErrMalformed = errors.New("schema: malformed arrow batch")
	// ErrVersion: a message carries a schema version this build cannot read.
	ErrVersion = errors.New("schema: unsupported schema version")
)

// MaxNameLen bounds model, source and service names.
const MaxNameLen = 64

// reservedModels are model names that would make subjects ambiguous:
// results.arrow.<model> and results.<model>.<source> share a prefix.
var reservedModels = map[string]bool{"arrow": true}

// ValidateName checks a name used as one subject token (a model, source or
// service name, a source id): 1..MaxNameLen characters from [A-Za-z0-9_-],
// so it can never contain '.', '*', '>' or whitespace, and is also a valid
// JetStream stream, consumer, KV key and object name.
func ValidateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s is empty (want 1..%d characters of [A-Za-z0-9_-])", ErrInvalidName, kind, MaxNameLen)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s %.20q... is too long (got=%d bytes, want<=%d)", ErrInvalidName, kind, name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q has %q at byte %d (want only [A-Za-z0-9_-])", ErrInvalidName, kind, name, c, i)
		}
	}
	return nil
}

// ValidateModel is ValidateName for model names, which also rejects the
// reserved names (got "arrow": results.arrow.<model> would be ambiguous).
func ValidateModel(name string) error {
	if err := ValidateName("model", name); err != nil {
		return err
	}
	if reservedModels[strings.ToLower(name)] {
		return fmt.Errorf("%w: model %q is reserved (want any other name)", ErrInvalidName, name)
	}
	return nil
}

// ValidateSource is ValidateName for source names.
func ValidateSource(name string) error { return ValidateName("source", name) }

// Task is what a model predicts; it selects which Result fields are set.
type Task string

// Tasks (fast.ai course-v3 lesson 3).
const (
	// TaskClassification: single-label classification (softmax); Result
	// labels holds the top label.
	TaskClassification Task = "classification"
	// TaskMultiLabel: multi-label classification (sigmoid, threshold).
	TaskMultiLabel Task = "multilabel"
	// TaskSegmentation: one class id per pixel.
	TaskSegmentation Task = "segmentation"
	// TaskRegression: points (e.g. a head centre).
	TaskRegression Task = "regression"
)

// Validate reports whether t is a known task.
func (t Task) Validate() error {
	switch t {
	case TaskClassification, TaskMultiLabel, TaskSegmentation, TaskRegression:
		return nil
	}
	return fmt.Errorf("%w: task (got=%q, want one of classification, multilabel, segmentation, regression)", ErrInvalid, string(t))
}

func checkVersion(what string, v int) error {
	if v != Version {
		return fmt.Errorf("%w: %s schema_version (got=%d, want=%d)", ErrVersion, what, v, Version)
	}
	return nil
}
