package model

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzUnmarshal: manifest.json is outside input. Unmarshal must not panic,
// must fail only with ErrInvalid or ErrFormatVersion, and a manifest it
// accepts must survive Marshal and Unmarshal unchanged.
func FuzzUnmarshal(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json")); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`{"format_version":1,"name":"a","version":"1","task":"regress","points":2,"input":{"width":8,"height":8,"channels":1,"layout":"nchw","color_order":"rgb"},"normalization":{"mean":[0],"std":[1]},"created_at":"2026-01-01T00:00:00Z","arch":"resnet18"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		js, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		m2, err := Unmarshal(js)
		if err != nil {
			t.Fatalf("marshalled manifest is refused: %v\n%s", err, js)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
	})
}
