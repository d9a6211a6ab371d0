//go:build ort

// Package ort runs ONNX models in ONNX Runtime 1.30, Vireo's reference and
// rival. It is a test and benchmark dependency only: it builds under the
// `ort` build tag, so the production binary never links it. `make ort`
// installs the library into third_party/ort (ignored by git); Init finds it
// there (searching up from the working directory for go.mod) or through the
// VIREO_ORT_LIB environment variable.
package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoLibrary is returned when libonnxruntime.so.1 cannot be found.
var ErrNoLibrary = errors.New("ort: libonnxruntime.so.1 not found (run `make ort` or set VIREO_ORT_LIB)")

const relLib = "third_party/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

var (
	initOnce sync.Once
	initErr  error
)

// LibraryPath returns the ONNX Runtime library to load.
func LibraryPath() (string, error) {
	if p := os.Getenv("VIREO_ORT_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: VIREO_ORT_LIB=%s: %v", ErrNoLibrary, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, relLib)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w: %s", ErrNoLibrary, p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoLibrary
		}
		dir = parent
	}
}

// Init loads ONNX Runtime once per process.
func Init() error {
	initOnce.Do(func() {
		p, err := LibraryPath()
		if err != nil {
			initErr = err
			return
		}
		ort.SetSharedLibraryPath(p)
		initErr = ort.InitializeEnvironment()
	})
	return initErr
}

// Input is one float32 input tensor.
type Input struct {
	Name  string
	Shape []int64
	Data  []float32
}

// Output is one float32 output tensor.
type Output struct {
	Name  string
	Shape []int64
	Data  []float32
}

// Session is an ONNX Runtime session over a model held in memory.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// NewSession creates a session with the given intra-op thread count (0 =
// ORT's default) and all graph optimisations on.
func NewSession(model []byte, inputs, outputs []string, threads int) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer opts.Destroy()
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, fmt.Errorf("ort: intra-op threads: %w", err)
		}
		if err := opts.SetInterOpNumThreads(1); err != nil {
			return nil, fmt.Errorf("ort: inter-op threads: %w", err)
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("ort: new session: %w", err)
	}
	return &Session{s: s, inputs: inputs, outputs: outputs}, nil
}

// Run runs the model on float32 inputs (in the order given to NewSession)
// and returns its float32 outputs.
func (s *Session) Run(in []Input) ([]Output, error) {
	if len(in) != len(s.inputs) {
		return nil, fmt.Errorf("ort: %d inputs (want %d)", len(in), len(s.inputs))
	}
	vals := make([]ort.Value, len(in))
	for i, x := range in {
		t, err := ort.NewTensor(ort.NewShape(x.Shape...), x.Data)
		if err != nil {
			return nil, fmt.Errorf("ort: input %s: %w", s.inputs[i], err)
		}
		defer t.Destroy()
		vals[i] = t
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(vals, outs); err != nil {
		return nil, fmt.Errorf("ort: run: %w", err)
	}
	res := make([]Output, len(outs))
	for i, v := range outs {
		defer v.Destroy()
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("ort: output %s is %T (want float32 tensor)", s.outputs[i], v)
		}
		res[i] = Output{Name: s.outputs[i], Shape: append([]int64(nil), t.GetShape()...), Data: append([]float32(nil), t.GetData()...)}
	}
	return res, nil
}

// Close destroys the session.
func (s *Session) Close() error { return s.s.Destroy() }
