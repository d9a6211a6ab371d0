// Package schema is Vireo's public contract in code: NATS subject names,
// the Arrow schemas of frame and result batches with their encoders and
// validating decoders, the JSON messages (Result, Error, SourceRegistration,
// Correction, EndOfStream) with Validate methods, and the JetStream stream,
// consumer, KV and object-store configurations.
//
// # Versioning
//
// Everything here is versioned by the Version constant: Arrow schemas carry
// it in their metadata ("vireo.schema_version"), JSON messages in a
// "schema_version" field, stream configs in their metadata. Decoders and
// Validate accept exactly Version and return ErrVersion otherwise. Golden
// files under testdata pin every schema, example message and config; a
// change to one of them is a contract change (go test -update rewrites them).
//
// # Names
//
// Model, source and service names become subject tokens, stream consumer
// names, KV keys and Msg-Ids, so ValidateName allows only 1..64 characters
// of [A-Za-z0-9_-] (no '.', '*', '>' or whitespace); the model name "arrow"
// is reserved because results.arrow.<model> and results.<model>.<source>
// share a prefix. Subjects builds every subject from a configurable prefix
// (default "vireo") and refuses invalid names, so no caller can publish to a
// wildcard or an unintended subject.
//
// # Arrow frame batches
//
// A frame batch is one Arrow IPC stream (schema, one record batch, end of
// stream) per NATS message: one row per frame, uint8 HWC BGR pixels at the
// model's input size in a fixed_size_binary(h*w*c) column, so the pixels of
// a batch are one contiguous (N,H,W,C) buffer (FrameBatch.Pixels) ready for
// a tensor upload. DecodeFrames reads bytes from the network: it verifies
// the IPC framing and the flatbuffer metadata before arrow sees them (arrow
// v15 trusts lengths in them and can be made to allocate without bound),
// bounds every allocation by the input size, then checks the schema field by
// field, row counts, buffer lengths, names and sizes, so the returned batch's
// accessors cannot fail. It returns errors wrapping ErrMalformed or
// ErrVersion. It recovers panics only as a last resort (arrow's reader
// panics on some malformed buffer offsets; arrow v15 panics counting nulls
// of a column whose null count is unknown); FuzzDecodeFrames fails if
// Vireo's own validation ever panics.
//
// # Ownership
//
// Encoders and decoders take a memory.Allocator; a FrameBatch owns its
// record until Release. Nothing here starts goroutines, blocks or keeps
// global state; the JetStream configs are plain structs that callers may
// adjust before creating the streams.
package schema
