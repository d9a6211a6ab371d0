package kernels

import "fmt"

// WithDefaults returns p with ONNX's defaults filled in: a stride or
// dilation of 0 (unset) becomes 1.
func (p PoolParams) WithDefaults() PoolParams {
	for i := range 2 {
		if p.Strides[i] == 0 {
			p.Strides[i] = 1
		}
		if p.Dilations[i] == 0 {
			p.Dilations[i] = 1
		}
	}
	return p
}

// Validate checks p (after WithDefaults): kernel, strides and dilations
// positive, pads non-negative and smaller than the kernel (as ONNX Runtime
// requires, so every window but degenerate dilated ones sees the input).
func (p PoolParams) Validate() error {
	if p.Kind != PoolMax && p.Kind != PoolAvg {
		return fmt.Errorf("%w: pool: kind %d (want PoolMax or PoolAvg)", ErrParam, p.Kind)
	}
	for i := range 2 {
		if p.Kernel[i] <= 0 || p.Strides[i] <= 0 || p.Dilations[i] <= 0 {
			return fmt.Errorf("%w: pool: kernel %v, strides %v, dilations %v (want all > 0)", ErrParam, p.Kernel, p.Strides, p.Dilations)
		}
	}
	for i, pd := range p.Pads {
		if pd < 0 || pd >= p.Kernel[i%2] {
			return fmt.Errorf("%w: pool: pads %v with kernel %v (want 0 <= pad < kernel)", ErrParam, p.Pads, p.Kernel)
		}
	}
	return nil
}

// PoolOutExtent is one spatial output extent of ONNX MaxPool/AveragePool:
// with ek = (k-1)*d+1 the effective kernel,
//
//	floor mode: out = floor((in+padBegin+padEnd-ek)/s) + 1
//	ceil mode:  out = ceil((in+padBegin+padEnd-ek)/s) + 1, minus one if the
//	            last window would start at or after in+padBegin (it must start
//	            inside the input or the left padding).
//
// It returns 0 when the window does not fit the padded input.
func PoolOutExtent(in, k, s, d, padBegin, padEnd int, ceil bool) int {
	ek := (k-1)*d + 1
	span := in + padBegin + padEnd - ek
	if span < 0 {
		return 0
	}
	if !ceil {
		return span/s + 1
	}
	out := (span+s-1)/s + 1
	if (out-1)*s >= in+padBegin {
		out--
	}
	return out
}

// Pool2DOutShape is the output shape of Pool2D on x (N,C,H,W): (N,C,oH,oW)
// with oH, oW from PoolOutExtent. p's zero strides and dilations mean 1.
func Pool2DOutShape(x Shape, p PoolParams) (Shape, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(x) != 4 {
		return nil, fmt.Errorf("%w: pool2d: x has shape %v (want rank 4, NCHW)", ErrShape, x)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("pool2d: x: %w", err)
	}
	oh := PoolOutExtent(x[2], p.Kernel[0], p.Strides[0], p.Dilations[0], p.Pads[0], p.Pads[2], p.CeilMode)
	ow := PoolOutExtent(x[3], p.Kernel[1], p.Strides[1], p.Dilations[1], p.Pads[1], p.Pads[3], p.CeilMode)
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("%w: pool2d: window %v (dilations %v) does not fit x %v with pads %v", ErrShape, p.Kernel, p.Dilations, x, p.Pads)
	}
	return Shape{x[0], x[1], oh, ow}, nil
}

// GlobalPoolOutShape is the output shape of GlobalPool on x (N,C,d1,...):
// (N,C,1,...,1) with x's rank.
func GlobalPoolOutShape(x Shape) (Shape, error) {
	if len(x) < 3 {
		return nil, fmt.Errorf("%w: globalpool: x has shape %v (want rank >= 3)", ErrShape, x)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("globalpool: x: %w", err)
	}
	y := make(Shape, len(x))
	for i := range y {
		y[i] = 1
	}
	y[0], y[1] = x[0], x[1]
	return y, nil
}
