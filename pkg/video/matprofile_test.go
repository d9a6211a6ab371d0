//go:build matprofile

package video

import (
	"bytes"
	"context"
	"testing"

	"gocv.io/x/gocv"
)

// TestNoMatLeaks runs every path that creates Mats and checks gocv's Mat
// profile returns to where it started. Run with:
//
//	go test -tags matprofile -run NoMatLeaks ./pkg/video/
func TestNoMatLeaks(t *testing.T) {
	before := gocv.MatProfile.Count()
	ctx := context.Background()

	for _, name := range []string{"vtest.avi", "tree.avi"} {
		cfg := testConfig(64, 64)
		cfg.EveryN = 7
		cfg.KeepOriginal = true
		src, err := OpenFile(ctx, dataFile(t, name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		drain(t, src)
		src.Close()
	}
	// Closed while blocked mid-file.
	cfg := testConfig(16, 16)
	cfg.QueueLen = 1
	src, err := OpenFile(ctx, dataFile(t, "vtest.avi"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.Next(ctx)
	src.Close()
	// Live loop with reconnects, and an unreachable URL.
	lc := testConfig(16, 16)
	lc.setDefaults(true)
	live := startLive(ctx, KindURL, "tree-live", lc, fileAsLive(dataFile(t, "tree.avi")))
	for range 100 {
		live.Next(ctx)
	}
	live.Close()
	u, err := OpenURL(ctx, "rtsp://127.0.0.1:1/x", lc)
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	// Images: good, truncated, garbage body.
	messi := readData(t, "messi5.jpg")
	imgs, err := NewImages(testConfig(32, 32), messi, messi[:len(messi)/2], pngWithHeader(8, 8, 2), readData(t, "mask.png"))
	if err != nil {
		t.Fatal(err)
	}
	drain(t, imgs)
	imgs.Close()
	if _, err := DecodeImage(readData(t, "box.png"), testConfig(500, 500)); err != nil {
		t.Fatal(err)
	}
	// The converter's 1- and 4-channel paths.
	conv := newConverter(&cfg)
	for _, typ := range []gocv.MatType{gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC4, gocv.MatTypeCV32FC1} {
		m := gocv.NewMatWithSize(4, 4, typ)
		var f Frame
		conv.fill(&m, &f)
		m.Close()
	}
	conv.Close()

	if after := gocv.MatProfile.Count(); after != before {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("Mat leak: profile count %d -> %d\n%s", before, after, b.String())
	}
}
