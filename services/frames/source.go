package frames

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
	"vireo/pkg/video"
)

// Overhead kept free in a frame batch message for the Arrow schema,
// metadata, the other columns and the NATS headers.
const batchOverhead = 64 << 10

var errPublish = errors.New("frames: publish failed")

// runSource reads one registered source until it ends or ctx is cancelled
// (cause errDeleted/errReplaced: the registration went away; otherwise the
// service stops).
func (s *service) runSource(ctx context.Context, id string, rev uint64, reg schema.SourceRegistration) {
	log := s.log.With().Str("source", id).Str("model", reg.Model).Uint64("revision", rev).Logger()
	if e, err := s.kv.Get(ctx, EndKey(id)); err == nil {
		var rec EndRecord
		if json.Unmarshal(e.Value(), &rec) == nil && rec.Revision == rev {
			log.Info().Str("reason", rec.End.Reason).Msg("source already ended; register it again to re-read it")
			s.met.skipped.Inc()
			return
		}
	}
	man, ok := s.waitModel(ctx, log, id, reg.Model)
	if !ok {
		return
	}
	in := man.Input
	st := &sourceRun{s: s, ctx: ctx, id: id, rev: rev, reg: reg, log: log, grey: in.Channels == 1}
	if in.Channels != 3 && in.Channels != 1 {
		st.end(fmt.Errorf("%w: model %s version %s takes %d channels (want 3 for BGR, or 1 for grey)", video.ErrConfig, reg.Model, man.Version, in.Channels), "unsupported_model")
		return
	}
	frameBytes := in.Width * in.Height * in.Channels
	limit := min(int64(schema.FramesMaxMsgSize), s.deps.NC.MaxPayload()) - batchOverhead
	st.maxFrames = min(s.cfg.BatchFrames, int(limit/int64(frameBytes)))
	if st.maxFrames < 1 {
		st.end(fmt.Errorf("%w: one %dx%d frame is %d bytes (want <= %d per message)", video.ErrConfig, in.Width, in.Height, frameBytes, limit), "frame_too_large")
		return
	}
	src, err := s.open(ctx, reg, in.Width, in.Height, log)
	if err != nil {
		st.end(err, reasonOf(err))
		return
	}
	st.src = src
	st.live = src.Stats().Kind.Live()
	st.pub = &publisher{js: s.js, cfg: &s.cfg, met: s.met, model: reg.Model, source: id, live: st.live, log: log}
	st.subject, _ = s.subj.Frames(reg.Model)
	log.Info().Str("kind", src.Stats().Kind.String()).Int("width", in.Width).Int("height", in.Height).
		Str("model_version", man.Version).Int("batch_frames", st.maxFrames).Msg("source started")
	st.loop()
}

// waitModel returns the serving manifest of model, asking again every
// ModelRetry while it has none (the error is published once).
func (s *service) waitModel(ctx context.Context, log zerolog.Logger, id, model string) (m modelManifest, ok bool) {
	reported := false
	for {
		p, man, err := s.models.ServingManifest(ctx, model)
		if err == nil {
			return modelManifest{Version: p.Version, Input: man.Input}, true
		}
		if ctx.Err() != nil {
			return m, false
		}
		if !reported {
			reason := "model_unavailable"
			if errors.Is(err, modelstore.ErrNotFound) {
				reason = "model_not_found"
			}
			s.publishError(id, model, 0, reason, fmt.Errorf("source %s waits for model %s: %w", id, model, err))
			reported = true
		}
		t := time.NewTimer(s.cfg.ModelRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return m, false
		case <-t.C:
		}
	}
}

// open opens the source a registration names, validated by pkg/video before
// OpenCV sees it: a file path or file:// URL (a JPEG/PNG file is a still
// image), rtsp(s)/http(s) URLs (live, reconnecting), device://<n>.
func (s *service) open(ctx context.Context, reg schema.SourceRegistration, w, h int, log zerolog.Logger) (video.Source, error) {
	vcfg := video.Config{
		Width: w, Height: h, EveryN: reg.EveryN, FPS: reg.FPS,
		Backoff: video.Backoff{Min: s.cfg.BackoffMin, Max: s.cfg.BackoffMax, Jitter: 0.2},
		Log:     log,
	}
	if s.cfg.MaxReconnects > 0 {
		vcfg.MaxReconnects = s.cfg.MaxReconnects
	}
	u, err := url.Parse(reg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", video.ErrInvalidURL, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "", "file":
		path := reg.URL
		if u.Scheme != "" {
			if u.Host != "" && u.Host != "localhost" {
				return nil, fmt.Errorf("%w: file URL with host %q (want file:///path)", video.ErrInvalidPath, u.Host)
			}
			path = u.Path
		}
		if format, size, err := sniffFile(path); err == nil && format != video.FormatUnknown {
			lim := video.DefaultImageLimits()
			if size > int64(lim.MaxBytes) {
				return nil, fmt.Errorf("%w: %s is %d bytes (want<=%d)", video.ErrImageTooLarge, path, size, lim.MaxBytes)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", video.ErrInvalidPath, err)
			}
			return video.NewImages(vcfg, b)
		}
		return video.OpenFile(ctx, path, vcfg)
	case "device":
		idx, err := strconv.Atoi(u.Host)
		if err != nil {
			return nil, fmt.Errorf("%w: device URL %q (want device://<index>)", video.ErrNoDevice, reg.URL)
		}
		vcfg.QueueLen = s.cfg.LiveQueue
		return video.OpenDevice(ctx, idx, vcfg)
	default:
		vcfg.QueueLen = s.cfg.LiveQueue
		return video.OpenURL(ctx, reg.URL, vcfg)
	}
}

// sniffFile reads the first bytes of path to tell a still image from a
// video. Errors are left to video.OpenFile, which reports them clearly.
func sniffFile(path string) (video.ImageFormat, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return video.FormatUnknown, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return video.FormatUnknown, 0, fmt.Errorf("not a regular file")
	}
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return video.FormatJPEG, fi.Size(), nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return video.FormatPNG, fi.Size(), nil
	}
	return video.FormatUnknown, fi.Size(), nil
}

// reasonOf maps a source error to the reason of its schema.Error.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, video.ErrTruncated):
		return "truncated"
	case errors.Is(err, video.ErrInvalidPath), errors.Is(err, video.ErrInvalidURL), errors.Is(err, video.ErrNoDevice):
		return "invalid_source"
	case errors.Is(err, video.ErrReconnects):
		return "source_unreachable"
	case errors.Is(err, video.ErrOpen):
		return "open_failed"
	case errors.Is(err, video.ErrTooDamaged):
		return "too_damaged"
	case errors.Is(err, video.ErrImageTooLarge):
		return "too_large"
	case errors.Is(err, video.ErrImageFormat), errors.Is(err, video.ErrImageHeader), errors.Is(err, video.ErrDecode):
		return "invalid_image"
	case errors.Is(err, errPublish):
		return "publish_failed"
	}
	return "source_failed"
}

type modelManifest struct {
	Version string
	Input   model.Input
}
