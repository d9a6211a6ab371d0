package arch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

func TestBenchModelJSON(t *testing.T) {
	b := newCPU(t)
	for _, tc := range []BenchOptions{
		{Arch: "resnet18-unet@0.125", Size: 32, Batch: 2, Classes: 3, Quick: true},
		{Arch: "resnet18@0.125", Task: TaskRegress, Size: 32, Batch: 2, Quick: true},
	} {
		var buf bytes.Buffer
		if err := BenchModel(context.Background(), b, &buf, tc); err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
			t.Fatalf("output %q: %v", buf.String(), err)
		}
		t.Logf("%s", buf.String())
		for _, k := range []string{"arch", "task", "size", "batch", "backend", "threads", "images_per_s", "latency_ms", "gflops", "gflop_per_image", "peak_bytes", "heap_growth_bytes"} {
			if _, ok := r[k]; !ok {
				t.Errorf("no %q in %s", k, buf.String())
			}
		}
		var res BenchResult
		if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.Arch != tc.Arch || res.Backend != "cpu" || res.Threads != 2 || res.Batch != 2 || res.Iters != 3 {
			t.Errorf("result %+v does not echo the options %+v", res, tc)
		}
		if !(res.ImagesPerS > 0 && res.LatencyMS.P50 > 0 && res.LatencyMS.P90 >= res.LatencyMS.P50 && res.GFLOPPerImage > 0 && res.PeakBytes > 0) {
			t.Errorf("implausible result %+v", res)
		}
		// The weights alone are on the backend: at least 4 bytes per parameter.
		if res.PeakBytes < int64(4*res.Params) {
			t.Errorf("peak %d bytes < 4*%d params", res.PeakBytes, res.Params)
		}
	}
}

func TestBenchModelErrors(t *testing.T) {
	b := newCPU(t)
	var buf bytes.Buffer
	if err := BenchModel(context.Background(), b, &buf, BenchOptions{Arch: "resnet18-unet@0.125", Size: 48, Quick: true}); !errors.Is(err, ErrConfig) {
		t.Errorf("size 48 for a stride-32 U-Net: error %v (want ErrConfig)", err)
	}
	if err := BenchModel(context.Background(), b, &buf, BenchOptions{Arch: "vgg", Quick: true}); !errors.Is(err, ErrArch) {
		t.Errorf("unknown arch: error %v (want ErrArch)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := BenchModel(ctx, b, &buf, BenchOptions{Arch: "resnet18@0.125", Size: 32, Batch: 1, Quick: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v (want context.Canceled)", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed runs wrote %q", buf.String())
	}
}
