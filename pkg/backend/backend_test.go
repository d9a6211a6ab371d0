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
