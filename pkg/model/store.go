package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"vireo/pkg/onnx"
)

// File names inside a model directory.
const (
	ONNXFile     = "model.onnx"
	ManifestFile = "manifest.json"
)

// Digest is the digest form manifests use: "sha256:" and the hex SHA-256
// of b.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Marshal is the JSON form of m as Save writes it: indented, with a final
// newline.
func Marshal(m Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return append(b, '\n'), nil
}

// Unmarshal parses and validates a manifest. Unknown fields are an error
// (a misspelt field would otherwise be silently ignored); a missing
// void_class means NoVoid.
func Unmarshal(b []byte) (Manifest, error) {
	m := Manifest{VoidClass: NoVoid}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w: trailing data after the manifest", ErrInvalid)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Save writes a model directory: dir/model.onnx (onnxBytes) and
// dir/manifest.json (m with defaults applied and ModelDigest set). The
// bytes must decode as an ONNX model agreeing with m (CheckGraph) and m
// must validate. Each file is
// written to a temporary file in dir and renamed into place; the manifest
// goes last, so a directory whose manifest.json exists holds a complete
// model, and Load detects a model.onnx replaced after its manifest by the
// digest.
func Save(dir string, onnxBytes []byte, m Manifest) error {
	m.SetDefaults()
	m.ModelDigest = Digest(onnxBytes)
	if err := m.Validate(); err != nil {
		return err
	}
	om, err := onnx.Decode(onnxBytes)
	if err != nil {
		return fmt.Errorf("model: %s: %w", ONNXFile, err)
	}
	if err := CheckGraph(m, om.Graph); err != nil {
		return fmt.Errorf("%s does not match the manifest: %w", ONNXFile, err)
	}
	js, err := Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, ONNXFile), onnxBytes); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestFile), js)
}

// Load reads a model directory written by Save: the validated manifest and
// the ONNX bytes, checked against the manifest's digest.
func Load(dir string) (Manifest, []byte, error) {
	js, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("model: %w", err)
	}
	m, err := Unmarshal(js)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ONNXFile))
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("model: %w", err)
	}
	if m.ModelDigest != "" {
		if got := Digest(b); got != m.ModelDigest {
			return Manifest{}, nil, fmt.Errorf("%w: %s is %s, manifest says %s", ErrDigest, filepath.Join(dir, ONNXFile), got, m.ModelDigest)
		}
	}
	return m, b, nil
}

// writeAtomic writes b to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600; a model is read by other services.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("model: write %s: %w", path, err)
	}
	return nil
}
