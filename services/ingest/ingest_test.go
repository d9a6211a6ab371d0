package ingest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/pkg/schema"
	"vireo/pkg/video"
)

// POST /v1/models/{model}/predict with messi5.jpg: the image is decoded,
// resized to the model's input, published as a one-frame batch with a
// Vireo-Reply inbox, and the responder's JSON Result comes back as the body.
func TestPredictMessi(t *testing.T) {
	img := readData(t, "messi5.jpg")
	e := newEnv(t, Config{}, true)
	status, body := e.do("POST", "/v1/models/"+testModel+"/predict?source=cam-1", "image/jpeg", img)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var r schema.Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("result invalid: %v: %s", err, body)
	}
	if r.Source != "cam-1" || r.Model != testModel || r.Seq == 0 || len(r.Labels) != 1 {
		t.Fatalf("result: %+v", r)
	}
	// The frame that reached "infer" is the image decoded and resized to
	// the model's size: the responder's scores are its channel means.
	f, err := video.DecodeImage(img, video.Config{Width: modelW, Height: modelH})
	if err != nil {
		t.Fatal(err)
	}
	var sum [3]float64
	for i, p := range f.Pixels {
		sum[i%3] += float64(p)
	}
	if want := sum[0] / (sum[0] + sum[1] + sum[2]); math.Abs(r.Scores["blue"]-want) > 1e-9 {
		t.Fatalf("blue score %v, want %v from the resized frame", r.Scores["blue"], want)
	}
	// The frame was stored in FRAMES with Msg-Id source/seq.
	st, err := e.js.Stream(testCtx(t), "FRAMES")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(testCtx(t), "vireo.frames."+testModel)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := schema.MsgID("cam-1", r.Seq)
	if got := m.Header.Get("Nats-Msg-Id"); got != id {
		t.Fatalf("Nats-Msg-Id %q, want %q", got, id)
	}
	if m.Header.Get(schema.HeaderReply) == "" || m.Header.Get(schema.HeaderSchemaVersion) != "1" {
		t.Fatalf("headers %v", m.Header)
	}
}

// A JPEG sent as a NATS request on <p>.ingest.image.<source> with header
// Vireo-Model gets its JSON Result as the reply.
func TestNATSRequestReply(t *testing.T) {
	img := readData(t, "messi5.jpg")
	e := newEnv(t, Config{}, true)
	msg := nats.NewMsg("vireo.ingest.image.door-2")
	msg.Header.Set(schema.HeaderModel, testModel)
	msg.Data = img
	reply, err := e.nc.RequestMsg(msg, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r schema.Result
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil || r.Source != "door-2" || r.Model != testModel {
		t.Fatalf("reply %s: %v", reply.Data, err)
	}

	// Without the model header, or with an unknown model: an Error reply and
	// a message on the errors subject.
	for _, c := range []struct{ model, reason string }{{"", "missing_model"}, {"nope", "model_not_found"}} {
		msg := nats.NewMsg("vireo.ingest.image.door-2")
		if c.model != "" {
			msg.Header.Set(schema.HeaderModel, c.model)
		}
		msg.Data = img
		reply, err := e.nc.RequestMsg(msg, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var er schema.Error
		if err := json.Unmarshal(reply.Data, &er); err != nil || er.Reason != c.reason || er.Source != "door-2" {
			t.Fatalf("reply %s (want reason %s)", reply.Data, c.reason)
		}
		if got := e.nextError(); got.Reason != c.reason {
			t.Fatalf("errors subject: %+v (want reason %s)", got, c.reason)
		}
	}
}

// pngBomb is a structurally valid PNG whose header declares w x h.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 1<<16)) // compresses to almost nothing
	_ = zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}

// jpegBomb rewrites the frame header of a real JPEG to declare w x h.
func jpegBomb(t *testing.T, img []byte, w, h uint16) []byte {
	b := bytes.Clone(img)
	for i := 2; i+9 < len(b); {
		if b[i] != 0xFF {
			t.Fatal("jpegBomb: lost marker sync")
		}
		m := b[i+1]
		if m >= 0xC0 && m <= 0xC3 {
			binary.BigEndian.PutUint16(b[i+5:], h)
			binary.BigEndian.PutUint16(b[i+7:], w)
			return b
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatal("jpegBomb: no SOF marker")
	return nil
}

// Bad inputs each get the right 4xx, a JSON error with a reason, and a
// message on <p>.errors.ingest; nothing crashes, and a good image still
// works afterwards.
func TestPredictBadInputs(t *testing.T) {
	img := readData(t, "messi5.jpg")
	e := newEnv(t, Config{MaxBodyBytes: 1 << 20}, true)
	rnd := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	big := append(bytes.Clone(img), make([]byte, 1<<20)...)
	for _, c := range []struct {
		name   string
		model  string
		body   []byte
		status int
		reason string
	}{
		{"empty body", testModel, nil, 400, "empty_body"},
		{"truncated jpeg", testModel, img[:len(img)/2], 400, "truncated_image"},
		{"random bytes", testModel, rnd, 415, "unsupported_format"},
		{"text", testModel, []byte("hello, not an image"), 415, "unsupported_format"},
		{"body over limit", testModel, big, 413, "body_too_large"},
		{"png 60000x60000", testModel, pngBomb(60000, 60000), 413, "image_too_large"},
		{"jpeg 60000x60000", testModel, jpegBomb(t, img, 60000, 60000), 413, "image_too_large"},
		{"unknown model", "nope", img, 404, "model_not_found"},
		{"invalid model name", "a.b", img, 400, "invalid_model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.do("POST", "/v1/models/"+c.model+"/predict", "application/octet-stream", c.body)
			var er schema.Error
			if err := json.Unmarshal(body, &er); err != nil {
				t.Fatalf("status %d, body %q: %v", status, body, err)
			}
			if status != c.status || er.Reason != c.reason || er.Error == "" || er.Source != DefaultHTTPSource {
				t.Fatalf("status %d body %s (want %d, reason %s)", status, body, c.status, c.reason)
			}
			if got := e.nextError(); got.Reason != c.reason {
				t.Fatalf("errors subject: %+v (want reason %s)", got, c.reason)
			}
		})
	}
	if status, body := e.do("POST", "/v1/models/"+testModel+"/predict", "image/jpeg", img); status != 200 {
		t.Fatalf("a good image after the bad ones: %d %s", status, body)
	}
}

// With no infer answering, predict times out with 504 and an error.
func TestPredictTimeout(t *testing.T) {
	img := readData(t, "messi5.jpg")
	e := newEnv(t, Config{PredictTimeout: 300 * time.Millisecond}, false)
	status, body := e.do("POST", "/v1/models/"+testModel+"/predict", "image/jpeg", img)
	if status != http.StatusGatewayTimeout || !strings.Contains(string(body), `"reason":"timeout"`) {
		t.Fatalf("status %d body %s", status, body)
	}
}

// Sources: register, list, refuse duplicates and bad registrations, delete.
func TestSourcesCRUD(t *testing.T) {
	e := newEnv(t, Config{}, false)
	status, body := e.do("POST", "/v1/sources", "application/json",
		[]byte(`{"id":"vtest","url":"file:///usr/share/doc/opencv-doc/examples/data/vtest.avi","model":"people","every_n":5}`))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	status, body = e.do("POST", "/v1/sources", "application/json", []byte(`{"url":"rtsp://cam.local/stream","model":"people","fps":2}`))
	var created SourceInfo
	if err := json.Unmarshal(body, &created); status != http.StatusCreated || err != nil || !strings.HasPrefix(created.ID, "src-") {
		t.Fatalf("create without id: %d %s", status, body)
	}
	for _, c := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"id":"vtest","url":"/x.avi","model":"people"}`, 409, "source_exists"},
		{`{"url":"/x.avi","model":"nope"}`, 404, "model_not_found"},
		{`{"url":"/x.avi","model":"people","fps":2,"every_n":3}`, 400, "invalid_registration"},
		{`{"url":"ftp://x/y","model":"people"}`, 400, "invalid_registration"},
		{`{"url":"/x.avi","model":"people","evry":3}`, 400, "invalid_json"},
		{`not json`, 400, "invalid_json"},
		{`{"id":"a.b","url":"/x.avi","model":"people"}`, 400, "invalid_registration"},
	} {
		status, body := e.do("POST", "/v1/sources", "application/json", []byte(c.body))
		if status != c.status || !strings.Contains(string(body), `"reason":"`+c.reason+`"`) {
			t.Fatalf("%s: %d %s (want %d %s)", c.body, status, body, c.status, c.reason)
		}
		if got := e.nextError(); got.Reason != c.reason {
			t.Fatalf("errors subject: %+v (want %s)", got, c.reason)
		}
	}
	status, body = e.do("GET", "/v1/sources", "", nil)
	var list []SourceInfo
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list) != 2 {
		t.Fatalf("list: %d %s", status, body)
	}
	if list[1].ID != "vtest" || list[1].EveryN != 5 || list[1].State != "registered" {
		t.Fatalf("list: %s", body)
	}
	if status, body := e.do("DELETE", "/v1/sources/vtest", "", nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, body := e.do("DELETE", "/v1/sources/vtest", "", nil); status != 404 || !strings.Contains(string(body), "source_not_found") {
		t.Fatalf("delete again: %d %s", status, body)
	}
	_, body = e.do("GET", "/v1/sources", "", nil)
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 || list[0].ID != created.ID {
		t.Fatalf("list after delete: %s", body)
	}
}

// Models: list and versions from the model store; unknown model is 404.
func TestModels(t *testing.T) {
	e := newEnv(t, Config{}, false)
	status, body := e.do("GET", "/v1/models", "", nil)
	var ms []ModelInfo
	if err := json.Unmarshal(body, &ms); status != 200 || err != nil || len(ms) != 1 ||
		ms[0].Model != testModel || ms[0].Serving != "v0001" || ms[0].Input == nil || ms[0].Input.Width != modelW {
		t.Fatalf("models: %d %s", status, body)
	}
	status, body = e.do("GET", "/v1/models/"+testModel+"/versions", "", nil)
	if status != 200 || !strings.Contains(string(body), `"version":"v0001"`) || !strings.Contains(string(body), `"serving":true`) {
		t.Fatalf("versions: %d %s", status, body)
	}
	status, body = e.do("GET", "/v1/models/nope/versions", "", nil)
	if status != 404 || !strings.Contains(string(body), "model_not_found") {
		t.Fatalf("versions of unknown: %d %s", status, body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, body := e.do("GET", p, "", nil); status != 200 {
			t.Fatalf("%s: %d %s", p, status, body)
		}
	}
}
