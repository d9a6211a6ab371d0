package graph

import "fmt"

// Small shape helpers shared by the analysers.

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func cloneInts(s []int) []int { return append([]int{}, s...) }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// windowOut is the output extent of a convolution or pooling window.
func windowOut(in, k, stride, dil, padBegin, padEnd int, ceil bool) int {
	eff := (k-1)*dil + 1
	span := in + padBegin + padEnd - eff
	if span < 0 {
		return 0
	}
	if !ceil {
		return span/stride + 1
	}
	out := (span+stride-1)/stride + 1
	// The last window must start inside the input or the left padding.
	if (out-1)*stride >= in+padBegin {
		out--
	}
	return out
}

// autoPads resolves ONNX auto_pad for one spatial axis: the begin and end
// pads and whether the output extent is ceil(in/stride).
func autoPads(mode string, in, k, stride, dil int) (begin, end int, ok bool) {
	switch mode {
	case "SAME_UPPER", "SAME_LOWER":
		out := (in + stride - 1) / stride
		total := max(0, (out-1)*stride+(k-1)*dil+1-in)
		if mode == "SAME_UPPER" {
			return total / 2, total - total/2, true
		}
		return total - total/2, total / 2, true
	case "VALID":
		return 0, 0, true
	}
	return 0, 0, false
}

func inversePerm(perm []int) []int {
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[p] = i
	}
	return inv
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
