// Package model defines a trained model version on disk: a directory
// holding model.onnx (the network, written by package onnx) and
// manifest.json (a Manifest: what the model predicts, the input it expects,
// how to normalise it, and where it came from).
//
// Invariants:
//   - manifest.json carries format_version (FormatVersion); Load refuses
//     other versions with ErrFormatVersion and unknown fields with
//     ErrInvalid, so a typo in a hand-edited manifest is caught.
//   - Save validates the manifest and checks that the ONNX bytes decode
//     and agree with it (CheckGraph: input (N, C, H, W) and output classes
//     or 2*points, where the graph's dims are static) before touching the
//     directory, then writes model.onnx and
//     manifest.json each to a temporary file renamed into place, manifest
//     last. The manifest records model.onnx's SHA-256 (model_digest) and
//     Load checks it, so a manifest never silently describes another
//     network.
//   - VoidClass is -1 (NoVoid) unless the task is segment; Threshold is set
//     (default 0.2) only for multilabel; Points only for regress.
//
// The package holds no state; Save and Load do blocking file I/O. Writers
// of the same directory must be serialised by the caller (the trainer owns
// a version directory until it is published).
package model
