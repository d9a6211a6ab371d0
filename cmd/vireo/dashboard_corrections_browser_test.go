package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/schema"
)

// upStack is an in-process `vireo up` for the browser tests.
type upStack struct {
	base string // http://127.0.0.1:port
	nc   *nats.Conn
	js   jetstream.JetStream
	ctx  context.Context
}

// startUpStack runs `vireo up` with the model folders under models (pushed
// into the store) and extra flags, waits until it is ready and connects
// to its NATS server; the test's cleanup stops it.
func startUpStack(t *testing.T, models string, extra ...string) *upStack {
	t.Helper()
	natsPort, httpPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	args := append([]string{"up", "--data-dir", t.TempDir(), "--nats-port", fmt.Sprint(natsPort),
		"--addr", addr, "--models", models, "--threads", "2"}, extra...)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("vireo up did not stop within 60 s")
		}
	})
	u := &upStack{base: "http://" + addr, ctx: ctx}
	waitReady(t, u.base+"/readyz", done, &errOut)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	u.nc = nc
	u.js, _ = jetstream.New(nc)
	return u
}

// post sends body to path (JSON unless contentType says otherwise) and
// fails the test unless the answer is 2xx; it returns the answer.
func (u *upStack) post(t *testing.T, path, contentType string, body []byte) []byte {
	t.Helper()
	if contentType == "" {
		contentType = "application/json"
	}
	resp, err := http.Post(u.base+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
	return b
}

// lastCorrection reads the newest correction of a model from the
// CORRECTIONS stream, with its stream sequence.
func (u *upStack) lastCorrection(t *testing.T, modelName string) (schema.Correction, uint64) {
	t.Helper()
	st, err := u.js.Stream(u.ctx, "CORRECTIONS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(u.ctx, "vireo.corrections."+modelName)
	if err != nil {
		t.Fatalf("no correction stored for %s: %v", modelName, err)
	}
	var c schema.Correction
	if err := json.Unmarshal(m.Data, &c); err != nil {
		t.Fatal(err)
	}
	return c, m.Sequence
}

// pointerPath presses the mouse at the first point, moves through the
// others and releases at the last; points are offsets in CSS pixels from
// the centre of the element (a person's drag).
func (wd *webdriver) pointerPath(css string, pts [][2]int) {
	el := wd.find(css)
	acts := []any{map[string]any{"type": "pointerMove", "duration": 0, "origin": map[string]any{elementKey: el}, "x": pts[0][0], "y": pts[0][1]},
		map[string]any{"type": "pointerDown", "button": 0}}
	for _, p := range pts[1:] {
		acts = append(acts, map[string]any{"type": "pointerMove", "duration": 10, "origin": map[string]any{elementKey: el}, "x": p[0], "y": p[1]})
	}
	acts = append(acts, map[string]any{"type": "pointerUp", "button": 0})
	wd.call("POST", "/actions", map[string]any{"actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"}, "actions": acts}}})
}

// openCorrection clicks "This is wrong" on a live card, waits for the
// dialog (and, with ready, for a JS condition on corr) and returns the seq
// of the frame it corrects.
func openCorrection(t *testing.T, wd *webdriver, cardID, ready string) uint64 {
	t.Helper()
	wd.click("#" + cardID + " button.wrong")
	waitFor(t, 10*time.Second, "correction dialog of "+cardID, func() error {
		var open bool
		wd.js(&open, `return !document.getElementById('correct').classList.contains('hidden') && document.getElementById('correct-canvas').width > 0 && !!corr && (`+ready+`);`)
		if !open {
			return errors.New("not open yet")
		}
		return nil
	})
	var seqStr string
	wd.js(&seqStr, `return document.getElementById('correct').dataset.seq;`)
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		t.Fatalf("correction dialog seq %q: %v", seqStr, err)
	}
	return seq
}

// submitCorrection clicks submit and waits until the page says recorded;
// it returns the stream sequence the page was told.
func submitCorrection(t *testing.T, wd *webdriver) uint64 {
	t.Helper()
	wd.click("#correct-submit")
	var status string
	waitFor(t, 20*time.Second, "correction recorded", func() error {
		wd.js(&status, `return document.getElementById('correct-status').textContent;`)
		if !strings.HasPrefix(status, "recorded") {
			return fmt.Errorf("status %q", status)
		}
		return nil
	})
	var reply struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(status, "recorded ")), &reply); err != nil {
		t.Fatalf("page status %q: %v", status, err)
	}
	return reply.Seq
}

// canvasGeom is the correction canvas: its CSS size and its pixel size
// (the frame as captured).
type canvasGeom struct{ W, H, CW, CH float64 }

// correctionCanvas reads the open dialog's canvas geometry.
func correctionCanvas(wd *webdriver) canvasGeom {
	var g canvasGeom
	wd.js(&g, `const c = document.getElementById('correct-canvas'); const r = c.getBoundingClientRect(); return {W: r.width, H: r.height, CW: c.width, CH: c.height};`)
	return g
}

func (g canvasGeom) toCanvas(dx, dy int) (float64, float64) {
	return g.CW/2 + float64(dx)*g.CW/g.W, g.CH/2 + float64(dy)*g.CH/g.H
}

// TestDashboardCorrectionsInBrowser drives the correction dialog of every
// task with the bundled models (models/) under `vireo up`, as a person
// would, and reads each correction back from the CORRECTIONS stream:
// picking the right label of an image classified by fashion, ticking
// labels of a multi-label fashion-tiles image, painting a region with the
// person class on a vtest-people frame (vtest.avi), dragging the point on
// a megamind-face frame (Megamind.avi). Then the models view: the
// bundled fashion version's training plots load, and "Retrain now" shows
// the run's outcome from the retrain status API. Screenshots go to
// artifactsDir.
func TestDashboardCorrectionsInBrowser(t *testing.T) {
	for _, f := range []string{"vtest.avi", "Megamind.avi", "fruits.jpg", "baboon.jpg"} {
		if _, err := os.Stat(filepath.Join(opencvData, f)); err != nil {
			t.Skipf("opencv-doc not installed (%v): run make deps", err)
		}
	}
	models, _ := filepath.Abs(filepath.Join("..", "..", "models"))
	for _, m := range []string{"fashion", "fashion-tiles", "vtest-people", "megamind-face"} {
		if _, err := os.Stat(filepath.Join(models, m, "manifest.json")); err != nil {
			t.Skipf("bundled model %s missing (%v): run make models", m, err)
		}
	}
	wd := startBrowser(t)
	shots := artifactsDir(t)
	// An empty data root: a retrain run has no dataset to replay, so the
	// one "Retrain now" starts ends quickly with its reason.
	u := startUpStack(t, models, "--data-root", t.TempDir())

	wd.open(u.base + "/")
	u.post(t, "/v1/sources", "", fmt.Appendf(nil, `{"id":"vtest","model":"vtest-people","every_n":25,"url":"file://%s/vtest.avi"}`, opencvData))
	u.post(t, "/v1/sources", "", fmt.Appendf(nil, `{"id":"megamind","model":"megamind-face","every_n":10,"url":"file://%s/Megamind.avi"}`, opencvData))
	for _, p := range []struct{ model, source, file string }{{"fashion", "photo", "fruits.jpg"}, {"fashion-tiles", "tiles", "baboon.jpg"}} {
		img, _ := os.ReadFile(filepath.Join(opencvData, p.file))
		u.post(t, "/v1/models/"+p.model+"/predict?source="+p.source, "image/jpeg", img)
	}
	waitFor(t, 90*time.Second, "the four live cards", func() error {
		var missing []string
		wd.js(&missing, `return ['fashion/photo', 'fashion-tiles/tiles', 'vtest-people/vtest', 'megamind-face/megamind'].filter((k) => {
			const c = state.cards.get(k); return !(c && c.shown && c.img.complete && c.img.naturalWidth > 0); });`)
		if len(missing) > 0 {
			return fmt.Errorf("not shown yet: %v", missing)
		}
		return nil
	})
	wd.screenshot(shots, "c0-live-bundled.png")

	// 1. Classification: the image's ten labels with scores; pick another.
	var cls struct {
		Labels    int
		Predicted string
	}
	wd.js(&cls, `const c = document.getElementById('card-fashion-photo'); return {Labels: c.querySelectorAll('li.label').length, Predicted: state.cards.get('fashion/photo').shown.res.labels[0]};`)
	if cls.Labels != 10 || cls.Predicted == "" {
		t.Fatalf("fashion/photo card: %+v (want 10 scored labels and a predicted one)", cls)
	}
	pick := "bag"
	if cls.Predicted == pick {
		pick = "sandal"
	}
	seq := openCorrection(t, wd, "card-fashion-photo", "true")
	wd.click(`#correct-controls input[name="corr-label"][value="` + pick + `"]`)
	pageSeq := submitCorrection(t, wd)
	wd.screenshot(shots, "c1-correct-classify.png")
	c, streamSeq := u.lastCorrection(t, "fashion")
	if c.Label != pick || c.Prediction == nil || c.Prediction.Label != cls.Predicted || c.Source != "photo" || c.Seq != seq ||
		c.Task != schema.TaskClassification || c.ModelVersion != "v0001" || pageSeq != streamSeq {
		t.Fatalf("stored classification correction %+v (stream seq %d, page told %d): want label %s over the predicted %s, photo seq %d", c, streamSeq, pageSeq, pick, cls.Predicted, seq)
	}
	t.Logf("classification: predicted %s, picked %s, stored as CORRECTIONS seq %d", cls.Predicted, c.Label, streamSeq)
	wd.click("#correct-cancel")

	// 2. Multi-label: the threshold is shown; two labels toggled.
	var ml struct {
		Labels    int
		Threshold string
		Predicted []string
	}
	wd.js(&ml, `const c = document.getElementById('card-fashion-tiles-tiles'); return {Labels: c.querySelectorAll('li.label').length,
		Threshold: c.querySelector('.threshold').textContent, Predicted: state.cards.get('fashion-tiles/tiles').shown.res.labels || []};`)
	if ml.Labels != 12 || ml.Threshold != "threshold 0.2" {
		t.Fatalf("fashion-tiles/tiles card: %+v (want 12 scored labels and threshold 0.2)", ml)
	}
	seq = openCorrection(t, wd, "card-fashion-tiles-tiles", "true")
	want := slices.Clone(ml.Predicted)
	for _, l := range []string{"haze", "bag"} {
		wd.click(`#correct-controls input[name="corr-labels"][value="` + l + `"]`)
		if i := slices.Index(want, l); i >= 0 {
			want = slices.Delete(want, i, i+1)
		} else {
			want = append(want, l)
		}
	}
	pageSeq = submitCorrection(t, wd)
	wd.screenshot(shots, "c2-correct-multilabel.png")
	c, streamSeq = u.lastCorrection(t, "fashion-tiles")
	slices.Sort(want)
	got := slices.Sorted(slices.Values(c.Labels))
	if !slices.Equal(got, want) || c.Prediction == nil || !slices.Equal(slices.Sorted(slices.Values(c.Prediction.Labels)), slices.Sorted(slices.Values(ml.Predicted))) ||
		c.Source != "tiles" || c.Seq != seq || c.Task != schema.TaskMultiLabel || pageSeq != streamSeq {
		t.Fatalf("stored multi-label correction %+v: want labels %q (predicted %q with haze and bag toggled), tiles seq %d", c, want, ml.Predicted, seq)
	}
	t.Logf("multi-label: predicted %q, stored %q", ml.Predicted, c.Labels)
	wd.click("#correct-cancel")

	// 3. Segmentation: paint a horizontal stroke with "person" across the
	// top of the frame (wall and floor in vtest.avi).
	seq = openCorrection(t, wd, "card-vtest-people-vtest", "!!corr.edit.mask")
	wd.click(`#correct-controls input[name="corr-class"][value="1"]`)
	g := correctionCanvas(wd)
	strokeY := -int(g.H * 0.3)
	var stroke [][2]int
	for x := -int(g.W * 0.3); x <= int(g.W*0.3); x += int(g.W * 0.05) {
		stroke = append(stroke, [2]int{x, strokeY})
	}
	wd.pointerPath("#correct-canvas", stroke)
	pageSeq = submitCorrection(t, wd)
	wd.screenshot(shots, "c3-correct-segment-paint.png")
	c, streamSeq = u.lastCorrection(t, "vtest-people")
	if c.Source != "vtest" || c.Seq != seq || c.Task != schema.TaskSegmentation || c.Prediction == nil || pageSeq != streamSeq {
		t.Fatalf("stored segmentation correction %+v: want vtest seq %d with the prediction", c, seq)
	}
	mask, pred := decodeGrey(t, c.MaskPNG), decodeGrey(t, c.Prediction.MaskPNG)
	if mask.Rect != pred.Rect {
		t.Fatalf("corrected mask %v, predicted %v: want the same size", mask.Rect, pred.Rect)
	}
	// Along the stroke (mask pixels under the pointer's path) every pixel
	// is person; far from it (rows 12+ mask pixels away) nothing changed.
	mw, mh := mask.Rect.Dx(), mask.Rect.Dy()
	_, cy := g.toCanvas(0, strokeY)
	my := int(cy * float64(mh) / g.CH)
	x0, _ := g.toCanvas(stroke[0][0], 0)
	x1, _ := g.toCanvas(stroke[len(stroke)-1][0], 0)
	mx0, mx1 := int(x0*float64(mw)/g.CW)+1, int(x1*float64(mw)/g.CW)-1
	changed := 0
	for y := range mh {
		for x := range mw {
			gotID, predID := mask.GrayAt(x, y).Y, pred.GrayAt(x, y).Y
			if gotID != predID {
				changed++
			}
			onStroke := y == my && x >= mx0 && x <= mx1
			if onStroke && gotID != 1 {
				t.Fatalf("mask (%d,%d) on the painted stroke is class %d (want 1, person)", x, y, gotID)
			}
			if (y < my-12 || y > my+12) && gotID != predID {
				t.Fatalf("mask (%d,%d) far from the stroke changed %d -> %d", x, y, predID, gotID)
			}
		}
	}
	if changed < (mx1-mx0)/2 {
		t.Fatalf("painting changed %d mask pixels (want most of the %d-pixel stroke: the model predicted person there)", changed, mx1-mx0)
	}
	t.Logf("segmentation: stroke on mask row %d, x %d..%d of %dx%d; %d pixels changed to person", my, mx0, mx1, mw, mh, changed)
	wd.click("#correct-cancel")

	// 4. Regression: drag the point to a new place.
	seq = openCorrection(t, wd, "card-megamind-face-megamind", "corr.edit.points && corr.edit.points.length === 1")
	var start struct{ X, Y float64 }
	wd.js(&start, `return {X: corr.edit.points[0].x, Y: corr.edit.points[0].y};`)
	g = correctionCanvas(wd)
	// The point in CSS offsets from the canvas centre (clamped inside,
	// where the page draws a point that lies off the frame).
	sx := int(min(max(start.X, 8), g.CW-8)*g.W/g.CW - g.W/2)
	sy := int(min(max(start.Y, 8), g.CH-8)*g.H/g.CH - g.H/2)
	tx, ty := -sx/2+int(g.W*0.1), -sy/2-int(g.H*0.1) // somewhere else, inside
	var drag [][2]int
	for k := 0; k <= 8; k++ {
		drag = append(drag, [2]int{sx + (tx-sx)*k/8, sy + (ty-sy)*k/8})
	}
	wd.pointerPath("#correct-canvas", drag)
	pageSeq = submitCorrection(t, wd)
	wd.screenshot(shots, "c4-correct-regress-drag.png")
	c, streamSeq = u.lastCorrection(t, "megamind-face")
	wantX, wantY := g.toCanvas(tx, ty)
	if c.Source != "megamind" || c.Seq != seq || c.Task != schema.TaskRegression || len(c.Points) != 1 || c.Prediction == nil ||
		len(c.Prediction.Points) != 1 || pageSeq != streamSeq ||
		abs(c.Points[0].X-wantX) > 4 || abs(c.Points[0].Y-wantY) > 4 ||
		abs(c.Prediction.Points[0].X-start.X) > 0.5 || abs(c.Prediction.Points[0].Y-start.Y) > 0.5 {
		t.Fatalf("stored regression correction %+v: want megamind seq %d, the point dragged from (%.1f, %.1f) to near (%.1f, %.1f)", c, seq, start.X, start.Y, wantX, wantY)
	}
	t.Logf("regression: point dragged from (%.1f, %.1f) to (%.1f, %.1f); stored (%.1f, %.1f)", start.X, start.Y, wantX, wantY, c.Points[0].X, c.Points[0].Y)
	wd.click("#correct-cancel")

	// 5. Models view: the bundled fashion v0001's training plots, then
	// "Retrain now" and the run's outcome from the retrain status API.
	wd.click("#tab-models")
	waitFor(t, 20*time.Second, "fashion's training plots", func() error {
		var p struct {
			Version  string
			Loss, LR int
			NoPlots  bool
			Retrain  string
		}
		wd.js(&p, `const pl = document.getElementById('plots-fashion'); if (!pl) return {Version: ''};
			const w = (s) => { const i = pl.querySelector(s); return i && i.complete ? i.naturalWidth : 0; };
			return {Version: pl.dataset.version, Loss: w('img.plot-loss'), LR: w('img.plot-lr'), NoPlots: !!pl.querySelector('.no-plots'),
				Retrain: document.getElementById('retrain-fashion').dataset.state || ''};`)
		if p.Version != "v0001" || p.Loss != 800 || p.LR != 800 || p.NoPlots || p.Retrain != "idle" {
			var box string
			wd.js(&box, `const b = document.getElementById('retrain-fashion'); return (b ? b.outerHTML : 'no box') + ' ' + JSON.stringify([...state.retrain]);`)
			return fmt.Errorf("plots panel %+v: want v0001's loss and lr plots (800 px wide) and the retrain state idle; retrain box %s", p, box)
		}
		return nil
	})
	wd.js(nil, `document.getElementById('model-fashion').scrollIntoView();`)
	wd.screenshot(shots, "c5-models-plots.png")
	wd.click("#model-fashion button.retrain-btn")
	var last string
	waitFor(t, 60*time.Second, "the retrain run's outcome on the page", func() error {
		wd.js(&last, `const b = document.getElementById('retrain-fashion'); const l = b && b.querySelector('.rt-last');
			return b && b.dataset.state === 'idle' && l ? l.textContent : '';`)
		if !strings.Contains(last, "failed") {
			return fmt.Errorf("retrain box says %q", last)
		}
		return nil
	})
	resp, err := http.Get(u.base + "/v1/models/fashion/retrain")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		State       string
		Corrections int
		Last        *struct{ Outcome, Reason, Trigger string }
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Last == nil || st.Last.Outcome != "failed" || st.Last.Trigger != "request" || !strings.Contains(last, st.Last.Reason) || st.Corrections != 1 {
		t.Fatalf("retrain status %+v (%v), page %q: want the requested run failed with the reason the page shows, 1 correction kept", st, err, last)
	}
	t.Logf("retrain now: %s", last)
	// The button's own line ("retrain queued") is gone once the run has
	// ended: the status box above says what happened.
	waitFor(t, 10*time.Second, "the card's action line cleared", func() error {
		var line string
		wd.js(&line, `const s = document.querySelector('#model-fashion > .status'); return s ? s.textContent : 'no action line';`)
		if line == "no action line" || strings.Contains(line, "queued") || strings.Contains(line, "running") {
			return fmt.Errorf("the card's action line still says %q after the run ended", line)
		}
		return nil
	})
	wd.js(nil, `document.getElementById('model-fashion').scrollIntoView();`)
	wd.screenshot(shots, "c6-models-retrain-outcome.png")
}

func decodeGrey(t *testing.T, b []byte) *image.Gray {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("mask PNG: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("mask PNG is %T (want 8-bit grey)", img)
	}
	return g
}

// TestDashboardRetrainProgressInBrowser (make test-long, or
// VIREO_BROWSER_LONG=1; it fine-tunes a model) clicks "Retrain now" on
// the bundled megamind-face after posting corrections through the API,
// and follows the run on the page: the retrain status shows the run with
// its stage and epoch/batch progress while it trains, then its outcome;
// the candidate appears as a new version whose loss and learning-rate
// plots (rendered by the retrain service) load.
func TestDashboardRetrainProgressInBrowser(t *testing.T) {
	if os.Getenv("VIREO_BROWSER_LONG") == "" && os.Getenv("VIREO_BROWSER_REQUIRED") == "" {
		t.Skip("fine-tunes megamind-face under the browser (about a minute): runs under make test-long or with VIREO_BROWSER_LONG=1")
	}
	root := os.Getenv("VIREO_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "data")
	}
	root, _ = filepath.Abs(root)
	if _, err := os.Stat(filepath.Join(root, "megamind-face", "dataset.json")); err != nil {
		t.Skipf("prepared dataset megamind-face missing (%v): run make data", err)
	}
	models, _ := filepath.Abs(filepath.Join("..", "..", "models"))
	if _, err := os.Stat(filepath.Join(models, "megamind-face", "manifest.json")); err != nil {
		t.Skipf("bundled model megamind-face missing (%v): run make models", err)
	}
	wd := startBrowser(t)
	shots := artifactsDir(t)
	u := startUpStack(t, models, "--data-root", root, "--retrain-after", "1000") // only the button starts a run

	// 24 corrections (a quarter are held out by their hash): small noise
	// images with a point each.
	for i := range 24 {
		img := image.NewRGBA(image.Rect(0, 0, 96, 72))
		for j := range img.Pix {
			img.Pix[j] = byte((j*7919 + i*104729) >> 3)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"model_version": "v0001", "task": "regression", "image": buf.Bytes(),
			"points": []map[string]float64{{"x": float64(20 + i*2), "y": float64(30 + i)}}, "labeler": fmt.Sprintf("test-%d", i)})
		u.post(t, "/v1/models/megamind-face/corrections", "", body)
	}

	wd.open(u.base + "/#models")
	waitFor(t, 20*time.Second, "megamind-face in the models view", func() error {
		var st string
		wd.js(&st, `const b = document.getElementById('retrain-megamind-face'); return b ? b.dataset.state : '';`)
		if st != "idle" {
			return fmt.Errorf("retrain state %q", st)
		}
		return nil
	})
	wd.click("#model-megamind-face button.retrain-btn")
	type progress struct {
		State, Stage, Last                string
		Epoch, Epochs, Batch, Batches, Vs int
	}
	var seen []progress
	shot := false
	deadline := time.Now().Add(5 * time.Minute)
	var p progress
	for {
		wd.js(&p, `const b = document.getElementById('retrain-megamind-face'); if (!b) return {State: ''};
			const d = b.dataset, l = b.querySelector('.rt-last');
			return {State: d.state || '', Stage: d.stage || '', Epoch: +d.epoch || 0, Epochs: +d.epochs || 0, Batch: +d.batch || 0, Batches: +d.batches || 0,
				Last: l ? l.textContent : '', Vs: document.querySelectorAll('#model-megamind-face tr[data-version]').length};`)
		if len(seen) == 0 || seen[len(seen)-1] != p {
			seen = append(seen, p)
		}
		if !shot && strings.HasPrefix(p.Stage, "training") && p.Batches > 0 {
			wd.js(nil, `document.getElementById('model-megamind-face').scrollIntoView();`)
			wd.screenshot(shots, "r1-retrain-progress.png")
			shot = true
		}
		if p.State == "idle" && p.Vs == 2 && len(seen) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retrain did not end on the page within 5 min; seen %+v", seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("retrain states seen on the page: %+v", seen)
	var running, training bool
	for _, s := range seen {
		running = running || s.State == "running"
		if strings.HasPrefix(s.Stage, "training") && s.Epochs > 0 && s.Batches > 0 && s.Batch >= 1 && s.Batch <= s.Batches && s.Epoch >= 1 && s.Epoch <= s.Epochs {
			training = true
		}
	}
	if !running || !training {
		t.Fatalf("page never showed the run training with epoch/batch progress: %+v", seen)
	}
	if !strings.Contains(p.Last, "candidate v0002 from v0001") || strings.Contains(p.Last, "failed") {
		t.Fatalf("last run on the page %q: want a candidate v0002 from v0001", p.Last)
	}
	wd.click(`#model-megamind-face button.plots-btn[data-version="v0002"]`)
	waitFor(t, 20*time.Second, "the candidate's training plots", func() error {
		var w struct{ Version, Loss, LR string }
		wd.js(&w, `const pl = document.getElementById('plots-megamind-face'); const n = (s) => { const i = pl.querySelector(s); return i && i.complete ? String(i.naturalWidth) : ''; };
			return {Version: pl.dataset.version, Loss: n('img.plot-loss'), LR: n('img.plot-lr')};`)
		if w.Version != "v0002" || w.Loss != "800" || w.LR != "800" {
			return fmt.Errorf("plots panel %+v: want v0002's two 800 px plots", w)
		}
		return nil
	})
	wd.js(nil, `document.getElementById('plots-megamind-face').scrollIntoView();`)
	wd.screenshot(shots, "r2-retrain-candidate-plots.png")
	t.Logf("last run: %s", p.Last)
}
