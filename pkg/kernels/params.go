package kernels

// GemmParams are ONNX Gemm's attributes (the bias C is a separate Binary Add).
type GemmParams struct {
	TransA, TransB bool
	Alpha, Beta    float32
}

// ConvParams are ONNX Conv's attributes for 2-D inputs. Pads are
// [top, left, bottom, right] (ONNX order: begins then ends).
type ConvParams struct {
	Strides   [2]int
	Pads      [4]int
	Dilations [2]int
	Group     int
}

// ConvTransposeParams are ONNX ConvTranspose's attributes for 2-D inputs.
type ConvTransposeParams struct {
	Strides       [2]int
	Pads          [4]int
	Dilations     [2]int
	OutputPadding [2]int
	Group         int
}

// ActKind names an element-wise activation.
type ActKind int

const (
	ActIdentity    ActKind = iota
	ActRelu                // max(0,x)
	ActLeakyRelu           // x if x>=0 else Alpha*x
	ActSigmoid             // 1/(1+exp(-x))
	ActHardSigmoid         // max(0, min(1, Alpha*x+Beta))
	ActHardSwish           // x*max(0, min(1, x/6+0.5))
	ActTanh                // tanh(x)
	ActClip                // min(max(x, Alpha), Beta)
	ActExp                 // exp(x)
	ActLog                 // log(x)
	ActSqrt                // sqrt(x)
	ActNeg                 // -x
	ActAbs                 // |x|
)

// Act is an activation with its parameters (Alpha, Beta as noted per kind).
type Act struct {
	Kind        ActKind
	Alpha, Beta float32
	// Affine, for Conv2DFused only (FusedAffineOps), follows the
	// activation with a scalar scale and shift, y = act(x)*Scale + Shift:
	// the learnable affine some exports put after every activation
	// (PaddleOCR's PP-LCNetV3). Activation rejects it.
	Affine       bool
	Scale, Shift float32
}

// BinaryOp names an element-wise binary op.
type BinaryOp int

const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
	OpPow
	OpMax
	OpMin
)

// PoolKind is max or average.
type PoolKind int

const (
	PoolMax PoolKind = iota
	PoolAvg
)

// PoolParams are ONNX MaxPool/AveragePool attributes for 2-D inputs. Pads are
// [top, left, bottom, right].
type PoolParams struct {
	Kind            PoolKind
	Kernel          [2]int
	Strides         [2]int
	Pads            [4]int
	Dilations       [2]int
	CeilMode        bool
	CountIncludePad bool
}

// SliceParams are ONNX Slice inputs, normalised: one entry per axis of x
// (Starts clamped into range, Steps non-zero).
type SliceParams struct {
	Starts, Ends, Steps []int
}

// PadMode is ONNX Pad's mode.
type PadMode int

const (
	PadConstant PadMode = iota
	PadReflect
	PadEdge
)

// PadParams: Pads has 2*rank entries, all begins then all ends (ONNX order);
// negative pads crop.
type PadParams struct {
	Mode  PadMode
	Pads  []int
	Value float32
}

// ResizeMode is ONNX Resize's mode.
type ResizeMode int

const (
	ResizeNearest ResizeMode = iota
	ResizeLinear
)

// CoordMode is ONNX Resize's coordinate_transformation_mode.
type CoordMode int

const (
	CoordHalfPixel CoordMode = iota
	CoordAsymmetric
	CoordAlignCorners
	CoordPytorchHalfPixel
	CoordTFHalfPixelForNN
)

// NearestMode is ONNX Resize's nearest_mode.
type NearestMode int

const (
	NearestRoundPreferFloor NearestMode = iota
	NearestRoundPreferCeil
	NearestFloor
	NearestCeil
)

// ResizeParams resize the spatial axes of (N,C,H,W) (or any rank, with
// Scales[i]==1 on the axes not resized). Scales has one entry per axis:
// the output extent over the input extent, as ONNX uses it in coordinate
// transforms.
type ResizeParams struct {
	Mode    ResizeMode
	Coord   CoordMode
	Nearest NearestMode
	Scales  []float32
}

// DepthToSpaceParams: Blocksize, and Mode "DCR" (false) or "CRD" (true).
type DepthToSpaceParams struct {
	Blocksize int
	CRD       bool
}

// NormalizeParams describe a batch of uint8 HWC frames.
type NormalizeParams struct {
	N, H, W, C int
	Mean, Std  []float32 // one per output channel, in output order
	SwapRB     bool      // reverse channel order (BGR frames to RGB models)
}

// SGDParams for SGDStep.
type SGDParams struct {
	LR, Momentum, WeightDecay float32
}

// AdamWParams for AdamWStep.
type AdamWParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int
}
