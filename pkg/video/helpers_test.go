package video

import (
	"os"
	"path/filepath"
	"testing"
)

// dataDir holds Debian's opencv-doc sample data.
const dataDir = "/usr/share/doc/opencv-doc/examples/data"

// dataFile returns the path of an opencv-doc sample, skipping the test when
// the package is not installed.
func dataFile(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(dataDir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("opencv-doc sample %s not installed (apt-get install opencv-doc): %v", name, err)
	}
	return p
}

func readData(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(dataFile(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func testConfig(w, h int) Config {
	return Config{Width: w, Height: h}
}
