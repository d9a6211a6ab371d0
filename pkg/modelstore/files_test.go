package modelstore

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestPushFiles: a version's extra files (the training plots) are stored
// with it, listed in Versions and read back with File; a version without
// them, or a name it does not have, is ErrNotFound; bad names and sizes
// are refused before anything is stored.
func TestPushFiles(t *testing.T) {
	ctx := testCtx(t)
	s, err := Open(ctx, startJS(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, m := tinyClassifier(t, 1)
	loss, lr := []byte("\x89PNG loss plot"), []byte("\x89PNG lr plot")
	v1, err := s.Push(ctx, "cls", b, m, File{Name: LRPlotObject, Data: lr}, File{Name: LossPlotObject, Data: loss})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Push(ctx, "cls", b, m) // no plots
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{LossPlotObject: loss, LRPlotObject: lr} {
		got, err := s.File(ctx, "cls", v1, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("File(%s, %s) = %q, %v (want %q)", v1, name, got, err, want)
		}
		if _, err := s.File(ctx, "cls", v2, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("File(%s, %s) of a version without plots: %v (want ErrNotFound)", v2, name, err)
		}
	}
	if _, err := s.File(ctx, "cls", "v0099", LossPlotObject); !errors.Is(err, ErrNotFound) {
		t.Errorf("File of a version that does not exist: %v (want ErrNotFound)", err)
	}
	vs, err := s.Versions(ctx, "cls")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || !slices.Equal(vs[0].Files, []string{LossPlotObject, LRPlotObject}) || vs[1].Files != nil {
		t.Fatalf("Versions files: %q and %q (want [losses.png lr.png] and none)", vs[0].Files, vs[1].Files)
	}
	if vs[0].Bytes != uint64(len(b)) {
		t.Errorf("Versions bytes %d (want the ONNX size %d, not counting the plots)", vs[0].Bytes, len(b))
	}

	for _, c := range []struct {
		name  string
		files []File
	}{
		{"the model's own object", []File{{Name: ONNXObject, Data: loss}}},
		{"the manifest's name", []File{{Name: ManifestObject, Data: loss}}},
		{"a path", []File{{Name: "../x.png", Data: loss}}},
		{"a hidden name", []File{{Name: ".x", Data: loss}}},
		{"an empty name", []File{{Name: "", Data: loss}}},
		{"a long name", []File{{Name: strings.Repeat("a", MaxFileNameLen+1), Data: loss}}},
		{"empty data", []File{{Name: LossPlotObject}}},
		{"too big", []File{{Name: LossPlotObject, Data: make([]byte, MaxFileBytes+1)}}},
		{"twice", []File{{Name: LossPlotObject, Data: loss}, {Name: LossPlotObject, Data: lr}}},
		{"too many", make([]File, MaxFiles+1)},
	} {
		if v, err := s.Push(ctx, "other", b, m, c.files...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Push = %q, %v (want ErrInvalid)", c.name, v, err)
		}
	}
	if names, err := s.List(ctx); err != nil || !slices.Equal(names, []string{"cls"}) {
		t.Errorf("after refused pushes List = %q, %v (want only cls)", names, err)
	}
	for _, name := range []string{ONNXObject, "a/b", ".."} {
		if _, err := s.File(ctx, "cls", v1, name); !errors.Is(err, ErrInvalid) {
			t.Errorf("File(%q): %v (want ErrInvalid)", name, err)
		}
	}
}
