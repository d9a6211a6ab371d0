package retrain

import (
	"errors"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"vireo/pkg/golden"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestConfigDefaultsGolden(t *testing.T) {
	var c Config
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	golden.JSON(t, filepath.Join("testdata", "config.golden.json"), c, *update)
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"bad prefix":      func(c *Config) { c.Prefix = "a.*" },
		"bad model":       func(c *Config) { c.Models = []string{"a.b"} },
		"model twice":     func(c *Config) { c.Models = []string{"m", "m"} },
		"dataset model":   func(c *Config) { c.Datasets = map[string]string{"a b": "x"} },
		"empty dataset":   func(c *Config) { c.Datasets = map[string]string{"m": ""} },
		"replicas":        func(c *Config) { c.Replicas = 9 },
		"min corrections": func(c *Config) { c.MinCorrections = -1 },
		"schedule":        func(c *Config) { c.Schedule = time.Millisecond },
		"holdout":         func(c *Config) { c.HoldoutPercent = 95 },
		"weight":          func(c *Config) { c.CorrectionWeight = -1 },
		"repeat":          func(c *Config) { c.CorrectionRepeat = 1000 },
		"epochs":          func(c *Config) { c.BodyEpochs = -1 },
		"lr":              func(c *Config) { c.LR = 50 },
		"tolerance":       func(c *Config) { c.Tolerance = 1 },
		"threads":         func(c *Config) { c.Threads = -2 },
		"run timeout":     func(c *Config) { c.RunTimeout = time.Millisecond },
	} {
		c := Config{}
		c.setDefaults()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

func TestGate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		higher        bool
		before, after Scores
		want          bool
	}{
		{"better everywhere", true, Scores{0.9, 0.2}, Scores{0.91, 0.8}, true},
		{"small valid drop within tolerance", true, Scores{0.9, 0.2}, Scores{0.895, 0.8}, true},
		{"valid drop too big", true, Scores{0.9, 0.2}, Scores{0.85, 1}, false},
		{"corrections unchanged", true, Scores{0.9, 0.5}, Scores{0.95, 0.5}, false},
		{"mse: lower is better", false, Scores{0.10, 0.5}, Scores{0.105, 0.2}, true},
		{"mse: rose too much", false, Scores{0.10, 0.5}, Scores{0.2, 0.2}, false},
	} {
		got, why := Gate("m", tc.higher, tc.before, tc.after, 0.01)
		if got != tc.want {
			t.Errorf("%s: got %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

func TestHoldoutIsStableAndNearItsShare(t *testing.T) {
	held := 0
	for i := range 1000 {
		var d [32]byte
		d[0], d[1], d[7] = byte(i), byte(i>>8), byte(i*7)
		if isHoldout(d, 25) != isHoldout(d, 25) {
			t.Fatal("not deterministic")
		}
		if isHoldout(d, 25) {
			held++
		}
	}
	if held < 150 || held > 350 {
		t.Errorf("held out %d of 1000 at 25%%", held)
	}
}
