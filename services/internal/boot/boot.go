// Package boot opens what every Vireo service needs before it runs:
// JetStream on the host's connection, the provisioned streams and
// buckets, and the model store. The four services' Run functions start
// with it, so they provision and name their errors the same way.
package boot

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/modelstore"
	"vireo/pkg/schema"
)

// Options say how a service starts.
type Options struct {
	// Service names the service in errors ("frames: ...") and error subjects.
	Service string
	// Prefix is the subject prefix; Replicas the replicas of what
	// provisioning creates.
	Prefix   string
	Replicas int
	// NoProvision skips creating the streams (an operator made them).
	NoProvision bool
	// KeepWindow is FRAMES_KEEP's max age when provisioning (0: default).
	KeepWindow time.Duration
	// StoreTimeout bounds each model-store call (0: the store's default).
	StoreTimeout time.Duration
	// NoStore leaves the model store closed (Conn.Store nil): the caller
	// brings its own (tests).
	NoStore bool
}

// Conn is what Open opened.
type Conn struct {
	Subj    schema.Subjects
	JS      jetstream.JetStream
	Store   *modelstore.Store // nil with NoStore
	ErrSubj string            // where the service publishes its errors
}

// Open connects JetStream on nc, provisions the streams unless told not
// to, and opens the model store, all within ctx.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Conn, error) {
	subj, err := schema.NewSubjects(o.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Service, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%s: jetstream: %w", o.Service, err)
	}
	if !o.NoProvision {
		if err := schema.Provision(ctx, js, subj, o.Replicas, o.KeepWindow); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Service, err)
		}
	}
	var store *modelstore.Store
	if !o.NoStore {
		if store, err = modelstore.Open(ctx, js, modelstore.Options{Prefix: o.Prefix, Replicas: o.Replicas, Timeout: o.StoreTimeout}); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Service, err)
		}
	}
	errSubj, err := subj.Errors(o.Service)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Service, err)
	}
	return &Conn{Subj: subj, JS: js, Store: store, ErrSubj: errSubj}, nil
}
