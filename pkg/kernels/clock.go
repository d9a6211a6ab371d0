package kernels

import (
	"syscall"
	"time"
)

// ProcessCPUTime is the user and system CPU time of the whole process so
// far, all threads together (microsecond resolution; 0 where unavailable):
// the clock of CPU-time benchmarks and of kernel profiles, where CPU time
// over wall time is how many cores a kernel kept busy.
func ProcessCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
