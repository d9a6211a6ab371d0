package video_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"gocv.io/x/gocv"

	"vireo/pkg/video"
)

// Still image bytes (as published on NATS) to model-size BGR pixels.
func ExampleDecodeImage() {
	// A 64x48 blue image, PNG-encoded.
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), 48, 64, gocv.MatTypeCV8UC3)
	defer m.Close()
	buf, err := gocv.IMEncode(gocv.PNGFileExt, m)
	if err != nil {
		panic(err)
	}
	png := bytes.Clone(buf.GetBytes())
	buf.Close()

	info, err := video.SniffImage(png, video.DefaultImageLimits())
	fmt.Println(info.Format, info.Width, info.Height, err)

	f, err := video.DecodeImage(png, video.Config{Width: 32, Height: 24})
	fmt.Println(f.OrigWidth, f.OrigHeight, f.Width, f.Height, len(f.Pixels), f.Pixels[:3], err)

	_, err = video.DecodeImage(png[:len(png)/2], video.Config{Width: 32, Height: 24})
	fmt.Println(errors.Is(err, video.ErrTruncated))
	// Output:
	// png 64 48 <nil>
	// 64 48 32 24 2304 [255 0 0] <nil>
	// true
}

// The frames service's loop over any source.
func ExampleOpenFile() {
	ctx := context.Background()
	src, err := video.OpenFile(ctx, "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
		video.Config{Width: 224, Height: 224, EveryN: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	n := 0
	for {
		f, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Println("ended:", err)
			}
			break
		}
		_ = f.Pixels // 224*224*3 bytes, BGR, HWC
		n++
	}
	st := src.Stats()
	fmt.Println(n, st.Decoded, st.Dropped)
}
