// Package natstest starts the embedded JetStream server the way every
// test of Vireo's services needs it: a free port, a store under
// t.TempDir(), SyncAlways, and a connected client, all stopped by
// t.Cleanup.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"vireo/pkg/natsembed"
)

// Start starts a server and connects one client to it.
func Start(t testing.TB) (*natsembed.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
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
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return s, nc, js
}
