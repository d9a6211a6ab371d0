package cpu

import "vireo/pkg/kernels"

// Winograd F(2x2, 3x3) for the stride-1 3x3 convolutions that dominate
// detection necks, segmentation heads and ResNet blocks: per block of
// tile rows of one image, the input tiles are transformed (winoInput), 16
// GEMMs (M x C times C x tiles) multiply them by the transformed weights,
// and the products are transformed back into 2x2 output blocks
// (winoOutput), all in a core's L2, before the epilogue. 16 multiplies per
// channel and tile instead of 36: 2.25x fewer flops than im2col or the
// shifted GEMMs, at the price of the transforms and of rounding: the
// transforms add and subtract (and halve, for the weights), so the result
// differs from the direct sum by a few float32 ulps of the inputs' scale,
// well inside the conformance tolerance (1e-4) and ONNX Runtime parity
// (1e-3).

// When the Winograd path pays (measured with TestWinogradAB's shapes on
// one and two threads, min of 60 interleaved runs against the shifted
// GEMMs): the input transform works a tile row at a time, vectorised
// along the row, and costs per channel and tile what the GEMMs cost per
// channel, tile and output channel, so it needs rows of at least
// winoMinRowTiles tiles and rows x output channels of at least
// winoMinRowWork. PP-OCRv4 det's 96->24 convolutions gain 1.5x at
// 120x160 (80 tiles x 24) and 1.3x at 60x80 (40 x 24), and lose 0.7x at
// 30x40 (20 x 24); ResNet 64->64 at 32x32 (16 x 64) and 128->128 at
// 16x16 (8 x 128) gain 1.4-1.6x, 16->16 at 28x28 (14 x 16), 32->32 at
// 14x14 (7 x 32) and 256->256 at 8x8 (4 x 256) lose.
const (
	winoMinChannels = 16
	winoMinRowTiles = 8
	winoMinRowWork  = 512
)

// winoBudget is how many floats one task's transformed inputs and
// products (16 x (C + M) x tiles) may hold: about half a core's L2.
const winoBudget = 128 * 1024

// winograd reports whether the Winograd path applies: one group, a 3x3
// kernel with stride 1 and no dilation, and enough channels, tiles per
// row and output channels.
// q.wino forces it on (1, when the geometry allows it) or off (-1).
func (q *convPlan) winograd() bool {
	g := &q.geo
	if q.groups != 1 || g.kh != 3 || g.kw != 3 || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1 {
		return false
	}
	switch q.wino {
	case 1:
		return true
	case -1:
		return false
	}
	tw := (g.ow + 1) / 2
	return g.c >= winoMinChannels && tw >= winoMinRowTiles && tw*q.outer >= winoMinRowWork
}

// winoTiles returns the tile grid of one image (th x tw tiles of 2x2
// outputs) and the tiles per task, taken in order over the images'
// tiles: a multiple of 32 (the GEMM's column block) that winoBudget
// holds, at least 32, cut so that every thread gets a task.
func (q *convPlan) winoTiles(threads int) (th, tw, per int) {
	g := &q.geo
	th, tw = (g.oh+1)/2, (g.ow+1)/2
	all := q.n * th * tw
	per = max(32, winoBudget/(16*(g.c+q.outer))/32*32)
	if q.maxChunk > 0 { // tests: small tasks that end mid-row
		per = q.maxChunk
	}
	if all < per*threads {
		per = min(per, max(32, (all+threads-1)/threads+31)/32*32)
	}
	return th, tw, min(per, all)
}

// winoFused is convForward on the Winograd path: y = epilogue(conv(x, w)
// + b) in tasks of per tiles.
func (c *CPU) winoFused(q *convPlan, y, x, w, b []float32, ep convEpi) {
	M, C := q.outer, q.geo.c
	u := c.getScratch(16 * M * C)
	defer c.putScratch(u)
	winoWeights(w, M, C, *u)
	th, tw, per := q.winoTiles(c.threads)
	all := q.n * th * tw
	nt := (all + per - 1) / per
	blk := nt
	if q.flops() >= convParallelFlops {
		blk = 1
	}
	dynamicFor(c, nt, blk, winoWork{c: c, q: q, y: y, x: x, u: *u, bias: b, ep: ep, tiles: th * tw, tw: tw, per: per, all: all})
}

// winoWork is winoFused's per-thread loop over claimed tasks.
type winoWork struct {
	c                   *CPU
	q                   *convPlan
	y, x, u, bias       []float32
	ep                  convEpi
	tiles, tw, per, all int
}

func (b *winoWork) work(cl *claimer) {
	q, g := b.q, &b.q.geo
	M, C, T, tw := q.outer, g.c, b.per, b.tw
	v := b.c.getScratch(16 * C * T)
	defer b.c.putScratch(v)
	mo := b.c.getScratch(16 * M * T)
	defer b.c.putScratch(mo)
	buf := b.c.getScratch(max(winoInputBuf(tw), 4*tw))
	defer b.c.putScratch(buf)
	panel := b.c.getScratch(gemmPanel(C))
	defer b.c.putScratch(panel)
	for lo, hi, ok := cl.claim(); ok; lo, hi, ok = cl.claim() {
		for k := lo; k < hi; k++ {
			a0 := k * T
			a1 := min(a0+T, b.all)
			// The task's tiles, image by image.
			for a := a0; a < a1; {
				n, t0 := a/b.tiles, a%b.tiles
				t1 := min(b.tiles, t0+a1-a)
				g.winoInput(b.x[q.imgOff(n, 0):], t0, t1, tw, (*v)[a-a0:], T, *buf)
				a += t1 - t0
			}
			for xi := 0; xi < 16; xi++ {
				gemmNN(M, a1-a0, C, b.u[xi*M*C:], C, (*v)[xi*C*T:], T, 0, (*mo)[xi*M*T:], T, *panel)
			}
			for a := a0; a < a1; {
				n, t0 := a/b.tiles, a%b.tiles
				t1 := min(b.tiles, t0+a1-a)
				goff := q.gridOff(n, 0)
				g.winoOutput((*mo)[a-a0:], M, T, t0, t1, tw, b.y[goff:], *buf)
				b.epilogue(goff, t0, t1)
				a += t1 - t0
			}
		}
	}
}

// epilogue applies the epilogue to the outputs of tiles [t0, t1): one
// stretch of columns per output row they cover.
func (b *winoWork) epilogue(goff, t0, t1 int) {
	if b.bias == nil && b.ep.res == nil && b.ep.act.Kind == kernels.ActIdentity && !b.ep.act.Affine {
		return
	}
	g := &b.q.geo
	for t := t0; t < t1; {
		r, q0 := t/b.tw, t%b.tw
		q1 := min(b.tw, q0+t1-t)
		x0, x1 := 2*q0, min(2*q1, g.ow)
		for oy := 2 * r; oy < min(2*r+2, g.oh); oy++ {
			b.ep.apply(b.y, goff+oy*g.ow+x0, b.q.outer, x1-x0, b.q.p(), b.bias)
		}
		t += q1 - q0
	}
}
