//go:build !ort

package main

import (
	"context"
	"errors"
)

// ortAvailable: this vireo was built without ONNX Runtime (tag ort).
const ortAvailable = false

func benchVsORT(ctx context.Context, ob *onnxBench, res *onnxBenchResult) error {
	return errors.New("bench onnx: built without -tags ort")
}
