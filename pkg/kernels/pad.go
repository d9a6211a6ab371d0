package kernels

// PadTables maps, per axis, each output position of ONNX Pad to the input position it
// copies, or -1 for the constant. Negative pads crop first; the kept range
// of axis i is [c0, c1) with c0 = max(0,-begin), c1 = dim - max(0,-end), and
// output o sits at input j = o - begin:
//
//	constant: j if c0 <= j < c1, else -1
//	edge:     clamp(j, c0, c1-1)
//	reflect:  j reflected about c0 and c1-1 without repeating the edge
//	          (period 2*(n-1), n = c1-c0; as NumPy for pads >= n)
func PadTables(x, y Shape, p PadParams) [][]int {
	r := len(x)
	tabs := make([][]int, r)
	for i := range r {
		b, e := p.Pads[i], p.Pads[r+i]
		c0, c1 := max(0, -b), x[i]-max(0, -e)
		n := c1 - c0
		t := make([]int, y[i])
		for o := range t {
			j := o - b
			switch {
			case j >= c0 && j < c1:
				t[o] = j
			case p.Mode == PadConstant:
				t[o] = -1
			case p.Mode == PadEdge:
				t[o] = min(max(j, c0), c1-1)
			case n == 1:
				t[o] = c0
			default:
				per := 2 * (n - 1)
				m := ((j-c0)%per + per) % per
				if m >= n {
					m = per - m
				}
				t[o] = c0 + m
			}
		}
		tabs[i] = t
	}
	return tabs
}
