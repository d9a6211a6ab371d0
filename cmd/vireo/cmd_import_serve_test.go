package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"vireo/pkg/schema"
)

const haarFrontalFace = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml" // opencv-data

// TestImportBlazeFaceServes imports MediaPipe's BlazeFace with `vireo
// import --decode blazeface`, serves it with `vireo up` on Megamind.avi
// (every 15th frame: 18 results), and checks each result's eyes, nose and
// mouth, in frame pixels, against the face box OpenCV's Haar cascade finds
// on the same frame (seq = frame index). The cascade is pseudo ground
// truth that puts its box on the forehead on some frames (120 and 135), so
// at least 80% of the frames where it finds a face must agree.
func TestImportBlazeFaceServes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack on Megamind.avi")
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "blazeface", "face_detection_front_128x128_barracuda.onnx")
	video := filepath.Join(opencvData, "Megamind.avi")
	for _, p := range []string{src, video, haarFrontalFace} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%v (make models-thirdparty, Debian opencv-doc and opencv-data)", err)
		}
	}
	models := t.TempDir()
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"import", src, "--name", "face", "--decode", "blazeface", "--out", filepath.Join(models, "face")}, &out, &errOut); err != nil {
		t.Fatalf("vireo import: %v\n%s", err, errOut.String())
	}

	natsPort, httpPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", t.TempDir(), "--nats-port", fmt.Sprint(natsPort),
			"--addr", addr, "--models", models, "--threads", "2"}, &out, &errOut)
	}()
	waitReady(t, "http://"+addr+"/readyz", done, &errOut)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	results := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("vireo.results.face.megamind", results); err != nil {
		t.Fatal(err)
	}
	const every, want = 15, 18
	reg := fmt.Sprintf(`{"schema_version":1,"id":"megamind","model":"face","every_n":%d,"url":"file://%s"}`, every, video)
	if err := nc.Flush(); err != nil { // the services publish on their own connections
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/sources", "application/json", strings.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("register source: %s", resp.Status)
	}
	got := map[uint64]schema.Result{}
	deadline := time.After(3 * time.Minute)
	for len(got) < want {
		select {
		case m := <-results:
			var r schema.Result
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("result %s: %v", m.Data, err)
			}
			got[r.Seq] = r
		case <-deadline:
			t.Fatalf("after 3 min: %d results of %d; stderr:\n%s", len(got), want, errOut.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vireo up returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("vireo up did not stop within 60 s of its context ending")
	}

	cc := gocv.NewCascadeClassifier()
	defer cc.Close()
	if !cc.Load(haarFrontalFace) {
		t.Fatalf("load %s", haarFrontalFace)
	}
	vc, err := gocv.VideoCaptureFile(video)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	frame, gray := gocv.NewMat(), gocv.NewMat()
	defer frame.Close()
	defer gray.Close()
	checked, agree := 0, 0
	for seq := uint64(0); vc.Read(&frame) && !frame.Empty(); seq++ {
		r, ok := got[seq]
		if !ok {
			continue
		}
		if r.Task != schema.TaskRegression || len(r.Points) != 8 || r.ModelVersion == "" {
			t.Fatalf("seq %d: result %+v: want a regression result with 8 points", seq, r)
		}
		gocv.CvtColor(frame, &gray, gocv.ColorBGRToGray)
		gocv.EqualizeHist(gray, &gray)
		faces := cc.DetectMultiScaleWithParams(gray, 1.1, 5, 0, image.Pt(100, 100), image.Pt(0, 0))
		if len(faces) == 0 {
			continue
		}
		box := faces[0]
		for _, f := range faces[1:] {
			if f.Dx()*f.Dy() > box.Dx()*box.Dy() {
				box = f
			}
		}
		checked++
		inside := true
		for _, p := range r.Points[2:6] { // eyes, nose, mouth
			inside = inside && p.X >= float64(box.Min.X) && p.X <= float64(box.Max.X) && p.Y >= float64(box.Min.Y) && p.Y <= float64(box.Max.Y)
		}
		if inside {
			agree++
		} else {
			t.Logf("seq %d: eyes/nose/mouth %v outside the Haar box %v", seq, r.Points[2:6], box)
		}
	}
	if checked < want/2 {
		t.Fatalf("Haar found a face on %d of %d served frames", checked, want)
	}
	if 5*agree < 4*checked {
		t.Fatalf("eyes, nose and mouth inside the Haar box on %d of %d frames (want >= 80%%)", agree, checked)
	}
	t.Logf("served %d Megamind frames; Haar finds a face on %d; BlazeFace's eyes, nose and mouth inside it on %d", len(got), checked, agree)
}
