package retrain

import (
	"errors"
	"flag"
	"math"
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
		"significance":    func(c *Config) { c.Significance = 1.5 },
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
	sig := Paired{Better: 6}            // p = 1/64
	lucky := Paired{Better: 1, Same: 5} // p = 1/2
	for _, tc := range []struct {
		name          string
		higher        bool
		before, after Scores
		pairs         Paired
		want          bool
	}{
		{"better everywhere", true, Scores{0.9, 0.2}, Scores{0.91, 0.8}, sig, true},
		{"small valid drop within tolerance", true, Scores{0.9, 0.2}, Scores{0.895, 0.8}, sig, true},
		{"valid drop too big", true, Scores{0.9, 0.2}, Scores{0.85, 1}, sig, false},
		{"corrections unchanged", true, Scores{0.9, 0.5}, Scores{0.95, 0.5}, Paired{Same: 6}, false},
		{"one lucky item of six", true, Scores{0.9, 0}, Scores{0.9, 1.0 / 6}, lucky, false},
		{"as many worse as better", true, Scores{0.9, 0.5}, Scores{0.9, 0.5}, Paired{Better: 5, Worse: 5}, false},
		{"mse: lower is better", false, Scores{0.10, 0.5}, Scores{0.105, 0.2}, sig, true},
		{"mse: rose too much", false, Scores{0.10, 0.5}, Scores{0.2, 0.2}, sig, false},
	} {
		got, why := Gate("m", tc.higher, tc.before, tc.after, 0.01, tc.pairs, 0.05)
		if got != tc.want {
			t.Errorf("%s: got %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

// TestSignTest: the p-values of the gate's sign test against values
// worked out by hand (sums of binomial coefficients over 2^n).
func TestSignTest(t *testing.T) {
	for _, tc := range []struct {
		p    Paired
		want float64
	}{
		{Paired{}, 1},
		{Paired{Better: 1}, 0.5},
		{Paired{Better: 5}, 1.0 / 32},
		{Paired{Better: 4, Same: 9}, 1.0 / 16},
		{Paired{Better: 5, Worse: 1}, 7.0 / 64},    // (1+6)/64
		{Paired{Better: 8, Worse: 2}, 56.0 / 1024}, // (1+10+45)/1024
		{Paired{Better: 0, Worse: 3}, 1},
	} {
		if got := tc.p.P(); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%+v: p = %v, want %v", tc.p, got, tc.want)
		}
	}
	got := Compare([]float64{0, 1, 0.5, 0.2, math.NaN()}, []float64{1, 1, 0.4, 0.1, 0.3}, true)
	if got != (Paired{Better: 1, Worse: 2, Same: 2}) {
		t.Errorf("Compare, higher better: %+v", got)
	}
	if got := Compare([]float64{0.3, 0.1}, []float64{0.2, 0.2}, false); got != (Paired{Better: 1, Worse: 1}) {
		t.Errorf("Compare, lower better: %+v", got)
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
