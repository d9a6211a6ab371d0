package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/natsembed"
	"vireo/pkg/schema"
	"vireo/services/frames"
	"vireo/services/ingest"
)

// clearEnv unsets keys for the test (restored afterwards).
func clearEnv(t *testing.T, keys ...string) {
	for _, k := range keys {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestFramesFlags(t *testing.T) {
	parse := func(args ...string) (frames.Config, error) {
		fs := newFlagSet("frames", &bytes.Buffer{})
		f := addFramesFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			return frames.Config{}, err
		}
		return f.config()
	}
	clearEnv(t, "VIREO_PREFIX")
	t.Setenv("VIREO_PREFIX", "vireo")
	t.Setenv("VIREO_REPLICAS", "3")
	t.Setenv("VIREO_BATCH_FRAMES", "16")
	t.Setenv("VIREO_BATCH_DELAY", "5ms")
	t.Setenv("VIREO_MAX_IN_FLIGHT", "2")
	t.Setenv("VIREO_MAX_RECONNECTS", "-1")
	got, err := parse("--batch-frames", "4")
	if err != nil {
		t.Fatal(err)
	}
	want := frames.Config{Prefix: "vireo", Replicas: 3, BatchFrames: 4, BatchDelay: 5 * time.Millisecond, MaxInFlight: 2, MaxReconnects: -1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config\n got %+v\nwant %+v", got, want)
	}
	for _, args := range [][]string{
		{"--batch-delay", "soon"}, {"--batch-frames", "0"}, {"--max-reconnects", "0"},
		{"--replicas", "9"}, {"--log-format", "xml"}, {"--prefix", "a.*"}, {"extra"},
	} {
		_, err := parse(args...)
		var u usageError
		if !errors.As(err, &u) && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: err=%v (want a usage error)", args, err)
		}
	}
}

func TestIngestFlags(t *testing.T) {
	parse := func(args ...string) (ingest.Config, error) {
		fs := newFlagSet("ingest", &bytes.Buffer{})
		f := addIngestFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			return ingest.Config{}, err
		}
		return f.config()
	}
	t.Setenv("VIREO_PREFIX", "vireo")
	t.Setenv("VIREO_REPLICAS", "1")
	t.Setenv("VIREO_ADDR", ":9999")
	t.Setenv("VIREO_MAX_BODY_BYTES", "1048576")
	t.Setenv("VIREO_MAX_PIXELS", "1000000")
	t.Setenv("VIREO_MAX_IN_FLIGHT", "8")
	t.Setenv("VIREO_PREDICT_TIMEOUT", "2s")
	got, err := parse("--addr", "127.0.0.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.Config{Prefix: "vireo", Replicas: 1, Addr: "127.0.0.1:8081", MaxBodyBytes: 1 << 20, MaxPixels: 1_000_000, MaxInFlight: 8, PredictTimeout: 2 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config\n got %+v\nwant %+v", got, want)
	}
	for _, args := range [][]string{
		{"--predict-timeout", "later"}, {"--max-body-bytes", "0"}, {"--addr", ""},
		{"--replicas", "9"}, {"--log-format", "xml"}, {"extra"},
	} {
		_, err := parse(args...)
		var u usageError
		if !errors.As(err, &u) && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: err=%v (want a usage error)", args, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// `vireo ingest` and `vireo frames` as two commands on one external NATS:
// a video registered through the HTTP API is read by frames to its end.
func TestIngestAndFramesCommands(t *testing.T) {
	video := "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	st, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saveTinyModel(t, dir, "faces", 1)
	m, b, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Push(ctx, "faces", b, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, "faces", v, "test"); err != nil {
		t.Fatal(err)
	}
	clearEnv(t, "VIREO_PREFIX", "VIREO_REPLICAS", "VIREO_ADDR", "VIREO_METRICS_ADDR", "VIREO_MAX_BODY_BYTES", "VIREO_MAX_PIXELS",
		"VIREO_MAX_IN_FLIGHT", "VIREO_PREDICT_TIMEOUT", "VIREO_BATCH_FRAMES", "VIREO_BATCH_DELAY", "VIREO_MAX_RECONNECTS", "VIREO_LOG_FORMAT")
	t.Setenv("VIREO_PREFIX", "vireo")
	t.Setenv("VIREO_LOG_FORMAT", "json")
	apiAddr, metricsAddr := freeAddr(t), freeAddr(t)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	var logs [2]bytes.Buffer
	go func() {
		done <- run(sctx, []string{"ingest", "--nats", srv.ClientURL(), "--addr", apiAddr}, &bytes.Buffer{}, &logs[0])
	}()
	go func() {
		done <- run(sctx, []string{"frames", "--nats", srv.ClientURL(), "--metrics-addr", metricsAddr}, &bytes.Buffer{}, &logs[1])
	}()
	defer func() {
		stop()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("command: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("a command did not return within 30 s")
			}
		}
	}()
	ready := func(url string) error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready("http://"+apiAddr+"/readyz") != nil || ready("http://"+metricsAddr+"/readyz") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v %v\n%s\n%s", ready("http://"+apiAddr+"/readyz"), ready("http://"+metricsAddr+"/readyz"), &logs[0], &logs[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	events := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe("vireo.events.mega", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	body := fmt.Sprintf(`{"id":"mega","url":%q,"model":"faces","every_n":10}`, video)
	if err := nc.Flush(); err != nil { // the services publish on their own connections
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+apiAddr+"/v1/sources", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %s", resp.Status)
	}
	select {
	case m := <-events:
		var eos schema.EndOfStream
		if err := json.Unmarshal(m.Data, &eos); err != nil || eos.Reason != "eof" || eos.Frames != 27 {
			t.Fatalf("end of stream %s (want eof, 27 frames): %v", m.Data, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no end of stream\n%s", &logs[1])
	}
	if err := ready("http://" + metricsAddr + "/metrics"); err != nil {
		t.Fatal(err)
	}
}
