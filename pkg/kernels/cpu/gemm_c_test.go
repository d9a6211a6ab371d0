package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vireo/pkg/kernels/kernelstest"
)

// TestGemmNN checks gemmNN against OpenBLAS on shapes with row and column
// tails, padded leading dimensions and both betas.
func TestGemmNN(t *testing.T) {
	if !gemm512 {
		t.Log("no AVX-512: gemmNN is OpenBLAS here, checked anyway")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range []struct{ m, n, k int }{
		{1, 1, 1}, {8, 32, 16}, {7, 33, 5}, {24, 4096, 24}, {13, 47, 75}, {96, 300, 384}, {17, 15, 9}, {3, 100, 1},
	} {
		for _, beta := range []float32{0, 1} {
			lda, ldb, ldc := s.k+3, s.n+5, s.n+2
			a := kernelstest.Rand(r, s.m*lda, -1, 1)
			b := kernelstest.Rand(r, s.k*ldb, -1, 1)
			c0 := kernelstest.Rand(r, s.m*ldc, -1, 1)
			want := append([]float32(nil), c0...)
			got := append([]float32(nil), c0...)
			sgemm(false, false, s.m, s.n, s.k, 1, a, lda, b, ldb, beta, want, ldc)
			gemmNN(s.m, s.n, s.k, a, lda, b, ldb, beta, got, ldc, make([]float32, gemmPanel(s.k)))
			kernelstest.AssertClose(t, fmt.Sprintf("%+v beta %g", s, beta), got, want, kernelstest.Tol{Abs: 1e-5, Rel: 1e-5})
		}
	}
}

// BenchmarkGemmNN compares gemmNN with OpenBLAS on convolution shapes
// (M output channels, K input channels, N positions), one thread.
func BenchmarkGemmNN(bm *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct{ m, n, k int }{{24, 4096, 24}, {96, 2048, 96}, {24, 1024, 96}, {384, 300, 384}} {
		a := kernelstest.Rand(r, s.m*s.k, -1, 1)
		b := kernelstest.Rand(r, s.k*s.n, -1, 1)
		c := make([]float32, s.m*s.n)
		panel := make([]float32, gemmPanel(s.k))
		flops := 2 * float64(s.m*s.n*s.k)
		bm.Run(fmt.Sprintf("vireo/%dx%dx%d", s.m, s.n, s.k), func(bm *testing.B) {
			for bm.Loop() {
				gemmNN(s.m, s.n, s.k, a, s.k, b, s.n, 0, c, s.n, panel)
			}
			bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		bm.Run(fmt.Sprintf("openblas/%dx%dx%d", s.m, s.n, s.k), func(bm *testing.B) {
			for bm.Loop() {
				sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, b, s.n, 0, c, s.n)
			}
			bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestGemmOffs checks gemmOffs (packed weights, B rows as shifted views
// of channel planes, K in channel blocks) against the plain sum, on
// shapes with row and column tails and more channels than one block.
func TestGemmOffs(t *testing.T) {
	if !gemm512 {
		t.Skip("no AVX-512: gemmOffs is not used on this CPU")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for _, s := range []struct{ m, n, chans, kh, kw, wq int }{
		{24, 1000, 96, 3, 3, 50}, {1, 33, 1, 3, 3, 10}, {13, 47, 40, 3, 3, 20}, {8, 64, 20, 5, 5, 30}, {9, 100, 200, 1, 2, 12}, {7, 31, 3, 7, 7, 40},
	} {
		kk := s.kh * s.kw
		toff := make([]int64, kk)
		for tap := range toff {
			toff[tap] = int64((tap/s.kw)*s.wq + tap%s.kw)
		}
		cstride := int(toff[kk-1]) + s.n + 3
		K := s.chans * kk
		a := kernelstest.Rand(r, s.m*K, -1, 1)
		base := kernelstest.Rand(r, s.chans*cstride, -1, 1)
		ldc := s.n + 2
		want := make([]float32, s.m*ldc)
		for i := 0; i < s.m; i++ {
			for j := 0; j < s.n; j++ {
				var sum float64
				for ci := 0; ci < s.chans; ci++ {
					for tap, o := range toff {
						sum += float64(a[i*K+ci*kk+tap]) * float64(base[ci*cstride+int(o)+j])
					}
				}
				want[i*ldc+j] = float32(sum)
			}
		}
		ap := make([]float32, s.m*K)
		gemmPackA(s.m, K, a, K, ap)
		got := make([]float32, s.m*ldc)
		gemmOffs(s.m, s.n, s.chans, ap, base, toff, cstride, got, ldc, make([]float32, gemmPanel(K)))
		kernelstest.AssertClose(t, fmt.Sprintf("%+v", s), got, want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
	}
}

// packARef is gemmPackA's layout as a plain loop.
func packARef(m, k int, a []float32, lda int, ap []float32) {
	for i := 0; i < m; i += 8 {
		mr := min(8, m-i)
		for r := 0; r < mr; r++ {
			for p := 0; p < k; p++ {
				ap[i*k+p*mr+r] = a[(i+r)*lda+p]
			}
		}
	}
}

// TestPackA checks gemmPackA against the plain loop, with row tails
// (m%8 != 0) and a padded row stride.
func TestPackA(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range []struct{ m, k, lda int }{{1, 1, 1}, {7, 9, 9}, {8, 9, 11}, {9, 27, 27}, {64, 576, 576}, {130, 1152, 1153}, {512, 4608, 4608}} {
		a := make([]float32, s.m*s.lda)
		for i := range a {
			a[i] = rng.Float32()
		}
		want := make([]float32, s.m*s.k)
		packARef(s.m, s.k, a, s.lda, want)
		got := make([]float32, s.m*s.k)
		gemmPackA(s.m, s.k, a, s.lda, got)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: ap[%d] = %v, want %v", s, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkPackA packs resnet18's widest 3x3 weights (512 x 512*9), as a
// forward pass of layer4 does: the plain Go loop the packer replaced, and
// gemmPackA in C.
func BenchmarkPackA(bm *testing.B) {
	m, k := 512, 4608
	a, ap := make([]float32, m*k), make([]float32, m*k)
	for name, pack := range map[string]func(){
		"go": func() { packARef(m, k, a, k, ap) },
		"c":  func() { gemmPackA(m, k, a, k, ap) },
	} {
		bm.Run(name, func(bm *testing.B) {
			bm.SetBytes(int64(8 * m * k))
			for bm.Loop() {
				pack()
			}
		})
	}
}

// TestGemmAVX512 checks gemm's own-kernel path (A transposed, B not,
// alpha 1, beta 0 or 1) against the OpenBLAS path, on shapes with row and
// column tails and padded B and C strides, at 1 and 2 threads (plain A x
// B, which stays on OpenBLAS, too).
func TestGemmAVX512(t *testing.T) {
	if !gemm512 {
		t.Skip("no AVX-512 on this CPU: gemm always runs OpenBLAS")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, threads := range []int{1, 2} {
		c, err := New(Config{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []struct{ m, n, k int }{{576, 256, 64}, {37, 300, 19}, {4608, 128, 512}, {4608, 320, 512}, {8, 257, 1}} {
			for _, transA := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					lda := s.k + 3
					if transA {
						lda = s.m // the own path takes a contiguous A only
					}
					rowsA := s.m
					if transA {
						rowsA = s.k
					}
					ldb, ldc := s.n+1, s.n+2
					a := kernelstest.Rand(rng, rowsA*lda, -1, 1)
					b := kernelstest.Rand(rng, s.k*ldb, -1, 1)
					c0 := kernelstest.Rand(rng, s.m*ldc, -1, 1)
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					gemmOpenBLASOnly = true
					c.gemm(transA, false, s.m, s.n, s.k, 1, a, lda, b, ldb, beta, want, ldc)
					gemmOpenBLASOnly = false
					c.gemm(transA, false, s.m, s.n, s.k, 1, a, lda, b, ldb, beta, got, ldc)
					kernelstest.AssertClose(t, fmt.Sprintf("threads %d %+v transA %v beta %v", threads, s, transA, beta), got, want, kernelstest.Tol{Abs: 1e-4, Rel: 1e-4})
				}
			}
		}
		c.Close()
	}
}

// BenchmarkGemmTransA times the input-gradient GEMM of resnet18's
// stride-2 3x3 convolutions at batch 32 (dcol = W^T dY, K x total x
// outer) through OpenBLAS and through gemmAVX512, side by side.
func BenchmarkGemmTransA(bm *testing.B) {
	c, err := New(Config{})
	if err != nil {
		bm.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []struct{ m, n, k int }{{576, 2048, 128}, {1152, 512, 256}, {2304, 128, 512}} {
		a, b, cc := kernelstest.Rand(rng, s.k*s.m, -1, 1), kernelstest.Rand(rng, s.k*s.n, -1, 1), make([]float32, s.m*s.n)
		for _, own := range []bool{false, true} {
			bm.Run(fmt.Sprintf("m%d_n%d_k%d/own=%v", s.m, s.n, s.k, own), func(bm *testing.B) {
				gemmOpenBLASOnly = !own
				defer func() { gemmOpenBLASOnly = false }()
				for bm.Loop() {
					c.gemm(true, false, s.m, s.n, s.k, 1, a, s.m, b, s.n, 0, cc, s.n)
				}
				bm.ReportMetric(2*float64(s.m*s.n*s.k)*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
