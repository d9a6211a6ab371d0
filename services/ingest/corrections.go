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

	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
	"vireo/services/retrain"
)

// correctionRoutes registers the retrain loop's routes (DESIGN.md):
//
//	POST /v1/models/{model}/corrections  a JSON schema.Correction -> CORRECTIONS
//	POST /v1/models/{model}/rollback     {"to": ""} (previous) or a version
//	POST /v1/models/{model}/retrain      start a retrain run now
//	GET  /v1/models/{model}/retrain      the retrain service's status and progress
func (s *service) correctionRoutes(mux *http.ServeMux) {
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request) *apiError{
		"POST /v1/models/{model}/corrections": s.handleCorrection,
		"POST /v1/models/{model}/rollback":    s.handleRollback,
		"POST /v1/models/{model}/retrain":     s.handleRetrain,
		"GET /v1/models/{model}/retrain":      s.handleRetrain,
	} {
		mux.HandleFunc(pattern, s.wrap(pattern, h))
	}
}

// CorrectionReply answers an accepted correction.
type CorrectionReply struct {
	ID        string `json:"id"`        // its Nats-Msg-Id
	Seq       uint64 `json:"seq"`       // CORRECTIONS stream sequence
	Duplicate bool   `json:"duplicate"` // the same correction was already stored
}

// handleCorrection: POST /v1/models/{model}/corrections. The body is a
// schema.Correction; model (from the path), schema_version and ts are
// filled in when absent. It is validated, checked against the serving
// model's task, a frame it names must be in FRAMES_KEEP, and it is stored
// in CORRECTIONS with Nats-Msg-Id retrain.CorrectionID (a retried submit
// is stored once: 200 with duplicate=true; a new one: 201).
func (s *service) handleCorrection(w http.ResponseWriter, r *http.Request) *apiError {
	modelName := r.PathValue("model")
	fail := func(status int, reason string, err error) *apiError {
		return &apiError{status: status, reason: reason, model: modelName, err: err}
	}
	_, man, aerr := s.serving(r.Context(), modelName)
	if aerr != nil {
		return aerr
	}
	body, aerr := readBody(w, r, schema.CorrectionsMsgMax-1024)
	if aerr != nil {
		aerr.model = modelName
		return aerr
	}
	var c schema.Correction
	if err := json.Unmarshal(body, &c); err != nil {
		return fail(http.StatusBadRequest, "invalid_correction", fmt.Errorf("ingest: correction is not JSON: %w", err))
	}
	if c.Model == "" {
		c.Model = modelName
	}
	if c.Model != modelName {
		return fail(http.StatusBadRequest, "invalid_correction", fmt.Errorf("ingest: correction model (got=%q, want=%q from the path)", c.Model, modelName))
	}
	if c.SchemaVersion == 0 {
		c.SchemaVersion = schema.Version
	}
	if c.TS.IsZero() {
		c.TS = time.Now().UTC()
	}
	if err := c.Validate(); err != nil {
		return fail(http.StatusBadRequest, "invalid_correction", err)
	}
	if want := correctionTask(string(man.Task)); c.Task != want {
		return fail(http.StatusUnprocessableEntity, "wrong_task", fmt.Errorf("ingest: correction task (got=%s, want=%s for model %s)", c.Task, want, modelName))
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if c.Source != "" {
		if _, err := retrain.KeptFrame(ctx, s.js, s.subj, modelName, c.Source, c.Seq); err != nil {
			if errors.Is(err, retrain.ErrFrameNotKept) {
				return &apiError{status: http.StatusNotFound, reason: "frame_not_kept", model: modelName, source: c.Source, seq: c.Seq, err: err}
			}
			return fail(http.StatusServiceUnavailable, "store_unavailable", err)
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return fail(http.StatusInternalServerError, "internal", err)
	}
	subj, _ := s.subj.Corrections(modelName)
	id := retrain.CorrectionID(&c)
	ack, err := s.js.Publish(ctx, subj, b, jetstream.WithMsgID(id))
	if err != nil {
		return fail(http.StatusServiceUnavailable, "store_unavailable", fmt.Errorf("ingest: store correction: %w", err))
	}
	status := http.StatusCreated
	if ack.Duplicate {
		status = http.StatusOK
	}
	return writeJSON(w, status, CorrectionReply{ID: id, Seq: ack.Sequence, Duplicate: ack.Duplicate})
}

// correctionTask is the Correction task of a manifest task.
func correctionTask(t string) schema.Task {
	switch t {
	case "classify":
		return schema.TaskClassification
	case "multilabel":
		return schema.TaskMultiLabel
	case "segment":
		return schema.TaskSegmentation
	case "regress":
		return schema.TaskRegression
	}
	return schema.Task(t)
}

// RollbackRequest is the body of POST /v1/models/{model}/rollback.
type RollbackRequest struct {
	To string `json:"to"` // "" means the version that served before
}

// handleRollback: POST /v1/models/{model}/rollback answers the new
// modelstore.Pointer (the history keeps the rollback).
func (s *service) handleRollback(w http.ResponseWriter, r *http.Request) *apiError {
	modelName := r.PathValue("model")
	fail := func(status int, reason string, err error) *apiError {
		return &apiError{status: status, reason: reason, model: modelName, err: err}
	}
	if err := schema.ValidateModel(modelName); err != nil {
		return fail(http.StatusBadRequest, "invalid_model", err)
	}
	body, aerr := readBody(w, r, 4096)
	if aerr != nil {
		return aerr
	}
	var req RollbackRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return fail(http.StatusBadRequest, "bad_body", fmt.Errorf("ingest: rollback body is not JSON {\"to\": version}: %w", err))
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	store, err := modelstore.Open(ctx, s.js, modelstore.Options{Prefix: s.cfg.Prefix, Replicas: s.cfg.Replicas})
	if err != nil {
		return fail(http.StatusServiceUnavailable, "store_unavailable", err)
	}
	p, err := store.Rollback(ctx, modelName, req.To)
	switch {
	case errors.Is(err, modelstore.ErrNotFound):
		return fail(http.StatusNotFound, "unknown_version", err)
	case errors.Is(err, modelstore.ErrNoPrevious), errors.Is(err, modelstore.ErrInvalid):
		return fail(http.StatusConflict, "no_rollback", err)
	case err != nil:
		return fail(http.StatusServiceUnavailable, "store_unavailable", err)
	}
	s.mu.Lock()
	delete(s.manifests, modelName)
	s.mu.Unlock()
	s.log.Info().Str("model", modelName).Str("model_version", p.Version).Str("previous", p.Previous).Msg("rollback")
	return writeJSON(w, http.StatusOK, p)
}

// handleRetrain: POST starts a retrain run now, GET reports the retrain
// service's retrain.Status for the model (503 when no retrain service
// answers).
func (s *service) handleRetrain(w http.ResponseWriter, r *http.Request) *apiError {
	modelName := r.PathValue("model")
	fail := func(status int, reason string, err error) *apiError {
		return &apiError{status: status, reason: reason, model: modelName, err: err}
	}
	subj, err := retrain.ControlSubject(s.cfg.Prefix, modelName)
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_model", err)
	}
	action := retrain.ActionStatus
	if r.Method == http.MethodPost {
		action = retrain.ActionStart
	}
	req, _ := json.Marshal(retrain.Request{Action: action})
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	msg, err := s.deps.NC.RequestWithContext(ctx, subj, req)
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		return fail(http.StatusServiceUnavailable, "retrain_unavailable", fmt.Errorf("ingest: no retrain service answers on %s: %w", subj, err))
	}
	if err != nil {
		return fail(http.StatusServiceUnavailable, "retrain_unavailable", err)
	}
	var st retrain.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		return fail(http.StatusBadGateway, "retrain_reply", fmt.Errorf("ingest: retrain reply: %w", err))
	}
	if st.Error != "" {
		return fail(http.StatusConflict, "retrain_refused", errors.New(st.Error))
	}
	status := http.StatusOK
	if action == retrain.ActionStart {
		status = http.StatusAccepted
	}
	return writeJSON(w, status, st)
}
