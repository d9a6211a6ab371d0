package cpu

import (
	"math/rand/v2"
	"slices"
	"testing"

	"vireo/pkg/kernels/kernelstest"
)

// TestIm2colLD checks im2colLD and its adjoint col2imLD against the
// definition on geometries that take each path: whole images on narrow
// grids (the AVX-512 rows, stride 1 up to 32 columns and stride 2 up to
// 16, with padding and dilation), wider grids, and column ranges that
// start or end inside a row; the columns past np in each row of ld are
// left alone.
func TestIm2colLD(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type geo struct{ c, h, w, k, s, d, p int }
	for _, gg := range []geo{
		{3, 7, 7, 3, 1, 1, 1}, {2, 4, 4, 3, 1, 1, 1}, {2, 14, 14, 3, 2, 1, 1}, {1, 28, 28, 3, 1, 1, 1},
		{2, 32, 32, 3, 1, 1, 1}, {2, 31, 31, 3, 2, 1, 1}, {2, 9, 9, 3, 1, 2, 2}, {2, 8, 8, 1, 2, 1, 0},
		{1, 16, 16, 7, 2, 1, 3}, {2, 33, 33, 3, 1, 1, 1}, {1, 40, 40, 3, 2, 1, 1}, {2, 5, 6, 5, 1, 1, 2},
		{2, 3, 3, 3, 3, 1, 1},
	} {
		g := convGeom{c: gg.c, h: gg.h, w: gg.w, kh: gg.k, kw: gg.k, sh: gg.s, sw: gg.s, dh: gg.d, dw: gg.d, pt: gg.p, pl: gg.p}
		g.oh = (g.h+2*g.pt-g.dh*(g.kh-1)-1)/g.sh + 1
		g.ow = (g.w+2*g.pl-g.dw*(g.kw-1)-1)/g.sw + 1
		P := g.cols()
		img := kernelstest.Rand(r, g.c*g.h*g.w, -1, 1)
		for _, rng := range [][2]int{{0, P}, {1, P - 1}, {g.ow / 2, min(P-g.ow/2, 2*g.ow+1)}} {
			p0, np := rng[0], rng[1]
			if np <= 0 {
				continue
			}
			ld := np + 5
			col := make([]float32, g.rows()*ld)
			for i := range col {
				col[i] = 42
			}
			want := slices.Clone(col)
			for ci := 0; ci < g.c; ci++ {
				for ki := 0; ki < g.kh; ki++ {
					for kj := 0; kj < g.kw; kj++ {
						row := (ci*g.kh+ki)*g.kw + kj
						for p := p0; p < p0+np; p++ {
							oy, ox := p/g.ow, p%g.ow
							iy, ix := oy*g.sh-g.pt+ki*g.dh, ox*g.sw-g.pl+kj*g.dw
							var v float32
							if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
								v = img[(ci*g.h+iy)*g.w+ix]
							}
							want[row*ld+p-p0] = v
						}
					}
				}
			}
			// col2imLD, the adjoint, adds the same columns back in the same
			// order (rows, then columns), so the sums match bit for bit.
			back := kernelstest.Rand(r, len(img), -1, 1)
			wantBack := slices.Clone(back)
			for row := 0; row < g.rows(); row++ {
				ci, ki, kj := row/(g.kh*g.kw), row/g.kw%g.kh, row%g.kw
				for p := p0; p < p0+np; p++ {
					oy, ox := p/g.ow, p%g.ow
					iy, ix := oy*g.sh-g.pt+ki*g.dh, ox*g.sw-g.pl+kj*g.dw
					if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
						wantBack[(ci*g.h+iy)*g.w+ix] += want[row*ld+p-p0]
					}
				}
			}
			g.im2colLD(img, col, p0, np, ld)
			g.col2imLD(want, back, p0, np, ld)
			for i := range back {
				if back[i] != wantBack[i] {
					t.Fatalf("%+v columns [%d,%d): col2imLD: img[%d] = %g, want %g", gg, p0, p0+np, i, back[i], wantBack[i])
				}
			}
			for i := range col {
				if col[i] != want[i] {
					t.Fatalf("%+v columns [%d,%d): col[%d] (row %d, column %d) = %g, want %g",
						gg, p0, p0+np, i, i/ld, i%ld, col[i], want[i])
				}
			}
		}
	}
}

// TestPadPlane checks padPlane (the shifted GEMMs' zero-bordered phase
// planes) against its definition, on grids whose rows take the AVX-512
// path (phase rows up to 32 at stride 1, 16 at stride 2) and wider ones.
func TestPadPlane(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	type geo struct{ c, h, w, k, s, p int }
	for _, gg := range []geo{
		{2, 7, 7, 3, 1, 1}, {2, 4, 4, 3, 1, 1}, {3, 28, 28, 3, 2, 1}, {1, 30, 30, 3, 1, 1}, {2, 31, 31, 3, 1, 1},
		{2, 29, 29, 3, 2, 1}, {2, 40, 40, 3, 1, 1}, {1, 36, 36, 3, 2, 1}, {2, 16, 16, 7, 2, 3}, {2, 9, 12, 5, 1, 2},
	} {
		q := &convPlan{geo: convGeom{c: gg.c, h: gg.h, w: gg.w, kh: gg.k, kw: gg.k, sh: gg.s, sw: gg.s, dh: 1, dw: 1, pt: gg.p, pl: gg.p}}
		g := &q.geo
		g.oh = (g.h+2*g.pt-g.kh)/g.sh + 1
		g.ow = (g.w+2*g.pl-g.kw)/g.sw + 1
		l := q.shiftLayout()
		img := kernelstest.Rand(r, g.c*g.h*g.w, -1, 1)
		dst := make([]float32, g.c*l.cstride)
		for i := range dst {
			dst[i] = 42
		}
		q.padPlane(img, dst, &l)
		for ci := 0; ci < g.c; ci++ {
			for a := 0; a < g.sh; a++ {
				for b := 0; b < g.sw; b++ {
					for yq := 0; yq < l.hq; yq++ {
						for xq := 0; xq < l.wq; xq++ {
							iy, ix := yq*g.sh+a-g.pt, xq*g.sw+b-g.pl
							var want float32
							if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
								want = img[(ci*g.h+iy)*g.w+ix]
							}
							i := ci*l.cstride + (a*g.sw+b)*l.plane + yq*l.wq + xq
							if dst[i] != want {
								t.Fatalf("%+v (wq %d): dst[%d][%d][%d][%d][%d] = %g, want %g", gg, l.wq, ci, a, b, yq, xq, dst[i], want)
							}
						}
					}
				}
			}
		}
	}
}

// TestCropRows checks cropRows against its definition on blocks that
// start and end inside rows, inside the padding columns, and span many
// rows; the outputs outside the block are left alone.
func TestCropRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range []struct{ oh, ow, wp, outer int }{{7, 7, 9, 3}, {4, 4, 6, 2}, {14, 14, 16, 5}, {28, 28, 30, 1}, {3, 40, 41, 2}} {
		P, np := s.oh*s.ow, (s.oh-1)*s.wp+s.ow
		for _, blk := range [][2]int{{0, np}, {s.ow, 1}, {s.ow + 1, s.wp}, {3, np - 3}, {s.wp - 1, 2 * s.wp}} {
			p0, w := blk[0], min(blk[1], np-blk[0])
			src := kernelstest.Rand(r, s.outer*w, -1, 1)
			dst := make([]float32, s.outer*P)
			for i := range dst {
				dst[i] = 42
			}
			want := slices.Clone(dst)
			for m := 0; m < s.outer; m++ {
				for p := p0; p < p0+w; p++ {
					if ox := p % s.wp; ox < s.ow {
						want[m*P+(p/s.wp)*s.ow+ox] = src[m*w+p-p0]
					}
				}
			}
			cropRows(src, w, dst, P, s.outer, p0, s.wp, s.ow)
			if !slices.Equal(dst, want) {
				t.Errorf("%+v block [%d,%d): cropRows differs from the definition", s, p0, p0+w)
			}
		}
	}
}
