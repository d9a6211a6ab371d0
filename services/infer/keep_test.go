package infer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/schema"
)

// keptStream returns FRAMES_KEEP.
func (e *env) keptStream() jetstream.Stream {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, e.subj.StreamName(schema.StreamFramesKeep))
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func TestKeepsTheFrameOfEveryResult(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := newEnv(t)
	e.start(Config{})
	sources := []string{"cam1", "cam2"}
	e.publishFrames(sources, 0, 10, 3)
	checkExactlyOnce(t, e.waitResults(20), sources, 10)
	st := e.keptStream()
	// Every frame is kept under its own subject, once, by the time its
	// message was acked; its pixels are the frame's.
	for _, src := range sources {
		for seq := uint64(0); seq < 10; seq++ {
			subj, _ := e.subj.Kept("tiny", src, seq)
			m, err := st.GetLastMsgForSubject(e.ctx, subj)
			if err != nil {
				t.Fatalf("%s: %v", subj, err)
			}
			if got := m.Header.Get(HeaderKeptVersion); got != "v0001" {
				t.Errorf("%s: %s (got=%q, want=v0001)", subj, HeaderKeptVersion, got)
			}
			fb, err := schema.DecodeFrames(mem, m.Data)
			if err != nil {
				t.Fatalf("%s: %v", subj, err)
			}
			want := frame(src, seq)
			f := fb.Frame(0)
			if fb.Len() != 1 || f.Source != src || f.Seq != seq || !bytes.Equal(f.Pixels, want.Pixels) {
				t.Errorf("%s: kept frame (got %d frames, %s/%d) differs from the published one", subj, fb.Len(), f.Source, f.Seq)
			}
			fb.Release()
		}
	}
	info, err := st.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 20 {
		t.Errorf("kept frames (got=%d, want=20)", info.State.Msgs)
	}
	if info.Config.MaxAge != schema.FramesKeepWindow { // infer's default window
		t.Errorf("FRAMES_KEEP max age (got=%v, want=%v)", info.Config.MaxAge, schema.FramesKeepWindow)
	}
}

func TestNoKeepKeepsNothing(t *testing.T) {
	e := newEnv(t)
	e.start(Config{NoKeep: true})
	e.publishFrames([]string{"cam1"}, 0, 6, 2)
	checkExactlyOnce(t, e.waitResults(6), []string{"cam1"}, 6)
	info, err := e.keptStream().Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("kept frames with NoKeep (got=%d, want=0)", info.State.Msgs)
	}
}

func TestKeepWindowProvisioned(t *testing.T) {
	e := newEnv(t)
	e.start(Config{KeepWindow: 2 * time.Hour})
	checkFor(t, 10*time.Second, func() error {
		info, err := e.keptStream().Info(e.ctx)
		if err != nil {
			return err
		}
		if info.Config.MaxAge != 2*time.Hour {
			return fmt.Errorf("FRAMES_KEEP max age (got=%v, want=2h)", info.Config.MaxAge)
		}
		return nil
	})
	var c Config
	c.setDefaults()
	c.KeepWindow = time.Second
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("keep window 1s: got %v, want ErrConfig", err)
	}
}
