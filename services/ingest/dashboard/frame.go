package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/schema"
)

// HeaderKeptVersion is the header infer sets on a kept frame (and this
// route answers with): the version whose result the frame produced.
const HeaderKeptVersion = "Vireo-Model-Version"

// serveFrame answers the kept frame (model, source, seq) as a PNG.
func (d *Dashboard) serveFrame(w http.ResponseWriter, r *http.Request) {
	model, source := r.PathValue("model"), r.PathValue("source")
	fail := func(status int, reason string, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(schema.Error{SchemaVersion: schema.Version, Error: err.Error(), Reason: reason})
		_, _ = w.Write(append(b, '\n'))
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		fail(http.StatusBadRequest, "invalid_seq", fmt.Errorf("dashboard: seq %q (want an unsigned integer)", r.PathValue("seq")))
		return
	}
	subject, err := d.subj.Kept(model, source, seq)
	if err != nil {
		fail(http.StatusBadRequest, "invalid_name", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.RequestTimeout)
	defer cancel()
	st, err := d.js.Stream(ctx, d.subj.StreamName(schema.StreamFramesKeep))
	if err != nil {
		fail(http.StatusServiceUnavailable, "frames_keep", fmt.Errorf("dashboard: stream %s: %w", d.subj.StreamName(schema.StreamFramesKeep), err))
		return
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		fail(http.StatusNotFound, "frame_not_kept", fmt.Errorf("dashboard: no kept frame for model %s source %s seq %d (kept frames expire after the keep window)", model, source, seq))
		return
	}
	if err != nil {
		fail(http.StatusServiceUnavailable, "frames_keep", fmt.Errorf("dashboard: get %s: %w", subject, err))
		return
	}
	fb, err := schema.DecodeFrames(memory.NewGoAllocator(), m.Data)
	if err != nil {
		fail(http.StatusInternalServerError, "malformed_arrow", fmt.Errorf("dashboard: kept frame %s: %w", subject, err))
		return
	}
	defer fb.Release()
	if fb.Len() != 1 {
		fail(http.StatusInternalServerError, "malformed_arrow", fmt.Errorf("dashboard: kept frame %s has %d frames (want 1)", subject, fb.Len()))
		return
	}
	f := fb.Frame(0)
	var buf bytes.Buffer
	if err := png.Encode(&buf, FrameImage(f)); err != nil {
		fail(http.StatusInternalServerError, "encode", fmt.Errorf("dashboard: encode %s: %w", subject, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Cache-Control", "private, max-age=3600") // (model, source, seq) names one frame
	h.Set("Vireo-Orig-Width", strconv.Itoa(f.OrigWidth))
	h.Set("Vireo-Orig-Height", strconv.Itoa(f.OrigHeight))
	if v := m.Header.Get(HeaderKeptVersion); v != "" {
		h.Set(HeaderKeptVersion, v)
	}
	_, _ = w.Write(buf.Bytes())
}

// FrameImage converts a frame's pixels (HWC, OpenCV's BGR or BGRA order, or
// grey) to an image for encoding.
func FrameImage(f schema.Frame) image.Image {
	r := image.Rect(0, 0, f.Width, f.Height)
	if f.Channels == 1 {
		g := image.NewGray(r)
		copy(g.Pix, f.Pixels)
		return g
	}
	out := image.NewNRGBA(r)
	n := f.Width * f.Height
	for i := range n {
		p := f.Pixels[i*f.Channels:]
		o := out.Pix[i*4 : i*4+4]
		switch f.Channels {
		case 2: // grey + alpha
			o[0], o[1], o[2], o[3] = p[0], p[0], p[0], p[1]
		case 3:
			o[0], o[1], o[2], o[3] = p[2], p[1], p[0], 255
		default:
			o[0], o[1], o[2], o[3] = p[2], p[1], p[0], p[3]
		}
	}
	return out
}
