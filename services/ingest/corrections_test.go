package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

func TestCorrectionsIntake(t *testing.T) {
	e := newEnv(t, Config{}, false)
	ctx := testCtx(t)
	post := func(body string) (int, CorrectionReply, string) {
		t.Helper()
		code, b := e.do("POST", "/v1/models/"+testModel+"/corrections", "application/json", []byte(body))
		var r CorrectionReply
		_ = json.Unmarshal(b, &r)
		return code, r, string(b)
	}
	png := readData(t, "messi5.jpg")
	img, _ := json.Marshal(png)
	good := `{"model_version":"v0001","task":"classification","image":` + string(img) + `,"label":"red","labeler":"ann"}`
	code, r1, body := post(good)
	if code != http.StatusCreated || r1.Duplicate || r1.Seq != 1 {
		t.Fatalf("first submit: %d %s", code, body)
	}
	code, r2, body := post(good) // retried: stored once
	if code != http.StatusOK || !r2.Duplicate || r2.ID != r1.ID || r2.Seq != r1.Seq {
		t.Fatalf("retried submit: %d %s (want 200 duplicate of seq %d)", code, body, r1.Seq)
	}
	// Kept frame: resolvable -> stored; not kept -> 404 with the reason.
	fb, err := schema.EncodeFrames(memory.NewGoAllocator(), testModel, []schema.Frame{{Source: "cam1", Seq: 5, Captured: time.Now(),
		OrigWidth: 640, OrigHeight: 480, Width: modelW, Height: modelH, Channels: 3, Pixels: make([]byte, modelW*modelH*3)}})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := e.subj.Kept(testModel, "cam1", 5)
	if _, err := e.js.Publish(ctx, ks, fb); err != nil {
		t.Fatal(err)
	}
	if code, _, body := post(`{"model_version":"v0001","task":"classification","source":"cam1","seq":5,"label":"green","labeler":"ann"}`); code != http.StatusCreated {
		t.Errorf("kept frame: %d %s", code, body)
	}
	if code, _, body := post(`{"model_version":"v0001","task":"classification","source":"cam1","seq":6,"label":"green","labeler":"ann"}`); code != http.StatusNotFound || !strings.Contains(body, "frame_not_kept") {
		t.Errorf("frame not kept: %d %s (want 404 frame_not_kept)", code, body)
	}
	if v := e.nextError(); v.Reason != "frame_not_kept" || v.Source != "cam1" || v.Seq != 6 {
		t.Errorf("error message %+v", v)
	}
	for name, tc := range map[string]struct {
		body   string
		status int
		reason string
	}{
		"not json":       {`{"label":`, 400, "invalid_correction"},
		"no frame":       {`{"model_version":"v0001","task":"classification","label":"red","labeler":"ann"}`, 400, "invalid_correction"},
		"no labeler":     {`{"model_version":"v0001","task":"classification","source":"cam1","seq":5,"label":"red"}`, 400, "invalid_correction"},
		"other model":    {`{"model":"faces","model_version":"v0001","task":"classification","source":"cam1","seq":5,"label":"red","labeler":"a"}`, 400, "invalid_correction"},
		"wrong task":     {`{"model_version":"v0001","task":"regression","source":"cam1","seq":5,"points":[{"x":1,"y":2}],"labeler":"a"}`, 422, "wrong_task"},
		"source and img": {`{"model_version":"v0001","task":"classification","source":"cam1","seq":5,"image":"AAAA","label":"red","labeler":"a"}`, 400, "invalid_correction"},
	} {
		if code, _, body := post(tc.body); code != tc.status || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %d %s (want %d %s)", name, code, body, tc.status, tc.reason)
		}
	}
	if code, b := e.do("POST", "/v1/models/nobody/corrections", "application/json", []byte(good)); code != http.StatusNotFound {
		t.Errorf("unknown model: %d %s", code, b)
	}
	st, err := e.js.Stream(ctx, "CORRECTIONS")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("stored corrections (got=%d, want=2)", info.State.Msgs)
	}
}

func TestRollbackAndRetrainRoutes(t *testing.T) {
	e := newEnv(t, Config{}, false)
	ctx := testCtx(t)
	store, err := modelstore.Open(ctx, e.js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, m := modeltest.TinyClassifier(t, modelW, modelH, 1, [3]string{"blue", "green", "red"})
	v2, err := store.Push(ctx, testModel, b, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Promote(ctx, testModel, v2, "test"); err != nil {
		t.Fatal(err)
	}
	code, body := e.do("POST", "/v1/models/"+testModel+"/rollback", "application/json", []byte(`{"to":""}`))
	var p modelstore.Pointer
	if err := json.Unmarshal(body, &p); code != http.StatusOK || err != nil || p.Version != "v0001" || p.Previous != v2 {
		t.Fatalf("rollback: %d %s", code, body)
	}
	if code, body := e.do("POST", "/v1/models/"+testModel+"/rollback", "application/json", []byte(`{"to":"v0099"}`)); code != http.StatusNotFound {
		t.Errorf("rollback to a missing version: %d %s", code, body)
	}
	if code, body := e.do("POST", "/v1/models/"+testModel+"/rollback", "application/json", []byte(`{"to":`)); code != http.StatusBadRequest {
		t.Errorf("rollback with a bad body: %d %s", code, body)
	}
	// No retrain service on this server: a clear 503.
	if code, body := e.do("GET", "/v1/models/"+testModel+"/retrain", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "retrain_unavailable") {
		t.Errorf("retrain status without a service: %d %s", code, body)
	}
}
