package cpu

import "testing"

// BenchmarkSplitOverhead is the cost of one parallel loop whose body does
// almost nothing: handing a chunk to a worker and joining it.
func BenchmarkSplitOverhead(b *testing.B) {
	c, err := New(Config{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var sink [2][8]int
	for i := 0; i < b.N; i++ {
		c.parallel(2, 1, func(lo, hi int) { sink[lo][0]++ })
	}
}

// BenchmarkSplitAfterGap is the same after 50 µs of serial work on the
// calling goroutine (as between two ops of a training step), which lets
// the worker park: the wake-up latency shows. The serial work alone is
// BenchmarkGap.
func BenchmarkSplitAfterGap(b *testing.B) {
	c, err := New(Config{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var sink [2][8]float64
	for i := 0; i < b.N; i++ {
		spin(&sink[0][1])
		c.parallel(2, 1, func(lo, hi int) { sink[lo][0]++ })
	}
}

func BenchmarkGap(b *testing.B) {
	var x float64
	for i := 0; i < b.N; i++ {
		spin(&x)
	}
}

//go:noinline
func spin(x *float64) {
	for i := 0; i < 4000; i++ {
		*x = *x*0.999 + 1
	}
}
