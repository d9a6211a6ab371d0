package boot

import (
	"context"
	"strings"
	"testing"
	"time"

	"vireo/pkg/natsembed/natstest"
	"vireo/pkg/schema"
)

func TestOpenProvisions(t *testing.T) {
	_, nc, _ := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Without provisioning the streams stay absent.
	c, err := Open(ctx, nc, Options{Service: "infer", Prefix: "t1", NoProvision: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.JS.Stream(ctx, c.Subj.FramesStream(1).Name); err == nil {
		t.Errorf("NoProvision: stream %s exists", c.Subj.FramesStream(1).Name)
	}
	if c.Store == nil {
		t.Error("NoProvision: no model store")
	}
	if c, err := Open(ctx, nc, Options{Service: "frames", Prefix: "t3", NoProvision: true, NoStore: true}); err != nil {
		t.Errorf("NoStore: %v", err)
	} else if c.Store != nil {
		t.Errorf("NoStore: store %v, want none", c.Store)
	}

	keep := 90 * time.Minute
	c, err = Open(ctx, nc, Options{Service: "infer", Prefix: "t2", KeepWindow: keep})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := schema.NewSubjects("t2")
	if c.Subj != want {
		t.Errorf("Subj = %+v, want %+v", c.Subj, want)
	}
	if wantErr, _ := want.Errors("infer"); c.ErrSubj != wantErr {
		t.Errorf("ErrSubj = %q, want %q", c.ErrSubj, wantErr)
	}
	for _, cfg := range []string{want.FramesStream(1).Name, want.ResultsStream(1).Name, want.CorrectionsStream(1).Name} {
		if _, err := c.JS.Stream(ctx, cfg); err != nil {
			t.Errorf("stream %s: %v", cfg, err)
		}
	}
	ks, err := c.JS.Stream(ctx, want.FramesKeepStream(1, keep).Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.CachedInfo().Config.MaxAge; got != keep {
		t.Errorf("FRAMES_KEEP max age = %v, want %v", got, keep)
	}
	if c.Store == nil {
		t.Fatal("no model store")
	}
	if _, err := c.Store.List(ctx); err != nil {
		t.Errorf("model store: %v", err)
	}
}

func TestOpenNamesTheService(t *testing.T) {
	_, nc, _ := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, nc, Options{Service: "frames", Prefix: "bad prefix"})
	if err == nil || !strings.HasPrefix(err.Error(), "frames: ") {
		t.Fatalf("bad prefix: err = %v, want one starting with \"frames: \"", err)
	}
}
