package cpu

// The transforms of Winograd's minimal filtering F(2x2, 3x3) (Lavin and
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): a 2x2
// block of outputs of a 3x3 correlation is
//
//	Y = A^T [ (G g G^T) . (B^T d B) ] A
//
// for the 4x4 input patch d and the 3x3 kernel g, with
//
//	B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//	G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//	A^T = [1 1 1 0; 0 1 -1 -1]
//
// so the 16 element-wise products replace 36 multiplies per channel, and
// summed over channels they are 16 independent GEMMs (winograd.go).

/*
#cgo CFLAGS: -O3
#cgo noescape vireo_wino_weights
#cgo nocallback vireo_wino_weights
#cgo noescape vireo_wino_input
#cgo nocallback vireo_wino_input
#cgo noescape vireo_wino_output
#cgo nocallback vireo_wino_output
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIREO_WINO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VIREO_WINO_CLONES
#endif

// U[xi][m][c] = (G g G^T)[i][j], xi = 4i+j, for the kernels w[m][c][3][3].
static void vireo_wino_weights(const float *w, long M, long C, float *U) {
	long MC = M * C;
	for (long m = 0; m < M; m++) {
		for (long c = 0; c < C; c++) {
			const float *g = w + (m * C + c) * 9;
			float t[4][3];
			for (int k = 0; k < 3; k++) {
				float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k];
				t[0][k] = g0;
				t[1][k] = 0.5f * (g0 + g1 + g2);
				t[2][k] = 0.5f * (g0 - g1 + g2);
				t[3][k] = g2;
			}
			float *u = U + m * C + c;
			for (int i = 0; i < 4; i++) {
				float a = t[i][0], b = t[i][1], e = t[i][2];
				u[(4 * i + 0) * MC] = a;
				u[(4 * i + 1) * MC] = 0.5f * (a + b + e);
				u[(4 * i + 2) * MC] = 0.5f * (a - b + e);
				u[(4 * i + 3) * MC] = e;
			}
		}
	}
}

// vireo_wino_tiles: the 16 transformed values of tw tiles whose 4 input
// rows are r0..r3 (padded rows: tile q reads columns 2q..2q+3), into
// v[xi*ld + q].
static inline __attribute__((always_inline)) void vireo_wino_tiles(const float *restrict r0,
		const float *restrict r1, const float *restrict r2, const float *restrict r3,
		long tw, float *restrict v, long ld) {
#pragma GCC ivdep
	for (long q = 0; q < tw; q++) {
		// t[j][i]: column 2q+j after B^T down the rows; then B across.
		float t[4][4];
		for (int j = 0; j < 4; j++) {
			float d0 = r0[2 * q + j], d1 = r1[2 * q + j], d2 = r2[2 * q + j], d3 = r3[2 * q + j];
			t[j][0] = d0 - d2;
			t[j][1] = d1 + d2;
			t[j][2] = d2 - d1;
			t[j][3] = d1 - d3;
		}
		for (int i = 0; i < 4; i++) {
			v[(4 * i + 0) * ld + q] = t[0][i] - t[2][i];
			v[(4 * i + 1) * ld + q] = t[1][i] + t[2][i];
			v[(4 * i + 2) * ld + q] = t[2][i] - t[1][i];
			v[(4 * i + 3) * ld + q] = t[1][i] - t[3][i];
		}
	}
}

// vireo_wino_input writes V[xi][c][t-t0] = (B^T d B)[i][j] for the tiles
// t in [t0, t1) of one image (planes img[c][h][w], zero outside, padded by
// pt rows on top and pl columns on the left; tw tiles per tile row): tile
// t = r*tw + q covers input rows 2r-pt .. 2r-pt+3 and columns 2q-pl ..
// 2q-pl+3. buf holds 5*(2*tw+2) floats.
VIREO_WINO_CLONES
void vireo_wino_input(const float *restrict img, long C, long h, long w, long pt, long pl,
		long t0, long t1, long tw, float *restrict V, long T, float *restrict buf) {
	long n2 = 2 * tw + 2, CT = C * T;
	float *zero = buf + 4 * n2; // a row of zeros
	memset(zero, 0, n2 * sizeof(float));
	// Padded row j holds src[j-pl] inside the image, else 0.
	long jlo = pl < n2 ? pl : n2, jhi = pl + w < n2 ? pl + w : n2;
	if (jhi < jlo) jhi = jlo;
	for (long c = 0; c < C; c++) {
		const float *plane = img + c * h * w;
		for (long t = t0; t < t1;) {
			long r = t / tw, q0 = t - r * tw, q1 = tw;
			if (q1 - q0 > t1 - t) q1 = q0 + (t1 - t);
			const float *rows[4];
			for (int i = 0; i < 4; i++) {
				long y = 2 * r - pt + i;
				if (y < 0 || y >= h) {
					rows[i] = zero;
					continue;
				}
				// Only the columns [ja, jb) these tiles read.
				float *row = buf + i * n2;
				const float *src = plane + y * w - pl;
				long ja = 2 * q0, jb = 2 * q1 + 2;
				long a = ja > jlo ? ja : jlo, b = jb < jhi ? jb : jhi;
				if (b < a) b = a = ja;
				if (a > ja) memset(row + ja, 0, (a - ja) * sizeof(float));
				if (b > a) memcpy(row + a, src + a, (b - a) * sizeof(float));
				if (jb > b) memset(row + b, 0, (jb - b) * sizeof(float));
				rows[i] = row;
			}
			vireo_wino_tiles(rows[0] + 2 * q0, rows[1] + 2 * q0, rows[2] + 2 * q0, rows[3] + 2 * q0,
				q1 - q0, V + c * T + (t - t0), CT);
			t += q1 - q0;
		}
	}
}

// vireo_wino_output writes y[m][2r+a][2q+b] = (A^T Mo A)[a][b] for the
// tiles t = r*tw + q in [t0, t1) from the GEMM products Mo[xi][m][t-t0],
// clipped to the oh x ow grid (planes P apart). buf holds 4*tw floats.
VIREO_WINO_CLONES
void vireo_wino_output(const float *restrict Mo, long M, long T, long tw, long t0, long t1,
		long oh, long ow, float *restrict y, long P, float *restrict buf) {
	long MT = M * T;
	for (long m = 0; m < M; m++) {
		for (long t = t0; t < t1;) {
			long r = t / tw, q0 = t - r * tw, q1 = tw;
			if (q1 - q0 > t1 - t) q1 = q0 + (t1 - t);
			long nq = q1 - q0, oy = 2 * r, x0 = 2 * q0;
			long cols = (2 * q1 <= ow ? 2 * q1 : ow) - x0;
			const float *s = Mo + m * T + (t - t0);
			// Straight into y unless the last tile column is cut (odd
			// width) or the tile row's second output row is (odd height).
			float *d0 = y + m * P + oy * ow + x0, *d1 = d0 + ow;
			int cut = cols < 2 * nq;
			if (cut) d0 = buf, d1 = buf + 2 * nq;
			else if (oy + 1 >= oh) d1 = buf + 2 * nq;
#pragma GCC ivdep
			for (long q = 0; q < nq; q++) {
				float m00 = s[0 * MT + q], m01 = s[1 * MT + q], m02 = s[2 * MT + q], m03 = s[3 * MT + q];
				float m10 = s[4 * MT + q], m11 = s[5 * MT + q], m12 = s[6 * MT + q], m13 = s[7 * MT + q];
				float m20 = s[8 * MT + q], m21 = s[9 * MT + q], m22 = s[10 * MT + q], m23 = s[11 * MT + q];
				float m30 = s[12 * MT + q], m31 = s[13 * MT + q], m32 = s[14 * MT + q], m33 = s[15 * MT + q];
				float s00 = m00 + m10 + m20, s01 = m01 + m11 + m21, s02 = m02 + m12 + m22, s03 = m03 + m13 + m23;
				float s10 = m10 - m20 - m30, s11 = m11 - m21 - m31, s12 = m12 - m22 - m32, s13 = m13 - m23 - m33;
				d0[2 * q] = s00 + s01 + s02;
				d0[2 * q + 1] = s01 - s02 - s03;
				d1[2 * q] = s10 + s11 + s12;
				d1[2 * q + 1] = s11 - s12 - s13;
			}
			if (cut) {
				memcpy(y + m * P + oy * ow + x0, d0, cols * sizeof(float));
				if (oy + 1 < oh) memcpy(y + m * P + (oy + 1) * ow + x0, d1, cols * sizeof(float));
			}
			t += nq;
		}
	}
}
*/
import "C"

// winoWeights writes U (16 x M x C, xi-major) from w (M x C x 3 x 3).
func winoWeights(w []float32, M, C int, U []float32) {
	w, U = w[:M*C*9], U[:16*M*C]
	C.vireo_wino_weights(fptr(w), C.long(M), C.long(C), fptr(U))
}

// winoInput writes V (16 x C x T, from its start) for the tiles [t0, t1)
// of one image's
// planes img (C x h x w), tw tiles per tile row; buf holds
// winoInputBuf(tw) floats.
func (g *convGeom) winoInput(img []float32, t0, t1, tw int, V []float32, T int, buf []float32) {
	img, buf = img[:g.c*g.h*g.w], buf[:winoInputBuf(tw)]
	_ = V[15*g.c*T+(g.c-1)*T+(t1-t0)-1]
	C.vireo_wino_input(fptr(img), C.long(g.c), C.long(g.h), C.long(g.w), C.long(g.pt), C.long(g.pl),
		C.long(t0), C.long(t1), C.long(tw), fptr(V), C.long(T), fptr(buf))
}

// winoOutput writes the outputs of tiles [t0, t1) into y (M planes of oh x
// ow, P = oh*ow apart) from Mo (16 x M x T); buf holds 4*tw floats.
func (g *convGeom) winoOutput(Mo []float32, M, T, t0, t1, tw int, y, buf []float32) {
	P := g.oh * g.ow
	y, buf = y[:M*P], buf[:4*tw]
	_ = Mo[15*M*T+(M-1)*T+(t1-t0)-1]
	C.vireo_wino_output(fptr(Mo), C.long(M), C.long(T), C.long(tw), C.long(t0), C.long(t1),
		C.long(g.oh), C.long(g.ow), fptr(y), C.long(P), fptr(buf))
}

// winoInputBuf is the scratch winoInput needs for tw tiles per row.
func winoInputBuf(tw int) int { return 5 * (2*tw + 2) }
