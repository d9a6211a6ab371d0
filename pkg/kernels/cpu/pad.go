package cpu

import (
	"fmt"

	"vireo/pkg/kernels"
)

// padIdentityRun is the range [lo, hi) of t where t[o] = o - shift with
// shift the same across the range: the part of a row that is a plain copy.
func padIdentityRun(t []int, b int) (int, int) {
	lo := 0
	for lo < len(t) && (t[lo] < 0 || t[lo] != lo-b) {
		lo++
	}
	hi := lo
	for hi < len(t) && t[hi] >= 0 && t[hi] == hi-b {
		hi++
	}
	return lo, hi
}

func (c *CPU) padCheck(op string, big, small *kernels.Tensor, p kernels.PadParams, back bool) ([]float32, []float32, [][]int, error) {
	xName, yName := "x", "y"
	if back {
		xName, yName = "dx", "dy"
	}
	xd, err := hostOp(op, xName, small)
	if err != nil {
		return nil, nil, nil, err
	}
	ys, err := kernels.PadOutShape(small.Shape, p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := kernels.CheckShape(op+": "+yName, big, ys); err != nil {
		return nil, nil, nil, err
	}
	yd, err := hostOp(op, yName, big)
	if err != nil {
		return nil, nil, nil, err
	}
	return xd, yd, kernels.PadTables(small.Shape, ys, p), nil
}

// Pad implements kernels.LayoutOps (ONNX Pad, any rank): y[I] = x[J] with
// J[i] = tabs[i][I[i]] from kernels.PadTables, or p.Value where any J[i] is -1.
func (c *CPU) Pad(y, x *kernels.Tensor, p kernels.PadParams) error {
	if c.padBlocks(y, x, p) { // one constant-padded axis: block copies (pad_fast.go)
		return nil
	}
	xd, yd, tabs, err := c.padCheck("pad", y, x, p, false)
	if err != nil || len(yd) == 0 {
		return err
	}
	if len(x.Shape) == 0 {
		yd[0] = xd[0]
		return nil
	}
	r := len(x.Shape)
	xs := x.Shape.Strides()
	outer, n := splitLast(y.Shape)
	lt := tabs[r-1]
	lo, hi := padIdentityRun(lt, p.Pads[r-1])
	c.forRows(outer, n, func(row int, idx []int) {
		out := yd[row*n : (row+1)*n]
		base := 0
		for i, v := range idx {
			j := tabs[i][v]
			if j < 0 {
				for o := range out {
					out[o] = p.Value
				}
				return
			}
			base += j * xs[i]
		}
		in := xd[base : base+x.Shape[r-1]]
		for o := 0; o < lo; o++ {
			if j := lt[o]; j >= 0 {
				out[o] = in[j]
			} else {
				out[o] = p.Value
			}
		}
		if lo < hi {
			copy(out[lo:hi], in[lo-p.Pads[r-1]:])
		}
		for o := hi; o < n; o++ {
			if j := lt[o]; j >= 0 {
				out[o] = in[j]
			} else {
				out[o] = p.Value
			}
		}
	})
	return nil
}

// PadBackward implements kernels.LayoutOps: the adjoint of Pad, dx = 0 then
// dx[J] += dy[I] for every output I that copies input J (reflect and edge
// fold several outputs onto one input). Rows run in parallel across the
// leading axes whose tables are one-to-one.
func (c *CPU) PadBackward(dx, dy *kernels.Tensor, p kernels.PadParams) error {
	if dx == nil {
		return nil
	}
	dxd, dyd, tabs, err := c.padCheck("pad backward", dy, dx, p, true)
	if err != nil {
		return err
	}
	clear(dxd)
	if len(dyd) == 0 {
		return nil
	}
	if len(dx.Shape) == 0 {
		dxd[0] = dyd[0]
		return nil
	}
	r := len(dx.Shape)
	xs := dx.Shape.Strides()
	outer, n := splitLast(dy.Shape)
	k := 0 // leading axes whose outputs map to distinct inputs
	for k < len(outer) && (p.Mode == kernels.PadConstant || (p.Pads[k] <= 0 && p.Pads[r+k] <= 0)) {
		k++
	}
	lt := tabs[r-1]
	c.forSlabs(outer, k, n, func(row int, idx []int) {
		g := dyd[row*n : (row+1)*n]
		base := 0
		for i, v := range idx {
			j := tabs[i][v]
			if j < 0 {
				return
			}
			base += j * xs[i]
		}
		in := dxd[base : base+dx.Shape[r-1]]
		for o, v := range g {
			if j := lt[o]; j >= 0 {
				in[j] += v
			}
		}
	})
	return nil
}
