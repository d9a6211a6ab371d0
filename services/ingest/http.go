package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
	"vireo/services/frames"
)

// DefaultHTTPSource is the source name of an HTTP prediction without
// ?source=.
const DefaultHTTPSource = "http"

// routes registers the API. Each route is one handler method; the
// corrections, rollback and retrain routes of DESIGN.md slot in here the
// same way.
func (s *service) routes(mux *http.ServeMux) {
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request) *apiError{
		"POST /v1/models/{model}/predict":                        s.handlePredict,
		"GET /v1/models":                                         s.handleModels,
		"GET /v1/models/{model}/versions":                        s.handleVersions,
		"GET /v1/models/{model}/versions/{version}/plots/{plot}": s.handlePlot,
		"POST /v1/sources":                                       s.handleCreateSource,
		"GET /v1/sources":                                        s.handleListSources,
		"DELETE /v1/sources/{id}":                                s.handleDeleteSource,
	} {
		mux.HandleFunc(pattern, s.wrap(pattern, h))
	}
	s.correctionRoutes(mux) // corrections.go
	s.dash.Register(mux)    // GET /, /static/, /v1/events, kept frames
}

// wrap counts the request and turns a returned apiError into its JSON
// answer (and an <p>.errors.ingest message).
func (s *service) wrap(pattern string, h func(http.ResponseWriter, *http.Request) *apiError) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.met.requests.WithLabelValues(pattern).Inc()
		if aerr := h(w, r); aerr != nil {
			body := s.reject(aerr)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(aerr.status)
			_, _ = w.Write(append(body, '\n'))
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) *apiError {
	b, err := json.Marshal(v)
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, reason: "internal", err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// readBody reads at most limit bytes; a longer body (by Content-Length or
// by its bytes) is refused with 413 before more is read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, reason: "body_too_large",
			err: fmt.Errorf("ingest: body of %d bytes (want<=%d)", r.ContentLength, limit)}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, reason: "body_too_large",
			err: fmt.Errorf("ingest: body over %d bytes", limit)}
	}
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, reason: "bad_body", err: fmt.Errorf("ingest: read body: %w", err)}
	}
	return b, nil
}

// handlePredict: POST /v1/models/{model}/predict?source=<name> with a JPEG
// or PNG body answers the JSON Result.
func (s *service) handlePredict(w http.ResponseWriter, r *http.Request) *apiError {
	modelName := r.PathValue("model")
	source := r.URL.Query().Get("source")
	if source == "" {
		source = DefaultHTTPSource
	}
	fail := func(e *apiError) *apiError {
		e.model, e.source = modelName, source
		return e
	}
	if _, _, aerr := s.serving(r.Context(), modelName); aerr != nil { // 404 before reading a body
		return fail(aerr)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		return fail(&apiError{status: http.StatusTooManyRequests, reason: "busy",
			err: fmt.Errorf("ingest: %d predictions in flight (max %d)", s.cfg.MaxInFlight, s.cfg.MaxInFlight)})
	}
	body, aerr := readBody(w, r, int64(s.cfg.MaxBodyBytes))
	if aerr != nil {
		return fail(aerr)
	}
	res, aerr := s.predict(r.Context(), modelName, source, body, true)
	if aerr != nil {
		return aerr
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(res, '\n'))
	return nil
}

// ModelInfo is one entry of GET /v1/models.
type ModelInfo struct {
	Model   string      `json:"model"`
	Serving string      `json:"serving,omitempty"` // serving version, if any
	Task    string      `json:"task,omitempty"`
	Labels  []string    `json:"labels,omitempty"`
	Input   *modelInput `json:"input,omitempty"`
}

type modelInput struct {
	Width    int `json:"width"`
	Height   int `json:"height"`
	Channels int `json:"channels"`
}

func (s *service) handleModels(w http.ResponseWriter, r *http.Request) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	names, err := s.models.List(ctx)
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "model_store", err: err}
	}
	out := make([]ModelInfo, 0, len(names))
	for _, n := range names {
		mi := ModelInfo{Model: n}
		if p, m, err := s.models.ServingManifest(ctx, n); err == nil {
			mi.Serving, mi.Task, mi.Labels = p.Version, string(m.Task), m.Labels
			mi.Input = &modelInput{Width: m.Input.Width, Height: m.Input.Height, Channels: m.Input.Channels}
		}
		out = append(out, mi)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *service) handleVersions(w http.ResponseWriter, r *http.Request) *apiError {
	modelName := r.PathValue("model")
	if err := schema.ValidateModel(modelName); err != nil {
		return &apiError{status: http.StatusBadRequest, reason: "invalid_model", err: err}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	vs, err := s.models.Versions(ctx, modelName)
	if errors.Is(err, modelstore.ErrNotFound) {
		return &apiError{status: http.StatusNotFound, reason: "model_not_found", model: modelName, err: err}
	}
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "model_store", model: modelName, err: err}
	}
	return writeJSON(w, http.StatusOK, vs)
}

// plotObjects maps the plot names of GET .../plots/{plot} to the model
// store's objects.
var plotObjects = map[string]string{
	"loss.png": modelstore.LossPlotObject,
	"lr.png":   modelstore.LRPlotObject,
}

// handlePlot: GET /v1/models/{model}/versions/{version}/plots/{loss|lr}.png
// answers a version's training plot (stored with it by `vireo models
// push` of a `vireo train` folder, or by the retrain service); 404
// plot_not_found when the version has none.
func (s *service) handlePlot(w http.ResponseWriter, r *http.Request) *apiError {
	modelName, version, plot := r.PathValue("model"), r.PathValue("version"), r.PathValue("plot")
	fail := func(status int, reason string, err error) *apiError {
		return &apiError{status: status, reason: reason, model: modelName, err: err}
	}
	if err := schema.ValidateModel(modelName); err != nil {
		return fail(http.StatusBadRequest, "invalid_model", err)
	}
	if err := schema.ValidateName("version", version); err != nil {
		return fail(http.StatusBadRequest, "invalid_version", err)
	}
	obj, ok := plotObjects[plot]
	if !ok {
		return fail(http.StatusNotFound, "unknown_plot", fmt.Errorf("ingest: plot %q (want loss.png or lr.png)", plot))
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	b, err := s.models.File(ctx, modelName, version, obj)
	if errors.Is(err, modelstore.ErrNotFound) {
		return fail(http.StatusNotFound, "plot_not_found", fmt.Errorf("ingest: model %s version %s has no training plot %s (none was recorded for this version)", modelName, version, plot))
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, "model_store", err)
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=3600") // a version's files never change
	_, _ = w.Write(b)
	return nil
}

// SourceInfo is one entry of GET /v1/sources (and the answer of POST).
type SourceInfo struct {
	schema.SourceRegistration
	Revision uint64              `json:"revision"`
	State    string              `json:"state"` // "registered" (read by frames) or "ended"
	End      *schema.EndOfStream `json:"end,omitempty"`
}

func (s *service) handleCreateSource(w http.ResponseWriter, r *http.Request) *apiError {
	body, aerr := readBody(w, r, s.cfg.MaxJSONBytes)
	if aerr != nil {
		return aerr
	}
	var reg schema.SourceRegistration
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		return &apiError{status: http.StatusBadRequest, reason: "invalid_json", err: fmt.Errorf("ingest: source registration: %w", err)}
	}
	if reg.SchemaVersion == 0 {
		reg.SchemaVersion = schema.Version
	}
	if reg.ID == "" {
		reg.ID = newSourceID()
	}
	if err := reg.Validate(); err != nil {
		return &apiError{status: http.StatusBadRequest, reason: "invalid_registration", source: reg.ID, model: reg.Model, err: err}
	}
	if _, _, aerr := s.serving(r.Context(), reg.Model); aerr != nil {
		aerr.source = reg.ID
		return aerr
	}
	b, _ := json.Marshal(reg)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	rev, err := s.kv.Create(ctx, reg.ID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return &apiError{status: http.StatusConflict, reason: "source_exists", source: reg.ID, model: reg.Model,
			err: fmt.Errorf("ingest: source %q is already registered (DELETE /v1/sources/%s first)", reg.ID, reg.ID)}
	}
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "sources_bucket", source: reg.ID, err: err}
	}
	_ = s.kv.Delete(ctx, frames.EndKey(reg.ID)) // an end record of an earlier registration
	w.Header().Set("Location", "/v1/sources/"+reg.ID)
	return writeJSON(w, http.StatusCreated, SourceInfo{SourceRegistration: reg, Revision: rev, State: "registered"})
}

func newSourceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "src-" + hex.EncodeToString(b[:])
}

func (s *service) handleListSources(w http.ResponseWriter, r *http.Request) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "sources_bucket", err: err}
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	slices.Sort(keys)
	out := []SourceInfo{}
	for _, k := range keys {
		if schema.ValidateSource(k) != nil {
			continue // an end record or other per-source state
		}
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		si := SourceInfo{Revision: e.Revision(), State: "registered"}
		if json.Unmarshal(e.Value(), &si.SourceRegistration) != nil {
			continue
		}
		if ee, err := s.kv.Get(ctx, frames.EndKey(k)); err == nil {
			var rec frames.EndRecord
			if json.Unmarshal(ee.Value(), &rec) == nil && rec.Revision == e.Revision() {
				si.State, si.End = "ended", &rec.End
			}
		}
		out = append(out, si)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *service) handleDeleteSource(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("id")
	if err := schema.ValidateSource(id); err != nil {
		return &apiError{status: http.StatusBadRequest, reason: "invalid_source", err: err}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.kv.Get(ctx, id); errors.Is(err, jetstream.ErrKeyNotFound) {
		return &apiError{status: http.StatusNotFound, reason: "source_not_found", source: id, err: fmt.Errorf("ingest: source %q is not registered", id)}
	} else if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "sources_bucket", source: id, err: err}
	}
	if err := s.kv.Delete(ctx, id); err != nil {
		return &apiError{status: http.StatusServiceUnavailable, reason: "sources_bucket", source: id, err: err}
	}
	_ = s.kv.Delete(ctx, frames.EndKey(id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
