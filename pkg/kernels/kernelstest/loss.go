package kernelstest

import (
	"testing"

	"vireo/pkg/kernels"
)

// PLACEHOLDER: the loss family's cases are being written.
func testLoss(t *testing.T, b kernels.Backend) { t.Skip("loss: cases not written yet") }
