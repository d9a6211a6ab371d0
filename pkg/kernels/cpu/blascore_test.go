package cpu

import "testing"

func TestBLASCoreFor(t *testing.T) {
	for _, c := range []struct {
		core  string
		level int
		want  string
	}{
		{"Prescott", 2, "SkylakeX"},
		{"Prescott", 1, "Haswell"},
		{"Prescott", 0, ""}, // a CPU OpenBLAS's generic kernels fit
		{"Haswell", 2, ""},  // recognised: its choice stands
		{"SkylakeX", 2, ""},
		{"Zen", 1, ""},
	} {
		if got := blasCoreFor(c.core, c.level); got != c.want {
			t.Errorf("blasCoreFor(%q, %d) = %q, want %q", c.core, c.level, got, c.want)
		}
	}
	t.Setenv("OPENBLAS_CORETYPE", "Prescott")
	if got := BLASCoreType(); got != "" {
		t.Errorf("BLASCoreType with OPENBLAS_CORETYPE set = %q, want none (the environment decides)", got)
	}
	core := BLASCore()
	if core == "" {
		t.Fatal("BLASCore: OpenBLAS reports no core name")
	}
	t.Logf("OpenBLAS core %s, CPU level %d", core, cpuLevel)
}
