package kernelstest

import (
	"math"

	"vireo/pkg/kernels"
)

// Plain float64 reference functions for the activation family, one value
// at a time, from the ActKind definitions, and their derivatives with the
// conventions PyTorch uses where f has a kink.

// actAll is every ActKind with the parameters the cases use.
var actAll = []kernels.Act{
	{Kind: kernels.ActIdentity},
	{Kind: kernels.ActRelu},
	{Kind: kernels.ActLeakyRelu, Alpha: 0.1},
	{Kind: kernels.ActSigmoid},
	{Kind: kernels.ActHardSigmoid, Alpha: 0.2, Beta: 0.5},
	{Kind: kernels.ActHardSwish},
	{Kind: kernels.ActTanh},
	{Kind: kernels.ActClip, Alpha: -1, Beta: 2},
	{Kind: kernels.ActExp},
	{Kind: kernels.ActLog},
	{Kind: kernels.ActSqrt},
	{Kind: kernels.ActNeg},
	{Kind: kernels.ActAbs},
}

var actNames = map[kernels.ActKind]string{
	kernels.ActIdentity: "identity", kernels.ActRelu: "relu", kernels.ActLeakyRelu: "leakyrelu",
	kernels.ActSigmoid: "sigmoid", kernels.ActHardSigmoid: "hardsigmoid", kernels.ActHardSwish: "hardswish",
	kernels.ActTanh: "tanh", kernels.ActClip: "clip", kernels.ActExp: "exp", kernels.ActLog: "log",
	kernels.ActSqrt: "sqrt", kernels.ActNeg: "neg", kernels.ActAbs: "abs",
}

// refAct is f(x).
func refAct(a kernels.Act, x float64) float64 {
	al, be := float64(a.Alpha), float64(a.Beta)
	switch a.Kind {
	case kernels.ActRelu:
		return math.Max(x, 0)
	case kernels.ActLeakyRelu:
		if x >= 0 {
			return x
		}
		return al * x
	case kernels.ActSigmoid:
		return 1 / (1 + math.Exp(-x))
	case kernels.ActHardSigmoid:
		return math.Max(0, math.Min(1, al*x+be))
	case kernels.ActHardSwish:
		return x * math.Max(0, math.Min(1, x/6+0.5))
	case kernels.ActTanh:
		return math.Tanh(x)
	case kernels.ActClip:
		return math.Min(math.Max(x, al), be)
	case kernels.ActExp:
		return math.Exp(x)
	case kernels.ActLog:
		return math.Log(x)
	case kernels.ActSqrt:
		return math.Sqrt(x)
	case kernels.ActNeg:
		return -x
	case kernels.ActAbs:
		return math.Abs(x)
	}
	return x
}

// refActGrad is f'(x) with PyTorch's choices at the kinks: Relu'(0) = 0
// (threshold_backward on the output), LeakyRelu'(0) = Alpha (x > 0 ? 1 :
// Alpha), HardSigmoid' = Alpha strictly inside its linear part, 0 at and
// beyond its ends, HardSwish'(x) = 0 for x < -3, x/3+0.5 for -3 <= x <= 3
// and 1 above (so -0.5 at -3 and 1.5 at 3), Clip' = 1 for min <= x <= max
// including both bounds (clamp_backward), Abs'(0) = 0 (sgn).
func refActGrad(a kernels.Act, x float64) float64 {
	al, be := float64(a.Alpha), float64(a.Beta)
	switch a.Kind {
	case kernels.ActRelu:
		if x > 0 {
			return 1
		}
		return 0
	case kernels.ActLeakyRelu:
		if x > 0 {
			return 1
		}
		return al
	case kernels.ActSigmoid:
		s := 1 / (1 + math.Exp(-x))
		return s * (1 - s)
	case kernels.ActHardSigmoid:
		if u := al*x + be; u > 0 && u < 1 {
			return al
		}
		return 0
	case kernels.ActHardSwish:
		switch {
		case x < -3:
			return 0
		case x <= 3:
			return x/3 + 0.5
		}
		return 1
	case kernels.ActTanh:
		t := math.Tanh(x)
		return 1 - t*t
	case kernels.ActClip:
		if x >= al && x <= be {
			return 1
		}
		return 0
	case kernels.ActExp:
		return math.Exp(x)
	case kernels.ActLog:
		return 1 / x
	case kernels.ActSqrt:
		return 0.5 / math.Sqrt(x)
	case kernels.ActNeg:
		return -1
	case kernels.ActAbs:
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	}
	return 1
}
