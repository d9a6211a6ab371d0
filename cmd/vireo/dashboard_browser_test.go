package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/arch"
	"vireo/pkg/model"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

// Chromium flags for these machines (no GPU, no sandbox, no network).
var chromiumArgs = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1100"}

// browserTools finds chromium and chromedriver; the test skips without
// them unless VIREO_BROWSER_REQUIRED is set (make test-long installs them).
func browserTools(t *testing.T) (chromium, driver string) {
	t.Helper()
	var missing []string
	for _, c := range []struct {
		names []string
		into  *string
	}{{[]string{"chromium", "chromium-browser"}, &chromium}, {[]string{"chromedriver"}, &driver}} {
		for _, n := range c.names {
			if p, err := exec.LookPath(n); err == nil {
				*c.into = p
				break
			}
		}
		if *c.into == "" {
			missing = append(missing, c.names[0])
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("browser test needs %s (Debian packages chromium and chromium-driver: `bash scripts/install-deps.sh chromium chromium-driver`, or make test-long)", strings.Join(missing, " and "))
		if os.Getenv("VIREO_BROWSER_REQUIRED") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, driver
}

// webdriver is a minimal W3C WebDriver client for chromedriver.
type webdriver struct {
	t    *testing.T
	base string // http://127.0.0.1:port/session/<id>
}

func (wd *webdriver) call(method, path string, body any) json.RawMessage {
	wd.t.Helper()
	v, err := wdCall(method, wd.base+path, body)
	if err != nil {
		wd.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	return v
}

func wdCall(method, url string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s", resp.Status, out.Value)
	}
	return out.Value, nil
}

// startBrowser runs chromedriver and opens a headless Chromium session.
func startBrowser(t *testing.T) *webdriver {
	chromium, driver := browserTools(t)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, driver, fmt.Sprintf("--port=%d", port))
	var logBuf syncBuffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start chromedriver: %v", err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cancel(); <-waited })
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 30*time.Second, "chromedriver ready", func() error {
		v, err := wdCall("GET", root+"/status", nil)
		if err != nil {
			return err
		}
		var st struct{ Ready bool }
		_ = json.Unmarshal(v, &st)
		if !st.Ready {
			return errors.New("not ready")
		}
		return nil
	})
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":        "chrome",
		"goog:chromeOptions": map[string]any{"binary": chromium, "args": chromiumArgs},
	}}}
	v, err := wdCall("POST", root+"/session", caps)
	if err != nil {
		t.Fatalf("new session: %v\nchromedriver log:\n%s", err, logBuf.String())
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	_ = json.Unmarshal(v, &s)
	wd := &webdriver{t: t, base: root + "/session/" + s.SessionID}
	t.Cleanup(func() { _, _ = wdCall("DELETE", wd.base, nil) })
	return wd
}

func (wd *webdriver) open(url string) { wd.call("POST", "/url", map[string]any{"url": url}) }

// js runs script (a function body; arguments in `arguments`) and decodes
// its return value into out.
func (wd *webdriver) js(out any, script string, args ...any) {
	wd.t.Helper()
	if args == nil {
		args = []any{}
	}
	v := wd.call("POST", "/execute/sync", map[string]any{"script": script, "args": args})
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			wd.t.Fatalf("script result %s: %v", v, err)
		}
	}
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

func (wd *webdriver) find(css string) string {
	wd.t.Helper()
	v := wd.call("POST", "/element", map[string]any{"using": "css selector", "value": css})
	var e map[string]string
	_ = json.Unmarshal(v, &e)
	return e[elementKey]
}

// click finds css and clicks it. The dashboard re-renders parts of the
// page as events arrive (a models list after a promotion, say), so an
// element found a moment ago can be gone by the click: that "stale
// element reference" finds it again, a few times, before failing.
func (wd *webdriver) click(css string) {
	wd.t.Helper()
	for try := 0; ; try++ {
		_, err := wdCall("POST", wd.base+"/element/"+wd.find(css)+"/click", map[string]any{})
		if err == nil {
			return
		}
		if try == 4 || !strings.Contains(err.Error(), "stale element reference") {
			wd.t.Fatalf("webdriver click %s: %v", css, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clickAt clicks at (dx, dy) from the centre of the element (a real
// pointer down and up, as a person's click).
func (wd *webdriver) clickAt(css string, dx, dy int) {
	el := wd.find(css)
	wd.call("POST", "/actions", map[string]any{"actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "duration": 0, "origin": map[string]any{elementKey: el}, "x": dx, "y": dy},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}})
}

// screenshot saves a PNG of the page under dir.
func (wd *webdriver) screenshot(dir, name string) string {
	wd.t.Helper()
	var b64 string
	_ = json.Unmarshal(wd.call("GET", "/screenshot", nil), &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		wd.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		wd.t.Fatal(err)
	}
	wd.t.Logf("screenshot %s", p)
	return p
}

func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// artifactsDir is where screenshots go: $VIREO_ARTIFACTS or out/browser
// at the repository root (git ignores /out/).
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("VIREO_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "out", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// TestDashboardInBrowser drives the dashboard of an in-process `vireo up`
// in headless Chromium over WebDriver: vtest.avi on a segmentation model
// and Megamind.avi on a point-regression model stream; messi5.jpg is
// classified over HTTP. It checks that the live view shows frames whose
// overlay canvas has mask and point pixels, that the classified image's
// labels appear, that a correction made by clicking on the frame is
// recorded (read back from the CORRECTIONS stream), and that the rollback
// button changes the serving version. Screenshots are saved (artifactsDir).
func TestDashboardInBrowser(t *testing.T) {
	for _, f := range []string{"vtest.avi", "Megamind.avi", "messi5.jpg"} {
		if _, err := os.Stat(filepath.Join(opencvData, f)); err != nil {
			t.Skipf("opencv-doc not installed (%v): run make deps", err)
		}
	}
	wd := startBrowser(t)
	shots := artifactsDir(t)

	models := t.TempDir()
	modeltest.WriteArch(t, models, "people", "resnet18-unet@0.125", arch.TaskSegment,
		arch.Config{Classes: 3, SmallStem: true, Size: 64, Seed: 1}, []string{"background", "person", "Void"})
	modeltest.WriteArch(t, models, "things", "resnet18@0.125", arch.TaskClassify,
		arch.Config{Classes: 3, SmallStem: true, Size: 32, Seed: 2}, []string{"ball", "player", "grass"})
	modeltest.WriteArch(t, models, "face", "resnet18@0.125", arch.TaskRegress,
		arch.Config{Points: 1, SmallStem: true, Size: 64, Seed: 3}, nil)

	natsPort, httpPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", t.TempDir(), "--nats-port", fmt.Sprint(natsPort),
			"--addr", addr, "--models", models, "--threads", "2"}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("vireo up did not stop within 60 s")
		}
	})
	waitReady(t, base+"/readyz", done, &errOut)

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	// A second version of things, promoted: the rollback button goes back.
	store, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	man, onnxB, err := model.Load(filepath.Join(models, "things"))
	if err != nil {
		t.Fatal(err)
	}
	man.ParentVersion = "v0001"
	man.Metrics = map[string]float64{"accuracy": 0.5}
	v2, err := store.Push(ctx, "things", onnxB, man)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Promote(ctx, "things", v2, "test: second version"); err != nil {
		t.Fatal(err)
	}

	wd.open(base + "/")
	post := func(path, body string) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
	}
	post("/v1/sources", fmt.Sprintf(`{"id":"vtest","model":"people","every_n":10,"url":"file://%s/vtest.avi"}`, opencvData))
	post("/v1/sources", fmt.Sprintf(`{"id":"megamind","model":"face","every_n":5,"url":"file://%s/Megamind.avi"}`, opencvData))
	img, _ := os.ReadFile(filepath.Join(opencvData, "messi5.jpg"))
	resp, err := http.Post(base+"/v1/models/things/predict?source=photo", "image/jpeg", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("predict messi5.jpg: %s %s", resp.Status, pb)
	}

	// 1. Live view: frames with overlay pixels (mask for vtest, points for
	// Megamind), labels for the classified photo.
	type cardState struct {
		Loaded  bool   `json:"loaded"`
		Overlay int    `json:"overlay"` // canvas pixels with alpha > 0
		Version string `json:"version"`
		Labels  int    `json:"labels"`
		On      int    `json:"on"`
		Legend  int    `json:"legend"`
		Stats   string `json:"stats"`
	}
	card := func(id string) cardState {
		var s cardState
		wd.js(&s, `const c = document.getElementById(arguments[0]);
			if (!c) return {loaded:false, overlay:0, version:'', labels:0, on:0, legend:0, stats:''};
			const img = c.querySelector('img.frame'), cv = c.querySelector('canvas.overlay');
			let n = 0;
			if (cv.width > 0) { const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; }
			return {loaded: img.complete && img.naturalWidth > 0, overlay: n, version: c.dataset.version || '',
				labels: c.querySelectorAll('li.label').length, on: c.querySelectorAll('li.label.on').length,
				legend: c.querySelectorAll('.legend .class').length, stats: c.querySelector('.stats').textContent};`, id)
		return s
	}
	var people, face, things cardState
	waitFor(t, 90*time.Second, "live view of vtest, megamind and photo", func() error {
		people, face, things = card("card-people-vtest"), card("card-face-megamind"), card("card-things-photo")
		switch {
		case !people.Loaded || people.Overlay == 0 || people.Legend != 3:
			return fmt.Errorf("people/vtest %+v: want a frame, mask pixels, 3 classes in the legend", people)
		case !face.Loaded || face.Overlay == 0:
			var pts any
			wd.js(&pts, `const c = state.cards.get('face/megamind'); return c && c.shown ? [c.shown.res.points, c.shown.frame.ow, c.shown.frame.oh] : null;`)
			return fmt.Errorf("face/megamind %+v (points, frame size %v): want a frame and point pixels", face, pts)
		case !things.Loaded || things.Labels != 3 || things.On != 1:
			return fmt.Errorf("things/photo %+v: want 3 scored labels, 1 predicted", things)
		}
		return nil
	})
	t.Logf("people/vtest %+v\nface/megamind %+v\nthings/photo %+v", people, face, things)
	if things.Version != v2 || people.Version != "v0001" {
		t.Errorf("versions shown: things %q (want %s), people %q (want v0001)", things.Version, v2, people.Version)
	}
	wd.screenshot(shots, "1-live.png")

	// 2. A correction by clicking: the face point moves where we click.
	// The frame the dialog shows (the live card may have moved on since).
	seq := openCorrection(t, wd, "card-face-megamind", "true")
	// Click a quarter of the way left and up from the canvas centre.
	size := correctionCanvas(wd)
	dx, dy := -int(size.W/4), -int(size.H/4)
	wd.clickAt("#correct-canvas", dx, dy)
	stored := submitCorrection(t, wd)
	wd.screenshot(shots, "2-correction.png")
	st, err := js.Stream(ctx, "CORRECTIONS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "vireo.corrections.face")
	if err != nil || m.Sequence != stored {
		t.Fatalf("no correction stored for face: %v (page said stream seq %d)", err, stored)
	}
	var c schema.Correction
	if err := json.Unmarshal(m.Data, &c); err != nil {
		t.Fatal(err)
	}
	wantX, wantY := size.toCanvas(dx, dy)
	if c.Source != "megamind" || c.Seq != seq || c.Task != schema.TaskRegression || len(c.Points) != 1 || c.Labeler != "dashboard" ||
		abs(c.Points[0].X-wantX) > 4 || abs(c.Points[0].Y-wantY) > 4 {
		t.Fatalf("stored correction %+v: want megamind seq %d, one point near (%.0f, %.0f) where the click was", c, seq, wantX, wantY)
	}
	t.Logf("correction stored: %s seq %d point (%.1f, %.1f), clicked at (%.1f, %.1f)", c.Source, c.Seq, c.Points[0].X, c.Points[0].Y, wantX, wantY)
	wd.click("#correct-cancel")

	// 3. Models view: the rollback button changes the serving version.
	wd.click("#tab-models")
	waitFor(t, 20*time.Second, "models view", func() error {
		var n int
		wd.js(&n, `return document.querySelectorAll('#model-things tr[data-version]').length;`)
		if n != 2 {
			return fmt.Errorf("%d version rows for things, want 2", n)
		}
		// These versions were pushed without training plots: the page
		// says so instead of showing broken images.
		var noPlots string
		wd.js(&noPlots, `const p = document.querySelector('#plots-things'); return p && !p.querySelector('img') && p.querySelector('.no-plots') ? p.dataset.version + ': ' + p.querySelector('.no-plots').textContent : '';`)
		if noPlots != v2+": no training plots recorded for this version" {
			return fmt.Errorf("plots panel of things says %q (want %s: no training plots recorded for this version)", noPlots, v2)
		}
		return nil
	})
	wd.screenshot(shots, "3-models-before-rollback.png")
	wd.click("#model-things button.rollback")
	waitFor(t, 20*time.Second, "rollback", func() error {
		p, err := store.Serving(ctx, "things")
		if err != nil {
			return err
		}
		if p.Version != "v0001" {
			return fmt.Errorf("things serves %s, want v0001 after the rollback button", p.Version)
		}
		var shown string
		wd.js(&shown, `const r = document.querySelector('#model-things tr.serving'); return r ? r.dataset.version : '';`)
		if shown != "v0001" {
			return fmt.Errorf("page shows %q serving", shown)
		}
		return nil
	})
	wd.screenshot(shots, "4-models-after-rollback.png")
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
