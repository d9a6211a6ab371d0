package onnx

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// valueKinds reads, without the decoder under test, the kind of value
// ("tensor", "sequence", "map", "optional", "sparse") each graph input and
// output of a serialized model declares, keyed by the conformance file that
// holds its data ("input_0.pb", "output_1.pb", ...). Initializers listed as
// inputs are not counted (conformance cases have none).
func valueKinds(b []byte) map[string]string {
	out := map[string]string{}
	nIn, nOut := 0, 0
	_ = walk(b, func(f field) error {
		if f.num != modelGraph || f.typ != protowire.BytesType {
			return nil
		}
		return walk(f.b, func(f field) error {
			if (f.num != graphInput && f.num != graphOutput) || f.typ != protowire.BytesType {
				return nil
			}
			kind := "none"
			_ = walk(f.b, func(f field) error {
				if f.num != valueInfoType || f.typ != protowire.BytesType {
					return nil
				}
				return walk(f.b, func(f field) error {
					switch f.num {
					case typeTensor:
						kind = "tensor"
					case typeSequence:
						kind = "sequence"
					case typeMap:
						kind = "map"
					case typeOptional:
						kind = "optional"
					case typeSparseTensor:
						kind = "sparse"
					}
					return nil
				})
			})
			if f.num == graphInput {
				out[fmt.Sprintf("input_%d.pb", nIn)] = kind
				nIn++
			} else {
				out[fmt.Sprintf("output_%d.pb", nOut)] = kind
				nOut++
			}
			return nil
		})
	})
	return out
}
