package schema

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

func TestJetStreamConfigsGolden(t *testing.T) {
	s, _ := NewSubjects("")
	infer, err := s.InferConsumer("planet", 3)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]any{
		"frames_stream":      s.FramesStream(3),
		"results_stream":     s.ResultsStream(3),
		"corrections_stream": s.CorrectionsStream(3),
		"frames_keep_stream": s.FramesKeepStream(3, 0),
		"infer_consumer":     infer,
		"models_kv":          s.ModelsKV(3),
		"sources_kv":         s.SourcesKV(3),
		"model_files_store":  s.ModelFilesStore(3),
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "jetstream_configs.json", append(b, '\n'))
	if _, err := s.InferConsumer("a.b", 1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("InferConsumer with a bad model: err = %v", err)
	}
}

// runJetStream starts an embedded server (port -1, JetStream, SyncAlways as
// Vireo runs it) and returns a connected JetStream client.
func runJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), SyncAlways: true,
		// The laptop budget the default configs must fit (see jetstream.go).
		JetStreamMaxMemory: 2 << 30, JetStreamMaxStore: 32 << 30,
		MaxPayload: FramesMaxMsgSize,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestJetStreamCreateAll creates every stream, the consumer, the KV and the
// object store on a real server, and exercises the properties they promise.
func TestJetStreamCreateAll(t *testing.T) {
	js := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := NewSubjects("")
	for _, cfg := range []jetstream.StreamConfig{s.FramesStream(1), s.ResultsStream(1), s.CorrectionsStream(1), s.FramesKeepStream(1, time.Hour)} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("create stream %s: %v", cfg.Name, err)
		}
	}
	ccfg, _ := s.InferConsumer("planet", 1)
	cons, err := js.CreateOrUpdateConsumer(ctx, s.StreamName(StreamFrames), ccfg)
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	kv, err := js.CreateKeyValue(ctx, s.ModelsKV(1))
	if err != nil {
		t.Fatalf("create kv: %v", err)
	}
	obs, err := js.CreateObjectStore(ctx, s.ModelFilesStore(1))
	if err != nil {
		t.Fatalf("create object store: %v", err)
	}

	// A frame batch published twice with the same Msg-Id is stored once and
	// decodes after a round trip through the stream.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	frames := testFrames(2, 32, 32, 3)
	b, err := EncodeFrames(mem, "planet", frames)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := s.Frames("planet")
	id, _ := MsgID(frames[0].Source, frames[0].Seq)
	for range 2 {
		if _, err := js.Publish(ctx, subj, b, jetstream.WithMsgID(id)); err != nil {
			t.Fatalf("publish frames: %v", err)
		}
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		fb, err := DecodeFrames(mem, msg.Data())
		if err != nil {
			t.Fatalf("decode fetched frames: %v", err)
		}
		if fb.Len() != 2 || fb.Frame(1).Seq != frames[1].Seq {
			t.Fatalf("fetched batch: %d frames", fb.Len())
		}
		fb.Release()
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("fetched %d messages, want 1 (the duplicate Msg-Id is dropped)", n)
	}

	// Corrections are never deleted: the stream refuses deletes.
	csubj, _ := s.Corrections("planet")
	c := exampleCorrection()
	cb, _ := json.Marshal(c)
	ack, err := js.Publish(ctx, csubj, cb)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := js.Stream(ctx, s.StreamName(StreamCorrections))
	if err := cs.DeleteMsg(ctx, ack.Sequence); err == nil {
		t.Fatal("deleting a correction succeeded, want DenyDelete to refuse")
	}

	// A kept frame is found by its subject.
	ksubj, _ := s.Kept("planet", "cam0", 100)
	one, _ := EncodeFrames(mem, "planet", frames[:1])
	if _, err := js.Publish(ctx, ksubj, one); err != nil {
		t.Fatal(err)
	}
	ks, _ := js.Stream(ctx, s.StreamName(StreamFramesKeep))
	raw, err := ks.GetLastMsgForSubject(ctx, ksubj)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := DecodeFrames(mem, raw.Data)
	if err != nil || fb.Frame(0).Seq != 100 {
		t.Fatalf("kept frame: %v", err)
	}
	fb.Release()

	// The KV keeps the serving pointer's history.
	for _, v := range []string{"v1", "v2", "v3"} {
		if _, err := kv.Put(ctx, "planet", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := kv.History(ctx, "planet")
	if err != nil || len(hist) != 3 || string(hist[0].Value()) != "v1" {
		t.Fatalf("kv history = %d entries, %v; want v1, v2, v3", len(hist), err)
	}
	if _, err := obs.PutBytes(ctx, "planet/v3/model.onnx", []byte("onnx bytes")); err != nil {
		t.Fatal(err)
	}
	if got, err := obs.GetBytes(ctx, "planet/v3/model.onnx"); err != nil || string(got) != "onnx bytes" {
		t.Fatalf("object store get = %q, %v", got, err)
	}
}
