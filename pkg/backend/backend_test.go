package backend

import (
	"errors"
	"strings"
	"testing"

	"vireo/pkg/kernels"
)

func TestOpenCPU(t *testing.T) {
	b, err := Open(Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "cpu" {
		t.Fatalf("Name() = %q, want cpu", b.Name())
	}
}

func TestOpenUnknown(t *testing.T) {
	_, err := Open(Config{Name: "tpu"})
	if !errors.Is(err, kernels.ErrUnsupported) || !strings.Contains(err.Error(), "tpu") {
		t.Fatalf("Open(tpu) error = %v, want ErrUnsupported naming tpu", err)
	}
}

// mathBackend is a CPU backend that claims math modes, to test Open's
// handling of Config.Math without a GPU.
type mathBackend struct {
	kernels.Backend
	mode   string
	closed bool
}

func (m *mathBackend) SetMath(mode string) error {
	if mode == kernels.MathFP16 {
		return kernels.ErrUnsupported // a device without fp16, say
	}
	m.mode = mode
	return nil
}
func (m *mathBackend) Math() string { return m.mode }
func (m *mathBackend) Close() error { m.closed = true; return m.Backend.Close() }

func TestOpenMath(t *testing.T) {
	for _, mode := range []string{"", kernels.MathFP32} {
		b, err := Open(Config{Threads: 1, Math: mode})
		if err != nil {
			t.Fatalf("cpu with math %q: %v", mode, err)
		}
		if got := Math(b); got != kernels.MathFP32 {
			t.Errorf("Math(cpu) = %q, want fp32", got)
		}
		b.Close()
	}
	for _, mode := range []string{kernels.MathFP16, kernels.MathBF16} {
		if _, err := Open(Config{Math: mode}); !errors.Is(err, kernels.ErrUnsupported) || !strings.Contains(err.Error(), mode) {
			t.Errorf("cpu with math %q: %v, want ErrUnsupported naming it", mode, err)
		}
	}
	if _, err := Open(Config{Math: "fp8"}); !errors.Is(err, kernels.ErrParam) {
		t.Errorf("math fp8: %v, want ErrParam", err)
	}

	var last *mathBackend
	openers["test-math"] = func(c Config) (kernels.Backend, error) {
		cb, err := Open(Config{Threads: 1})
		last = &mathBackend{Backend: cb, mode: kernels.MathFP32}
		return last, err
	}
	defer delete(openers, "test-math")
	b, err := Open(Config{Name: "test-math", Math: kernels.MathBF16})
	if err != nil {
		t.Fatal(err)
	}
	if got := Math(b); got != kernels.MathBF16 {
		t.Errorf("Math = %q after Open with bf16", got)
	}
	b.Close()
	if _, err := Open(Config{Name: "test-math", Math: kernels.MathFP16}); !errors.Is(err, kernels.ErrUnsupported) || !last.closed {
		t.Errorf("a mode the device refuses: %v (closed %v), want the error and the backend closed", err, last.closed)
	}
}
