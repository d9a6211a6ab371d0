// Package modelstore keeps Vireo's model versions in NATS JetStream: the
// files in an Object Store, the serving version of each model in a KV
// bucket whose history is the audit trail.
//
// # Layout
//
//   - Object Store MODEL_FILES (schema.Subjects.ModelFilesStore): objects
//     "<model>/<version>/model.onnx" and "<model>/<version>/manifest.json"
//     (a pkg/model Manifest whose model_digest is the SHA-256 of the ONNX
//     bytes). Optional extra files of the version (Push's files: the
//     training plots "losses.png" and "lr.png") are objects
//     "<model>/<version>/<name>" beside them, read with File and listed in
//     Version.Files. The manifest is written last, so a version whose
//     manifest exists is complete.
//   - KV bucket MODELS (schema.Subjects.ModelsKV): key "<model>", value a
//     JSON Pointer {model, version, previous, reason, at}. Every change of
//     the serving version is a new revision; the bucket keeps the last
//     schema.ModelHistory revisions per key, which Versions and History
//     report and Rollback uses.
//   - KV key "<model>.next" (never a model name: names cannot contain '.')
//     is the version counter, advanced with compare-and-set so concurrent
//     Push calls never get the same version.
//
// # Versions
//
// Push assigns versions "v0001", "v0002", ... (zero-padded to four digits,
// wider past 9999): they sort as strings in the order they were pushed.
// Push validates the manifest (pkg/model), checks that the ONNX bytes decode
// and agree with it (model.CheckGraph), sets its Name, Version and
// ModelDigest, and stores both objects. Push never changes what serves:
// Promote (or SetServing) moves the pointer, Rollback moves it back.
// Get checks the ONNX bytes against the manifest's digest on every read.
//
// # Concurrency and blocking
//
// A Store is safe for concurrent use; every method takes a ctx and blocks on
// JetStream requests (with Options.Timeout when ctx has no deadline). A
// Watcher owns one goroutine that decodes the KV updates; Stop (or
// cancelling the ctx given to Watch) ends it and waits for it, and closes
// the Updates channel. Nothing here keeps global state.
package modelstore
