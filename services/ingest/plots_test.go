package ingest

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"

	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
)

// TestModelPlots: a version pushed with training plots lists them and
// serves each as PNG; a version without them answers 404 plot_not_found
// with a clear JSON error; bad names are refused.
func TestModelPlots(t *testing.T) {
	e := newEnv(t, Config{}, false)
	ctx := testCtx(t)
	st, err := modelstore.Open(ctx, e.js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pngOf := func(w, h int) []byte {
		var buf bytes.Buffer
		if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	loss, lr := pngOf(8, 5), pngOf(8, 6)
	b, m := modeltest.TinyClassifier(t, modelW, modelH, 2, [3]string{"blue", "green", "red"})
	v2, err := st.Push(ctx, testModel, b, m, modelstore.File{Name: modelstore.LossPlotObject, Data: loss}, modelstore.File{Name: modelstore.LRPlotObject, Data: lr})
	if err != nil {
		t.Fatal(err)
	}

	status, body := e.do("GET", "/v1/models/"+testModel+"/versions", "", nil)
	var vs []modelstore.Version
	if err := json.Unmarshal(body, &vs); status != 200 || err != nil || len(vs) != 2 {
		t.Fatalf("versions: %d %s", status, body)
	}
	if vs[0].Files != nil || !slices.Equal(vs[1].Files, []string{"losses.png", "lr.png"}) {
		t.Fatalf("versions files: %q, %q (want none for v0001, both plots for %s)", vs[0].Files, vs[1].Files, v2)
	}
	for plot, want := range map[string][]byte{"loss.png": loss, "lr.png": lr} {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/v1/models/"+testModel+"/versions/"+v2+"/plots/"+plot, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		_, _ = got.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s of %s: %s %q, %d bytes (want 200 image/png, the %d pushed bytes)", plot, v2, resp.Status, resp.Header.Get("Content-Type"), got.Len(), len(want))
		}
	}

	for _, c := range []struct {
		path   string
		status int
		reason string
	}{
		{"/v1/models/" + testModel + "/versions/v0001/plots/loss.png", 404, "plot_not_found"},
		{"/v1/models/" + testModel + "/versions/v0001/plots/lr.png", 404, "plot_not_found"},
		{"/v1/models/" + testModel + "/versions/v0099/plots/lr.png", 404, "plot_not_found"},
		{"/v1/models/" + testModel + "/versions/" + v2 + "/plots/model.onnx", 404, "unknown_plot"},
		{"/v1/models/" + testModel + "/versions/v1.2/plots/lr.png", 400, "invalid_version"},
		{"/v1/models/arrow/versions/v0001/plots/lr.png", 400, "invalid_model"},
	} {
		status, body := e.do("GET", c.path, "", nil)
		var ae struct{ Error, Reason string }
		if err := json.Unmarshal(body, &ae); status != c.status || err != nil || ae.Reason != c.reason || ae.Error == "" {
			t.Errorf("GET %s: %d %s (want %d with reason %s)", c.path, status, body, c.status, c.reason)
		}
		if c.reason == "plot_not_found" && !strings.Contains(ae.Error, "has no training plot") {
			t.Errorf("GET %s: error %q does not say there is no plot", c.path, ae.Error)
		}
	}
}
