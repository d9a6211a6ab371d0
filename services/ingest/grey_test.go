package ingest

import (
	"bytes"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"

	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

// TestPredictGreyModel: an image sent to a one-channel model (as the
// bundled fashion models are) reaches infer as one grey channel with
// OpenCV's BGR2GRAY weights, not refused.
func TestPredictGreyModel(t *testing.T) {
	e := newEnv(t, Config{}, true)
	ctx := testCtx(t)
	b, man := modeltest.TinyGreyClassifier(t, 8, 8, [3]string{"blue", "green", "red"})
	st, err := modelstore.Open(ctx, e.js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Push(ctx, "grey", b, man)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, "grey", v, "test"); err != nil {
		t.Fatal(err)
	}
	frames := make(chan schema.Frame, 4)
	subject, _ := e.subj.Frames("grey")
	sub, err := e.nc.Subscribe(subject, func(m *nats.Msg) {
		fb, err := schema.DecodeFrames(memory.NewGoAllocator(), m.Data)
		if err != nil {
			t.Errorf("frame batch: %v", err)
			return
		}
		defer fb.Release()
		f := fb.Frame(0)
		f.Pixels = bytes.Clone(f.Pixels)
		frames <- f
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	// A solid colour: R=200 G=100 B=50 is grey 0.299*200 + 0.587*100 +
	// 0.114*50 = 124.2 -> 124.
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 200, 100, 50, 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	status, body := e.do("POST", "/v1/models/grey/predict", "image/png", buf.Bytes())
	if status != 200 {
		t.Fatalf("predict on a grey model: %d %s", status, body)
	}
	select {
	case f := <-frames:
		if f.Channels != 1 || f.Width != 8 || f.Height != 8 || len(f.Pixels) != 64 || f.OrigWidth != 40 || f.OrigHeight != 30 {
			t.Fatalf("frame %dx%dx%d (%d bytes) from %dx%d: want 8x8x1 from 40x30", f.Width, f.Height, f.Channels, len(f.Pixels), f.OrigWidth, f.OrigHeight)
		}
		for i, p := range f.Pixels {
			if p != 124 {
				t.Fatalf("grey pixel %d = %d (want 124)", i, p)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no frame published for the grey model")
	}
}
