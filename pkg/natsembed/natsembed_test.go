package natsembed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func TestStartPublishRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{StoreDir: dir, Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	// A message near the raised payload limit is accepted.
	big := make([]byte, 7<<20)
	if _, err := js.Publish(ctx, "t.big", big); err != nil {
		t.Fatalf("publish 7 MiB: %v", err)
	}
	nc.Close()
	s.Shutdown()

	// The acknowledged message is there after a restart on the same dir.
	s, err = Start(Config{StoreDir: dir, Port: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err = nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "t.big")
	if err != nil || len(m.Data) != len(big) {
		t.Fatalf("after restart: got %d bytes, err %v; want %d bytes", len(m.Data), err, len(big))
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{}, {StoreDir: "x", Port: 70000}, {StoreDir: "x", MaxPayload: 1 << 30}} {
		if _, err := Start(c, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Errorf("Start(%+v) error = %v, want ErrConfig", c, err)
		}
	}
}
