package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func idxBytes(t testing.TB, dims []int, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeIDX(&b, &IDX{Dims: dims, Data: data}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestReadIDXRoundTrip(t *testing.T) {
	dir := t.TempDir()
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	raw := idxBytes(t, []int{3, 2, 2}, data)
	for name, b := range map[string][]byte{"plain": raw, "gz": gz(raw)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		idx, err := ReadIDX(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(idx.Dims) != 3 || idx.Dims[0] != 3 || idx.Dims[1] != 2 || idx.Dims[2] != 2 || !bytes.Equal(idx.Data, data) {
			t.Fatalf("%s: got dims=%v data=%v", name, idx.Dims, idx.Data)
		}
	}
}

func TestReadIDXCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := idxBytes(t, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	cases := map[string][]byte{
		"empty":     {},
		"magic":     append([]byte{1, 0}, good[2:]...),
		"type":      append([]byte{0, 0, 0x0d}, good[3:]...),
		"rank":      {0, 0, 8, 0},
		"zero-dim":  {0, 0, 8, 1, 0, 0, 0, 0},
		"huge":      {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"truncated": good[:len(good)-2],
		"trailing":  append(append([]byte(nil), good...), 7),
		"short-hdr": good[:6],
		"bad-gzip":  {0x1f, 0x8b, 1, 2, 3},
		"gz-trunc":  gz(good)[:20],
	}
	for name, b := range cases {
		p := filepath.Join(dir, name+".idx")
		os.WriteFile(p, b, 0o644)
		_, err := ReadIDX(p)
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want ErrData naming %s", name, err, p)
		}
	}
	if _, err := ReadIDX(filepath.Join(dir, "missing")); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestReadIDXImagesMismatch(t *testing.T) {
	dir := t.TempDir()
	im := filepath.Join(dir, "im")
	os.WriteFile(im, idxBytes(t, []int{2, 2, 2}, make([]byte, 8)), 0o644)
	for name, lb := range map[string][]byte{
		"count": idxBytes(t, []int{3}, []byte{0, 1, 2}),
		"range": idxBytes(t, []int{2}, []byte{0, 10}),
		"rank":  idxBytes(t, []int{1, 2}, []byte{0, 1}),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, lb, 0o644)
		if _, err := ReadIDXImages(im, p, 10); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want ErrData naming %s", name, err, p)
		}
	}
}

func FuzzDecodeIDX(f *testing.F) {
	f.Add(idxBytes(f, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6}))
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 1, 9})
	// Declares 924 MB and holds none: once allocated up front, which
	// stalled the fuzz workers in make test.
	f.Add([]byte("\x00\x00\b\x017\x15\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := DecodeIDX(b)
		if err != nil {
			if !errors.Is(err, ErrData) {
				t.Fatalf("error does not wrap ErrData: %v", err)
			}
			return
		}
		n := 1
		for _, d := range idx.Dims {
			n *= d
		}
		if n != len(idx.Data) {
			t.Fatalf("dims %v but %d bytes", idx.Dims, len(idx.Data))
		}
	})
}

// TestIDXHugeDeclaredSize: a header that declares far more data than the
// file holds is refused as truncated without allocating the declared size.
func TestIDXHugeDeclaredSize(t *testing.T) {
	b := []byte{0, 0, 8, 2, 0, 0, 0x7f, 0xff, 0, 0, 0x7f, 0xff, 1, 2, 3}
	var err error
	allocs := testing.AllocsPerRun(5, func() { _, err = DecodeIDX(b) })
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v, want a truncated-data ErrData", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, _ = DecodeIDX(b)
	runtime.ReadMemStats(&ms)
	if got := ms.TotalAlloc - before; got > 1<<20 {
		t.Errorf("decoding a 15-byte file that declares %d bytes allocated %d bytes (%v allocs)", 0x7fff*0x7fff, got, allocs)
	}
}
