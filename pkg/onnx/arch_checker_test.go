package onnx_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vireo/pkg/arch"
	"vireo/pkg/onnx"
)

// TestArchModelsPassONNXChecker writes every kind of network package arch
// builds with our encoder and has the reference implementation (Debian's
// python3-onnx) check it with full_check and infer its output shape in
// strict mode: the graphs Vireo exports are valid ONNX, and ONNX's own
// shape inference agrees with the declared output.
func TestArchModelsPassONNXChecker(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		t.Skipf("python3-onnx not available (%s -c 'import onnx': %v)", py, err)
	}
	if testing.Short() {
		t.Skip("builds five networks and runs python (about 6 s); skipped in -short")
	}
	const script = `import sys, onnx
from onnx import shape_inference
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
i = shape_inference.infer_shapes(m, strict_mode=True)
print(",".join(str(d.dim_value or d.dim_param) for d in i.graph.output[0].type.tensor_type.shape.dim))`
	for _, c := range []struct {
		name, task string
		cfg        arch.Config
		want       string
	}{
		{"resnet18", arch.TaskClassify, arch.Config{Classes: 10, Dropout: 0.5}, "N,10"},
		{"resnet34@0.25", arch.TaskMultiLabel, arch.Config{Classes: 5, SmallStem: true, Size: 64}, "N,5"},
		{"resnet18@0.25", arch.TaskRegress, arch.Config{Points: 3}, "N,6"},
		{"resnet18@0.25-unet", arch.TaskSegment, arch.Config{Classes: 4, Size: 128}, "N,4,128,128"},
		{"resnet18@0.25-unet", arch.TaskSegment, arch.Config{Classes: 4, Upsample: arch.UpsampleConvTranspose}, "N,4,H,W"},
	} {
		name := fmt.Sprintf("%s/%s/%s", c.name, c.task, c.want)
		m, err := arch.Build(c.name, c.task, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(t.TempDir(), "model.onnx")
		if err := onnx.WriteFile(path, onnx.NewModel(m.Graph)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := exec.Command(py, "-c", script, path).CombinedOutput()
		if err != nil {
			t.Errorf("%s: the onnx checker rejected it: %v\n%s", name, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("%s: ONNX shape inference gives output %s, want %s", name, got, c.want)
		}
	}
}
