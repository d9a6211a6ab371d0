package ingest

import (
	"os"
	"path/filepath"
	"testing"

	"vireo/pkg/video"
)

// FuzzPredictBody drives the image path of predict (limits, sniffing,
// OpenCV decode, resize) with arbitrary bytes: it must never panic or
// abort, must refuse everything over the limits, and anything it accepts
// is a frame of the model's size. Run: go test ./services/ingest -run '^$'
// -fuzz FuzzPredictBody -fuzztime 30s
func FuzzPredictBody(f *testing.F) {
	for _, name := range []string{"messi5.jpg", "box.png", "LinuxLogo.jpg"} {
		if b, err := os.ReadFile(filepath.Join(dataDir, name)); err == nil {
			f.Add(b)
			f.Add(b[:len(b)/3])
		}
	}
	f.Add(pngBomb(60000, 60000))
	f.Add(pngBomb(1, 1))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03})
	f.Add([]byte{})
	lim := video.ImageLimits{MaxBytes: 1 << 20, MaxWidth: 4096, MaxHeight: 4096, MaxPixels: 4 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, aerr := decodeBody(b, lim, 16, 12)
		if aerr != nil {
			if aerr.status < 400 || aerr.status > 499 || aerr.reason == "" || aerr.err == nil {
				t.Fatalf("rejection %+v is not a clear 4xx", aerr)
			}
			return
		}
		info, err := video.SniffImage(b, lim)
		if err != nil {
			t.Fatalf("accepted bytes that SniffImage refuses: %v", err)
		}
		if fr.Width != 16 || fr.Height != 12 || len(fr.Pixels) != 16*12*3 {
			t.Fatalf("accepted frame %dx%d with %d bytes", fr.Width, fr.Height, len(fr.Pixels))
		}
		if int64(info.Width)*int64(info.Height) > lim.MaxPixels {
			t.Fatalf("accepted %dx%d over the pixel limit", info.Width, info.Height)
		}
	})
}
