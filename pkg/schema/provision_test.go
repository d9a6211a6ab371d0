package schema

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/natsembed"
)

func TestProvisionIdempotent(t *testing.T) {
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subj, _ := NewSubjects("")
	for i := 0; i < 2; i++ { // the second call finds everything in place
		if err := Provision(ctx, js, subj, 1, time.Hour); err != nil {
			t.Fatalf("Provision #%d: %v", i+1, err)
		}
	}
	for _, name := range []string{StreamFrames, StreamResults, StreamCorrections, StreamFramesKeep} {
		st, err := js.Stream(ctx, subj.StreamName(name))
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if name == StreamFrames && st.CachedInfo().Config.Storage != jetstream.MemoryStorage {
			t.Errorf("FRAMES storage = %v, want memory", st.CachedInfo().Config.Storage)
		}
		if name == StreamCorrections && st.CachedInfo().Config.Storage != jetstream.FileStorage {
			t.Errorf("CORRECTIONS storage = %v, want file", st.CachedInfo().Config.Storage)
		}
	}
	if _, err := js.KeyValue(ctx, subj.ModelsKV(1).Bucket); err != nil {
		t.Errorf("models KV: %v", err)
	}
	if _, err := js.KeyValue(ctx, subj.SourcesKV(1).Bucket); err != nil {
		t.Errorf("sources KV: %v", err)
	}
	if _, err := js.ObjectStore(ctx, subj.ModelFilesStore(1).Bucket); err != nil {
		t.Errorf("model files store: %v", err)
	}
}
