package kernels

import "fmt"

// WithDefaults returns p with ONNX's defaults filled in: a zero stride or
// dilation means 1, a zero Group means 1.
func (p ConvParams) WithDefaults() ConvParams {
	for i := range 2 {
		if p.Strides[i] == 0 {
			p.Strides[i] = 1
		}
		if p.Dilations[i] == 0 {
			p.Dilations[i] = 1
		}
	}
	if p.Group == 0 {
		p.Group = 1
	}
	return p
}

// Validate checks p after defaults: strides, dilations and group positive,
// pads non-negative. Errors wrap ErrParam.
func (p ConvParams) Validate() error {
	q := p.WithDefaults()
	return validateConvAttrs("conv", q.Strides, q.Dilations, q.Pads, q.Group)
}

// WithDefaults returns p with ONNX's defaults filled in: a zero stride or
// dilation means 1, a zero Group means 1.
func (p ConvTransposeParams) WithDefaults() ConvTransposeParams {
	c := ConvParams{Strides: p.Strides, Dilations: p.Dilations, Group: p.Group}.WithDefaults()
	p.Strides, p.Dilations, p.Group = c.Strides, c.Dilations, c.Group
	return p
}

// Validate checks p after defaults: as ConvParams, plus each output
// padding non-negative and smaller than its stride or its dilation (as
// PyTorch requires; a larger one would add rows no input reaches).
func (p ConvTransposeParams) Validate() error {
	q := p.WithDefaults()
	if err := validateConvAttrs("conv_transpose", q.Strides, q.Dilations, q.Pads, q.Group); err != nil {
		return err
	}
	for i, op := range q.OutputPadding {
		if op < 0 || (op >= q.Strides[i] && op >= q.Dilations[i]) {
			return fmt.Errorf("%w: conv_transpose: output padding %v (want 0 <= output_padding[%d] < stride %d or dilation %d)",
				ErrParam, q.OutputPadding, i, q.Strides[i], q.Dilations[i])
		}
	}
	return nil
}

func validateConvAttrs(op string, strides, dilations [2]int, pads [4]int, group int) error {
	for i := range 2 {
		if strides[i] < 1 {
			return fmt.Errorf("%w: %s: strides %v (want >= 1, or 0 for the default)", ErrParam, op, strides)
		}
		if dilations[i] < 1 {
			return fmt.Errorf("%w: %s: dilations %v (want >= 1, or 0 for the default)", ErrParam, op, dilations)
		}
	}
	for _, pd := range pads {
		if pd < 0 {
			return fmt.Errorf("%w: %s: pads %v (want >= 0)", ErrParam, op, pads)
		}
	}
	if group < 1 {
		return fmt.Errorf("%w: %s: group %d (want >= 1, or 0 for the default)", ErrParam, op, group)
	}
	return nil
}

// Conv2DOutShape is the shape of y for Conv2D: x is (N,C,H,W), w is
// (M,C/group,kH,kW), y is (N,M,oH,oW) with
//
//	oH = (H + padTop + padBottom - ((kH-1)*dilH + 1)) / strideH + 1
//
// and oW likewise. It validates p; errors wrap ErrShape or ErrParam.
func Conv2DOutShape(x, w Shape, p ConvParams) (Shape, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.WithDefaults()
	if len(x) != 4 || len(w) != 4 {
		return nil, fmt.Errorf("%w: conv2d: x %v, w %v (want rank 4 for both)", ErrShape, x, w)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("conv2d: x: %w", err)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("conv2d: w: %w", err)
	}
	n, c, h, wd := x[0], x[1], x[2], x[3]
	m, cg, kh, kw := w[0], w[1], w[2], w[3]
	if c%p.Group != 0 || m%p.Group != 0 {
		return nil, fmt.Errorf("%w: conv2d: x %v, w %v: channels got C=%d, M=%d (want both divisible by group %d)", ErrShape, x, w, c, m, p.Group)
	}
	if cg*p.Group != c {
		return nil, fmt.Errorf("%w: conv2d: w %v has %d input channels per group (want C/group = %d/%d = %d)", ErrShape, w, cg, c, p.Group, c/p.Group)
	}
	oh := (h+p.Pads[0]+p.Pads[2]-((kh-1)*p.Dilations[0]+1))/p.Strides[0] + 1
	ow := (wd+p.Pads[1]+p.Pads[3]-((kw-1)*p.Dilations[1]+1))/p.Strides[1] + 1
	if h+p.Pads[0]+p.Pads[2] < (kh-1)*p.Dilations[0]+1 || wd+p.Pads[1]+p.Pads[3] < (kw-1)*p.Dilations[1]+1 {
		return nil, fmt.Errorf("%w: conv2d: padded input %dx%d smaller than dilated kernel %dx%d", ErrShape,
			h+p.Pads[0]+p.Pads[2], wd+p.Pads[1]+p.Pads[3], (kh-1)*p.Dilations[0]+1, (kw-1)*p.Dilations[1]+1)
	}
	return Shape{n, m, oh, ow}, nil
}

// ConvTranspose2DOutShape is the shape of y for ConvTranspose2D: x is
// (N,C,H,W), w is (C,M/group,kH,kW), y is (N,M,oH,oW) with
//
//	oH = strideH*(H-1) + outputPaddingH + (kH-1)*dilH + 1 - padTop - padBottom
//
// and oW likewise. It validates p; errors wrap ErrShape or ErrParam.
func ConvTranspose2DOutShape(x, w Shape, p ConvTransposeParams) (Shape, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.WithDefaults()
	if len(x) != 4 || len(w) != 4 {
		return nil, fmt.Errorf("%w: conv_transpose2d: x %v, w %v (want rank 4 for both)", ErrShape, x, w)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("conv_transpose2d: x: %w", err)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("conv_transpose2d: w: %w", err)
	}
	n, c, h, wd := x[0], x[1], x[2], x[3]
	if w[0] != c {
		return nil, fmt.Errorf("%w: conv_transpose2d: w %v has %d input channels (want C = %d from x %v)", ErrShape, w, w[0], c, x)
	}
	if c%p.Group != 0 {
		return nil, fmt.Errorf("%w: conv_transpose2d: x %v: C=%d (want divisible by group %d)", ErrShape, x, c, p.Group)
	}
	m := w[1] * p.Group
	oh := p.Strides[0]*(h-1) + p.OutputPadding[0] + (w[2]-1)*p.Dilations[0] + 1 - p.Pads[0] - p.Pads[2]
	ow := p.Strides[1]*(wd-1) + p.OutputPadding[1] + (w[3]-1)*p.Dilations[1] + 1 - p.Pads[1] - p.Pads[3]
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("%w: conv_transpose2d: x %v, w %v, pads %v give output %dx%d (want >= 1x1)", ErrShape, x, w, p.Pads, oh, ow)
	}
	return Shape{n, m, oh, ow}, nil
}
