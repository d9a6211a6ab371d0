package cpu

// OpenBLAS chooses its kernels when the library loads, from the CPU's
// family and model. Debian 12's OpenBLAS (0.3.21) predates some CPUs with
// AVX-512 (Sapphire Rapids Xeons among them) and takes them for a generic
// x86-64, "Prescott": SSE3 kernels whose SGEMM ran at ~30 GFLOP/s on one
// thread of such a machine, where the SkylakeX kernels ran at ~140. The
// only way to choose is OPENBLAS_CORETYPE, read by the library's load-time
// constructor, before any Go code runs; cmd/vireo re-executes itself with
// the value BLASCoreType gives, and the Makefile exports it to the tests.

/*
extern char *openblas_get_corename(void);

static int vireo_cpu_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
			__builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
			__builtin_cpu_supports("avx512cd"))
		return 2;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return 1;
#endif
	return 0;
}
*/
import "C"

import "os"

// BLASCore is the name of the kernel set OpenBLAS runs in this process
// ("SkylakeX", "Haswell", "Zen", "Prescott", ...).
func BLASCore() string { return C.GoString(C.openblas_get_corename()) }

// cpuLevel is what the CPU can run: 2 AVX-512 (F, BW, DQ, VL, CD: what
// OpenBLAS's SkylakeX kernels use), 1 AVX2 with FMA, 0 neither.
var cpuLevel = int(C.vireo_cpu_level())

// BLASCoreType is the OPENBLAS_CORETYPE this process should run with, or
// "" when OpenBLAS's own choice stands: the variable is already set, or
// BLASCoreFor finds nothing better.
func BLASCoreType() string {
	if os.Getenv("OPENBLAS_CORETYPE") != "" {
		return ""
	}
	return BLASCoreFor(BLASCore())
}

// BLASCoreFor is the kernel set to run instead of core, OpenBLAS's own
// choice for this CPU: SkylakeX or Haswell when core is the generic
// "Prescott" on a CPU with AVX-512 or AVX2, else "" (core stands).
func BLASCoreFor(core string) string { return blasCoreFor(core, cpuLevel) }

func blasCoreFor(core string, level int) string {
	if core != "Prescott" {
		return ""
	}
	switch level {
	case 2:
		return "SkylakeX"
	case 1:
		return "Haswell"
	}
	return ""
}
