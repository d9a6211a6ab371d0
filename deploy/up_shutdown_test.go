package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/arch"
	"vireo/pkg/model"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/modelstore"
)

// TestUpShutdownUnderLoad runs `vireo up` as a process, and while vtest.avi
// flows through it (every frame) stores corrections over HTTP and pushes
// and promotes a new model version; then it sends SIGINT. vireo up must
// exit with status 0 within 60 s, and after a restart on the same data dir
// every acknowledged correction and the new serving version must be there.
func TestUpShutdownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vireo and runs vireo up twice on vtest.avi (~1 min)")
	}
	video := filepath.Join(opencvData, "vtest.avi")
	img, err := os.ReadFile(filepath.Join(opencvData, "messi5.jpg"))
	if err != nil {
		t.Skipf("opencv-doc not installed (%v): run make deps", err)
	}
	vireoBin := goBuild(t, "vireo", "../cmd/vireo")
	models := t.TempDir()
	modeltest.WriteArch(t, models, "things", "resnet18@0.25", arch.TaskClassify,
		arch.Config{Classes: 3, Size: 64, Seed: 2}, []string{"a", "b", "c"})
	data := t.TempDir()
	ports := freePorts(t, 2)
	natsPort, httpPort := ports[0], ports[1]
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	args := []string{"up", "--data-dir", data, "--nats-port", fmt.Sprint(natsPort), "--addr", addr,
		"--models", models, "--threads", "1", "--retrain-after", "100000", "--log-format", "json"}
	procs := &procSet{t: t}
	t.Cleanup(procs.stopAll)
	up := procs.start("up-1", vireoBin, nil, args...)
	procs.waitHTTP("http://"+addr+"/readyz", 2*time.Minute)

	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	results := make(chan *nats.Msg, 4096)
	if _, err := nc.ChanSubscribe("vireo.results.things.vtest", results); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // vireo up publishes on its own connection
		t.Fatal(err)
	}
	reg := fmt.Sprintf(`{"schema_version":1,"id":"vtest","model":"things","every_n":1,"url":"file://%s"}`, video)
	postOK(t, "http://"+addr+"/v1/sources", reg)
	for n := 0; n < 20; n++ {
		select {
		case <-results:
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d results within 2 min", n)
		}
	}

	// While frames flow: corrections (acknowledged = 201 with a stream
	// sequence) and a new promoted model version.
	var ids []string
	for i := range 5 {
		c := fmt.Sprintf(`{"model_version":"v0001","task":"classification","image":%q,"label":"b","labeler":"test-%d"}`,
			base64.StdEncoding.EncodeToString(img), i)
		var reply struct {
			ID  string `json:"id"`
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(postOK(t, "http://"+addr+"/v1/models/things/corrections", c), &reply); err != nil || reply.ID == "" || reply.Seq == 0 {
			t.Fatalf("correction %d reply: %+v (%v)", i, reply, err)
		}
		ids = append(ids, reply.ID)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	man, onnxBytes, err := model.Load(filepath.Join(models, "things"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := store.Push(ctx, "things", onnxBytes, man)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Promote(ctx, "things", v2, "shutdown test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-results:
	case <-time.After(time.Minute):
		t.Fatal("results stopped flowing before the SIGINT")
	}

	// SIGINT while the video still flows: fewer results than its 795
	// frames so far (frames may have read the whole file already; infer
	// has not processed it).
	if got := 21 + len(results); got >= 795 {
		t.Fatalf("%d results before the SIGINT: the video was through, the test would not shut down under load", got)
	}
	sent := time.Now()
	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.done:
	case <-time.After(60 * time.Second):
		t.Fatal("vireo up did not exit within 60 s of SIGINT")
	}
	up.killed = true // it exited on purpose
	if up.err != nil {
		t.Fatalf("vireo up exited with %v after SIGINT\n%s", up.err, tail(up.stderr.String()))
	}
	t.Logf("vireo up exited %v after SIGINT, %d results after the first 20 were still buffered unread", time.Since(sent).Round(time.Millisecond), len(results))
	slow := time.Since(sent) > 5*time.Second
	for _, line := range strings.Split(up.stderr.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) ||
			(slow && strings.Contains(line, `"level":"info"`)) {
			t.Logf("up-1: %s", line)
		}
	}
	nc.Close()

	// Restart on the same data dir: everything acknowledged is there.
	procs.start("up-2", vireoBin, nil, args...)
	procs.waitHTTP("http://"+addr+"/readyz", 2*time.Minute)
	nc2, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	store2, err := modelstore.Open(ctx, js2, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ptr, err := store2.Serving(ctx, "things")
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Version != v2 {
		t.Errorf("serving version after restart %q, want %q (promoted before the SIGINT)", ptr.Version, v2)
	}
	if _, _, err := store2.Get(ctx, "things", v2); err != nil {
		t.Errorf("version %s after restart: %v", v2, err)
	}
	corr, err := js2.Stream(ctx, "CORRECTIONS")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for seq := uint64(1); ; {
		m, err := corr.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("vireo.corrections.things"))
		if err != nil {
			break
		}
		stored[m.Header.Get(jetstream.MsgIDHeader)] = true
		seq = m.Sequence + 1
	}
	for _, id := range ids {
		if !stored[id] {
			t.Errorf("correction %s acknowledged before the SIGINT is missing after the restart (stored: %d)", id, len(stored))
		}
	}
}

// postOK posts body as JSON and returns the response body; a non-2xx
// status fails the test.
func postOK(t *testing.T, url, body string) []byte {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
	return b
}

func tail(s string) string {
	if len(s) > 8<<10 {
		return "...\n" + s[len(s)-8<<10:]
	}
	return s
}
