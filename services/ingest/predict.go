package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
	"vireo/pkg/video"
)

// serving returns modelName's serving version and manifest, cached for
// ManifestTTL.
func (s *service) serving(ctx context.Context, modelName string) (string, model.Manifest, *apiError) {
	if err := schema.ValidateModel(modelName); err != nil {
		return "", model.Manifest{}, &apiError{status: http.StatusBadRequest, reason: "invalid_model", err: err}
	}
	s.mu.Lock()
	c, ok := s.manifests[modelName]
	s.mu.Unlock()
	if ok && time.Since(c.at) < s.cfg.ManifestTTL {
		return c.version, c.m, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	p, m, err := s.models.ServingManifest(ctx, modelName)
	if errors.Is(err, modelstore.ErrNotFound) {
		return "", model.Manifest{}, &apiError{status: http.StatusNotFound, reason: "model_not_found", model: modelName,
			err: fmt.Errorf("ingest: model %q: %w", modelName, err)}
	}
	if err != nil {
		return "", model.Manifest{}, &apiError{status: http.StatusServiceUnavailable, reason: "model_store", model: modelName,
			err: fmt.Errorf("ingest: model %q: %w", modelName, err)}
	}
	s.mu.Lock()
	s.manifests[modelName] = cachedManifest{version: p.Version, m: m, at: time.Now()}
	s.mu.Unlock()
	return p.Version, m, nil
}

// decodeBody validates an image body against lim (sniffing the format and
// the declared size from the header, before any pixel is decoded), then
// decodes it and resizes it to w x h. It never panics and never lets
// OpenCV see bytes that did not pass video.SniffImage.
func decodeBody(body []byte, lim video.ImageLimits, w, h int) (video.Frame, *apiError) {
	if len(body) == 0 {
		return video.Frame{}, &apiError{status: http.StatusBadRequest, reason: "empty_body", err: errors.New("ingest: empty body (want JPEG or PNG bytes)")}
	}
	if len(body) > lim.MaxBytes {
		return video.Frame{}, &apiError{status: http.StatusRequestEntityTooLarge, reason: "body_too_large",
			err: fmt.Errorf("ingest: body of %d bytes (want<=%d)", len(body), lim.MaxBytes)}
	}
	if _, err := video.SniffImage(body, lim); err != nil {
		return video.Frame{}, imageError(err)
	}
	f, err := video.DecodeImage(body, video.Config{Width: w, Height: h, Limits: lim})
	if err != nil {
		return video.Frame{}, imageError(err)
	}
	return f, nil
}

func imageError(err error) *apiError {
	switch {
	case errors.Is(err, video.ErrImageTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, reason: "image_too_large", err: err}
	case errors.Is(err, video.ErrImageFormat):
		return &apiError{status: http.StatusUnsupportedMediaType, reason: "unsupported_format", err: err}
	case errors.Is(err, video.ErrTruncated):
		return &apiError{status: http.StatusBadRequest, reason: "truncated_image", err: err}
	default:
		return &apiError{status: http.StatusBadRequest, reason: "invalid_image", err: err}
	}
}

// predict validates and decodes one image for modelName, publishes it as a
// one-frame batch on <p>.frames.<model> and, when wantReply, waits for
// infer's JSON answer (a Result, or an Error which becomes an apiError).
// Without wantReply the result only goes to <p>.results.<model>.<source>
// and predict returns nil.
func (s *service) predict(ctx context.Context, modelName, source string, body []byte, wantReply bool) ([]byte, *apiError) {
	t0 := time.Now()
	fail := func(e *apiError, seq uint64) ([]byte, *apiError) {
		e.source, e.model, e.seq = source, modelName, seq
		return nil, e
	}
	if err := schema.ValidateSource(source); err != nil {
		return fail(&apiError{status: http.StatusBadRequest, reason: "invalid_source", err: err}, 0)
	}
	version, man, aerr := s.serving(ctx, modelName)
	if aerr != nil {
		return fail(aerr, 0)
	}
	seq := s.nextSeq()
	if c := man.Input.Channels; c != 3 && c != 1 {
		return fail(&apiError{status: http.StatusUnprocessableEntity, reason: "unsupported_model",
			err: fmt.Errorf("ingest: model %s version %s takes %d channels (want 3, or 1 for grey)", modelName, version, man.Input.Channels)}, seq)
	}
	f, aerr := decodeBody(body, s.cfg.limits(), man.Input.Width, man.Input.Height)
	if aerr != nil {
		return fail(aerr, seq)
	}
	pixels, channels := f.Pixels, 3
	if man.Input.Channels == 1 {
		pixels, channels = video.BGRToGrey(f.Pixels), 1
	}
	data, err := schema.EncodeFrames(s.mem, modelName, []schema.Frame{{
		Source: source, Seq: seq, Captured: f.Captured,
		OrigWidth: f.OrigWidth, OrigHeight: f.OrigHeight,
		Width: f.Width, Height: f.Height, Channels: channels, Pixels: pixels,
	}})
	if err != nil {
		return fail(&apiError{status: http.StatusUnprocessableEntity, reason: "invalid_image", err: err}, seq)
	}
	subject, _ := s.subj.Frames(modelName)
	msg := nats.NewMsg(subject)
	msg.Data = data
	id, _ := schema.MsgID(source, seq)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(schema.HeaderSchemaVersion, fmt.Sprint(schema.Version))
	var sub *nats.Subscription
	if wantReply {
		inbox := s.deps.NC.NewRespInbox()
		if sub, err = s.deps.NC.SubscribeSync(inbox); err != nil {
			return fail(&apiError{status: http.StatusServiceUnavailable, reason: "nats", err: fmt.Errorf("ingest: subscribe reply: %w", err)}, seq)
		}
		defer func() { _ = sub.Unsubscribe() }()
		_ = sub.AutoUnsubscribe(1)
		msg.Header.Set(schema.HeaderReply, inbox)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PredictTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fail(&apiError{status: http.StatusServiceUnavailable, reason: "publish_failed", err: fmt.Errorf("ingest: publish frame: %w", err)}, seq)
	}
	s.met.images.WithLabelValues(modelName).Inc()
	if !wantReply {
		return nil, nil
	}
	reply, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return fail(&apiError{status: http.StatusGatewayTimeout, reason: "timeout",
			err: fmt.Errorf("ingest: no result for %s within %v: %w", id, s.cfg.PredictTimeout, err)}, seq)
	}
	out, aerr := checkReply(reply.Data)
	if aerr != nil {
		return fail(aerr, seq)
	}
	s.met.latency.Observe(time.Since(t0).Seconds())
	return out, nil
}

// checkReply accepts infer's reply: a valid Result is returned as is; an
// Error becomes a 422 with infer's reason; anything else is a 502.
func checkReply(b []byte) ([]byte, *apiError) {
	var probe struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, &apiError{status: http.StatusBadGateway, reason: "bad_reply", err: fmt.Errorf("ingest: infer's reply is not JSON: %w", err)}
	}
	if probe.Error != "" || probe.Reason != "" {
		reason := probe.Reason
		if schema.ValidateName("reason", reason) != nil {
			reason = "infer_error"
		}
		return nil, &apiError{status: http.StatusUnprocessableEntity, reason: reason, err: fmt.Errorf("infer: %s", probe.Error)}
	}
	var r schema.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, &apiError{status: http.StatusBadGateway, reason: "bad_reply", err: fmt.Errorf("ingest: infer's reply: %w", err)}
	}
	if err := r.Validate(); err != nil {
		return nil, &apiError{status: http.StatusBadGateway, reason: "bad_reply", err: fmt.Errorf("ingest: infer's reply: %w", err)}
	}
	return b, nil
}
