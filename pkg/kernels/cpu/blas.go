package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
*/
import "C"

import "unsafe"

// setBLASThreads sets OpenBLAS's process-wide thread count.
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// blasThreads returns OpenBLAS's process-wide thread count.
func blasThreads() int { return int(C.openblas_get_num_threads()) }

// sgemm is row-major C = alpha*op(A)*op(B) + beta*C on one thread, with
// leading dimensions lda, ldb, ldc. It equals
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ { s += A(i,p) * B(p,j) }
//			C[i*ldc+j] = alpha*s + beta*C[i*ldc+j]
//		}
//	}
//
// where A(i,p) is a[i*lda+p] (or a[p*lda+i] when transA), B likewise.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	var pa, pb *C.float
	if k > 0 {
		pa = (*C.float)(unsafe.Pointer(&a[0]))
		pb = (*C.float)(unsafe.Pointer(&b[0]))
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), pa, C.blasint(lda), pb, C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
