//go:build cuda

package cuda

import (
	"fmt"

	"gorgonia.org/cu"

	"vireo/pkg/kernels"
)

// Concat implements kernels.LayoutOps: one copy_rows launch per part,
//
//	for o in outer, for each x in order: copy x[o, :, inner] to the next
//	x.Shape[axis]*inner values of y[o]
func (b *Backend) Concat(y *kernels.Tensor, xs []*kernels.Tensor, axis int) error {
	return b.concatSplit("concat", y, xs, axis, false)
}

// Split implements kernels.LayoutOps: the inverse of Concat.
func (b *Backend) Split(ys []*kernels.Tensor, x *kernels.Tensor, axis int) error {
	return b.concatSplit("split", x, ys, axis, true)
}

func (b *Backend) concatSplit(op string, whole *kernels.Tensor, parts []*kernels.Tensor, axis int, split bool) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: %s: no parts (want >= 1)", kernels.ErrShape, op)
	}
	shapes := make([]kernels.Shape, len(parts))
	for i, t := range parts {
		if t == nil {
			return fmt.Errorf("%w: %s: part %d is nil", kernels.ErrShape, op, i)
		}
		shapes[i] = t.Shape
	}
	ws, err := kernels.ConcatOutShape(shapes, axis)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": whole", whole, ws); err != nil {
		return err
	}
	a := axis
	if a < 0 {
		a += len(ws)
	}
	inner := ws[a+1:].Numel()
	outer, row := ws[:a].Numel(), ws[a]*inner
	return b.do(func() error {
		pw, err := b.addr(op+": whole", whole)
		if err != nil {
			return err
		}
		start := 0
		for i, t := range parts {
			pp, err := b.addr(fmt.Sprintf("%s: part %d", op, i), t)
			if err != nil {
				return err
			}
			chunk := shapes[i][a] * inner
			if split {
				err = b.launch("copy_rows", int64(outer*chunk), pp, pw, int64(outer), int64(chunk), int64(chunk), int64(0), int64(row), int64(start))
			} else {
				err = b.launch("copy_rows", int64(outer*chunk), pw, pp, int64(outer), int64(chunk), int64(row), int64(start), int64(chunk), int64(0))
			}
			if err != nil {
				return err
			}
			start += chunk
		}
		return nil
	})
}

// DepthToSpace implements kernels.LayoutOps on x (N,C,H,W), y
// (N,C/b^2,H*b,W*b):
//
//	y[n,c,h*b+i,w*b+j] = x[n,ch,h,w], ch = (i*b+j)*C/b^2 + c (DCR)
//	                                  ch = c*b^2 + i*b + j   (CRD)
func (b *Backend) DepthToSpace(y, x *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	return b.depthToSpace("depthtospace", y, x, p, false)
}

// DepthToSpaceBackward implements kernels.LayoutOps: the inverse
// permutation, dx[n,ch,h,w] = dy[n,c,h*b+i,w*b+j].
func (b *Backend) DepthToSpaceBackward(dx, dy *kernels.Tensor, p kernels.DepthToSpaceParams) error {
	if dx == nil {
		return nil
	}
	return b.depthToSpace("depthtospace backward", dy, dx, p, true)
}

// depthToSpace moves between sp (the spatial side: y or dy) and dp (the
// depth side: x or dx).
func (b *Backend) depthToSpace(op string, sp, dp *kernels.Tensor, p kernels.DepthToSpaceParams, back bool) error {
	dName, sName := "x", "y"
	if back {
		dName, sName = "dx", "dy"
	}
	if dp == nil {
		return fmt.Errorf("%w: %s: %s is nil", kernels.ErrShape, op, dName)
	}
	ss, err := kernels.DepthToSpaceOutShape(dp.Shape, p)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+sName, sp, ss); err != nil {
		return err
	}
	if overlaps(sp, dp) {
		return fmt.Errorf("%w: %s: %s shares storage with %s", kernels.ErrParam, op, sName, dName)
	}
	s := dp.Shape
	return b.do(func() error {
		ps, err := b.addrs(op, []string{sName, dName}, sp, dp)
		if err != nil {
			return err
		}
		return b.launch("depth_to_space", int64(s.Numel()), ps[0], ps[1], int64(s[0]), int64(s[1]), int64(s[2]), int64(s[3]),
			int64(p.Blocksize), boolArg(p.CRD), boolArg(back))
	})
}

// indexMap is the metadata of layout.cu's gather_tab and scatter_tab: the
// small-side extents, the big-side element stride per small-side axis,
// and per axis a table from small-side coordinate to big-side coordinate
// (-1: no source).
type indexMap struct {
	ext, stride []int
	tabs        [][]int
}

// meta flattens m as layout.cu reads it: rank, extents, strides, table
// offsets (into meta), tables.
func (m indexMap) meta() []int64 {
	r := len(m.ext)
	out := make([]int64, 1+3*r)
	out[0] = int64(r)
	for k := range r {
		out[1+k] = int64(m.ext[k])
		out[1+r+k] = int64(m.stride[k])
	}
	for k, t := range m.tabs {
		out[1+2*r+k] = int64(len(out))
		for _, v := range t {
			out = append(out, int64(v))
		}
	}
	return out
}

// identityTab is 0, 1, ..., n-1.
func identityTab(n int) []int {
	t := make([]int, n)
	for i := range t {
		t[i] = i
	}
	return t
}

// gather runs y[i] = x[map(i)] (value where the map has no source).
func (b *Backend) gather(op string, y, x *kernels.Tensor, m indexMap, value float32) error {
	meta := m.meta()
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"y", "x"}, y, x)
		if err != nil {
			return err
		}
		n := int64(y.Numel())
		if n == 0 {
			return nil
		}
		pm, err := b.stageInts(meta)
		if err != nil {
			return err
		}
		return b.launch("gather_tab", n, ps[0], ps[1], n, pm, value)
	})
}

// scatter clears dx, then runs dx[map(i)] = dy[i] (add: +=, atomically).
func (b *Backend) scatter(op string, dx, dy *kernels.Tensor, m indexMap, add bool) error {
	meta := m.meta()
	return b.do(func() error {
		ps, err := b.addrs(op, []string{"dx", "dy"}, dx, dy)
		if err != nil {
			return err
		}
		if err := zero(ps[0].(cu.DevicePtr), dx.Numel()); err != nil {
			return err
		}
		n := int64(dy.Numel())
		if n == 0 {
			return nil
		}
		pm, err := b.stageInts(meta)
		if err != nil {
			return err
		}
		return b.launch("scatter_tab", n, ps[0], ps[1], n, pm, boolArg(add))
	})
}

// Transpose implements kernels.LayoutOps: y[I] = x[J] with J[perm[k]] =
// I[k] (an empty perm reverses the axes), as a gather.
func (b *Backend) Transpose(y, x *kernels.Tensor, perm []int) error {
	if x == nil {
		return fmt.Errorf("%w: transpose: x is nil", kernels.ErrShape)
	}
	if len(perm) == 0 {
		perm = kernels.ReversePerm(len(x.Shape))
	}
	ys, err := kernels.TransposeOutShape(x.Shape, perm)
	if err != nil {
		return err
	}
	if err := kernels.CheckShape("transpose: y", y, ys); err != nil {
		return err
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: transpose: y shares storage with x", kernels.ErrParam)
	}
	xst := x.Shape.Strides()
	m := indexMap{ext: ys, stride: make([]int, len(ys)), tabs: make([][]int, len(ys))}
	for k, pk := range perm {
		m.stride[k] = xst[pk]
		m.tabs[k] = identityTab(ys[k])
	}
	return b.gather("transpose", y, x, m, 0)
}

// BroadcastTo implements kernels.LayoutOps: x is aligned to y's trailing
// axes and each of its extents must equal y's or be 1 (NumPy rules).
func (b *Backend) BroadcastTo(y, x *kernels.Tensor) error {
	if x == nil || y == nil {
		return fmt.Errorf("%w: broadcastto: x and y must not be nil", kernels.ErrShape)
	}
	ysh, xsh := y.Shape, x.Shape
	if len(xsh) > len(ysh) {
		return fmt.Errorf("%w: broadcastto: x %v has higher rank than y %v", kernels.ErrShape, xsh, ysh)
	}
	off := len(ysh) - len(xsh)
	xst := xsh.Strides()
	m := indexMap{ext: ysh, stride: make([]int, len(ysh)), tabs: make([][]int, len(ysh))}
	for k := range ysh {
		m.tabs[k] = make([]int, ysh[k]) // all 0: broadcast
	}
	for i, d := range xsh {
		switch {
		case d == ysh[off+i]:
			m.stride[off+i] = xst[i]
			m.tabs[off+i] = identityTab(d)
		case d == 1:
		default:
			return fmt.Errorf("%w: broadcastto: x %v cannot broadcast to y %v (axis %d: got %d, want 1 or %d)", kernels.ErrShape, xsh, ysh, off+i, d, ysh[off+i])
		}
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: broadcastto: y shares storage with x", kernels.ErrParam)
	}
	return b.gather("broadcastto", y, x, m, 0)
}

// sliceMap checks p against big's shape and small's, and maps the slice
// (small side) into big: coordinate o on axis k is start_k + o*step_k.
func sliceMap(op, smallName string, small, big *kernels.Tensor, p kernels.SliceParams) (indexMap, error) {
	ss, err := kernels.SliceOutShape(big.Shape, p)
	if err != nil {
		return indexMap{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+smallName, small, ss); err != nil {
		return indexMap{}, err
	}
	m := indexMap{ext: ss, stride: big.Shape.Strides(), tabs: make([][]int, len(ss))}
	for k, e := range ss {
		t := make([]int, e)
		for o := range t {
			t[o] = p.Starts[k] + o*p.Steps[k]
		}
		m.tabs[k] = t
	}
	return m, nil
}

// Slice implements kernels.LayoutOps for normalised p (see
// kernels.CheckSlice): y[o] = x[start + o*step] on every axis.
func (b *Backend) Slice(y, x *kernels.Tensor, p kernels.SliceParams) error {
	if x == nil {
		return fmt.Errorf("%w: slice: x is nil", kernels.ErrShape)
	}
	m, err := sliceMap("slice", "y", y, x, p)
	if err != nil {
		return err
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: slice: y shares storage with x", kernels.ErrParam)
	}
	return b.gather("slice", y, x, m, 0)
}

// SliceBackward implements kernels.LayoutOps: dx is zero except
// dx[start + o*step] = dy[o].
func (b *Backend) SliceBackward(dx, dy *kernels.Tensor, p kernels.SliceParams) error {
	if dx == nil {
		return nil
	}
	m, err := sliceMap("slice backward", "dy", dy, dx, p)
	if err != nil {
		return err
	}
	if overlaps(dx, dy) {
		return fmt.Errorf("%w: slice backward: dx shares storage with dy", kernels.ErrParam)
	}
	return b.scatter("slice backward", dx, dy, m, false)
}

// padMap checks p against small (x) and big (y), and maps y's positions
// into x with kernels.PadTables (-1: the constant).
func padMap(op, xName, yName string, small, big *kernels.Tensor, p kernels.PadParams) (indexMap, error) {
	if small == nil {
		return indexMap{}, fmt.Errorf("%w: %s: %s is nil", kernels.ErrShape, op, xName)
	}
	ys, err := kernels.PadOutShape(small.Shape, p)
	if err != nil {
		return indexMap{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+yName, big, ys); err != nil {
		return indexMap{}, err
	}
	return indexMap{ext: ys, stride: small.Shape.Strides(), tabs: kernels.PadTables(small.Shape, ys, p)}, nil
}

// Pad implements kernels.LayoutOps (ONNX Pad, any rank): y[I] = x[J] with
// J from padMap, or p.Value where the constant mode has no source.
func (b *Backend) Pad(y, x *kernels.Tensor, p kernels.PadParams) error {
	m, err := padMap("pad", "x", "y", x, y, p)
	if err != nil {
		return err
	}
	if overlaps(y, x) {
		return fmt.Errorf("%w: pad: y shares storage with x", kernels.ErrParam)
	}
	return b.gather("pad", y, x, m, p.Value)
}

// PadBackward implements kernels.LayoutOps: dx = 0, then dx[J] += dy[I]
// over every output I that read input J (atomic adds: edge and reflect
// read some inputs several times).
func (b *Backend) PadBackward(dx, dy *kernels.Tensor, p kernels.PadParams) error {
	if dx == nil {
		return nil
	}
	m, err := padMap("pad backward", "dx", "dy", dx, dy, p)
	if err != nil {
		return err
	}
	if overlaps(dx, dy) {
		return fmt.Errorf("%w: pad backward: dx shares storage with dy", kernels.ErrParam)
	}
	return b.scatter("pad backward", dx, dy, m, p.Mode != kernels.PadConstant)
}
