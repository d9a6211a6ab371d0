package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"vireo/pkg/arch"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/schema"
)

const opencvData = "/usr/share/doc/opencv-doc/examples/data"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestUpEndToEnd runs `vireo up` in-process with two bundled models, then
// checks a prediction over HTTP, a video source with every-5th-frame
// sampling (exactly one result per sampled frame, in order), and a clean
// shutdown.
func TestUpEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack on vtest.avi")
	}
	if _, err := os.Stat(filepath.Join(opencvData, "vtest.avi")); err != nil {
		t.Skipf("opencv-doc not installed (%v): run make deps", err)
	}
	models := t.TempDir()
	modeltest.WriteArch(t, models, "people", "resnet18-unet@0.125", arch.TaskSegment,
		arch.Config{Classes: 3, SmallStem: true, Size: 64, Seed: 1}, []string{"background", "person", "Void"})
	modeltest.WriteArch(t, models, "things", "resnet18@0.125", arch.TaskClassify,
		arch.Config{Classes: 3, SmallStem: true, Size: 32, Seed: 2}, []string{"a", "b", "c"})

	natsPort, httpPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", t.TempDir(), "--nats-port", fmt.Sprint(natsPort),
			"--addr", addr, "--models", models, "--threads", "2", "--log-format", "json"}, &out, &errOut)
	}()
	waitReady(t, "http://"+addr+"/readyz", done, &errOut)

	// 1. One image over HTTP.
	img, err := os.ReadFile(filepath.Join(opencvData, "messi5.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/models/things/predict", "image/jpeg", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("predict: %s: %s", resp.Status, body)
	}
	var r schema.Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("predict body %s: %v", body, err)
	}
	if r.Model != "things" || r.ModelVersion != "v0001" || len(r.Labels) != 1 || len(r.Scores) != 3 {
		t.Fatalf("predict result %+v: want model things v0001 with one label and 3 scores", r)
	}

	// 2. vtest.avi, every 5th frame: 159 results, in order, none twice.
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	results := make(chan *nats.Msg, 512)
	if _, err := nc.ChanSubscribe("vireo.results.people.vtest", results); err != nil {
		t.Fatal(err)
	}
	events := make(chan *nats.Msg, 8)
	if _, err := nc.ChanSubscribe("vireo.events.vtest", events); err != nil {
		t.Fatal(err)
	}
	reg := fmt.Sprintf(`{"schema_version":1,"id":"vtest","model":"people","every_n":5,"url":"file://%s/vtest.avi"}`, opencvData)
	if err := nc.Flush(); err != nil { // the services publish on their own connections
		t.Fatal(err)
	}
	resp, err = http.Post("http://"+addr+"/v1/sources", "application/json", strings.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("register source: %s: %s", resp.Status, body)
	}
	const want = 159
	var seqs []uint64
	deadline := time.After(5 * time.Minute)
	for len(seqs) < want {
		select {
		case m := <-results:
			var r schema.Result
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("result %d: %v", len(seqs), err)
			}
			seqs = append(seqs, r.Seq)
		case <-deadline:
			t.Fatalf("after 5 min: %d results of %d; stderr:\n%s", len(seqs), want, errOut.String())
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("results out of order or repeated at %d: seq %d after %d", i, seqs[i], seqs[i-1])
		}
	}
	select {
	case m := <-results:
		t.Fatalf("a result beyond the %d sampled frames: %s", want, m.Data)
	case <-time.After(time.Second):
	}
	select {
	case m := <-events:
		var e schema.EndOfStream
		if err := json.Unmarshal(m.Data, &e); err != nil || e.Frames != want || e.Reason != "eof" {
			t.Fatalf("end of stream %s (err %v): want %d frames, reason eof", m.Data, err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no end-of-stream event for vtest")
	}

	// 3. Graceful shutdown.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vireo up returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("vireo up did not stop within 60 s of its context ending")
	}
	if !strings.Contains(out.String(), "vireo up") {
		t.Errorf("stdout %q: want the URL banner", out.String())
	}
	checkJSONLog(t, errOut.String())
}

// checkJSONLog checks vireo up's JSON log lines: each key once per line
// (log processors reject or drop duplicates), and infer's start line
// naming its backend and OpenBLAS kernels.
func checkJSONLog(t *testing.T, log string) {
	t.Helper()
	started := false
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		keys, err := jsonKeys(line)
		if err != nil {
			t.Errorf("log line %q: %v", line, err)
			continue
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("log line has %q twice: %s", k, line)
			}
			seen[k] = true
		}
		if strings.Contains(line, `"message":"infer started`) {
			started = true
			if !strings.Contains(line, `"backend":"cpu"`) || !strings.Contains(line, `"blas_core":"`) {
				t.Errorf("infer's start line names no backend and OpenBLAS kernels: %s", line)
			}
		}
	}
	if !started {
		t.Errorf("no infer start line in the log:\n%s", log)
	}
}

// jsonKeys returns a JSON object's top-level keys in order, repeats kept.
func jsonKeys(obj string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func waitReady(t *testing.T, url string, done <-chan error, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("vireo up exited early: %v\n%s", err, stderr.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 2 min\n%s", url, stderr.String())
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
