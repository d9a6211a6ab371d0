package ops

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestHealth(t *testing.T) {
	h := NewHealth()
	if err := h.Ready(); err != nil {
		t.Fatalf("empty Health: Ready() = %v, want nil", err)
	}
	h.Set("model", errors.New("loading resnet18"))
	h.Set("nats", nil)
	err := h.Ready()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "model: loading resnet18") {
		t.Fatalf("Ready() = %v, want ErrNotReady naming the model check", err)
	}
	h.Set("model", nil)
	if err := h.Ready(); err != nil {
		t.Fatalf("Ready() after fix = %v", err)
	}
}

func TestServeEndpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := NewHealth()
	h.Set("consumer", errors.New("not bound"))
	mux := http.NewServeMux()
	Handle(mux, NewRegistry(), h)
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", mux, zerolog.Nop(), func(a net.Addr) { addrc <- a }) }()
	base := "http://" + (<-addrc).String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not bound") {
		t.Errorf("/readyz = %d %s, want 503 naming the check", code, body)
	}
	h.Set("consumer", nil)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after ready = %d, want 200", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, want 200 with go_goroutines", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
}
