package main

import (
	"fmt"
	"os"
	"syscall"

	"vireo/pkg/kernels/cpu"
)

// reexecForBLAS restarts vireo, once, with OPENBLAS_CORETYPE set when
// OpenBLAS took this CPU for a generic one (see cpu.BLASCoreType): the
// variable is read when the library loads, before main runs. Exec
// replaces the process (same pid, arguments and environment plus the
// variable); if it fails, vireo runs on with the slow kernels and says so.
func reexecForBLAS() {
	core := cpu.BLASCoreType()
	if core == "" {
		return
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, append(os.Environ(), "OPENBLAS_CORETYPE="+core))
	}
	fmt.Fprintf(os.Stderr, "vireo: warning: OpenBLAS runs its generic %s kernels on this CPU and restarting with OPENBLAS_CORETYPE=%s failed (%v); set it in the environment\n",
		cpu.BLASCore(), core, err)
}

// blasLine describes the OpenBLAS kernels for vireo version.
func blasLine() string {
	return fmt.Sprintf("openblas core %s (OPENBLAS_CORETYPE=%q)", cpu.BLASCore(), os.Getenv("OPENBLAS_CORETYPE"))
}
