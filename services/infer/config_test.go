package infer

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
		"bad prefix":           func(c *Config) { c.Prefix = "a.*" },
		"bad model":            func(c *Config) { c.Models = []string{"a.b"} },
		"reserved model":       func(c *Config) { c.Models = []string{"arrow"} },
		"model twice":          func(c *Config) { c.Models = []string{"m", "m"} },
		"negative threads":     func(c *Config) { c.Threads = -1 },
		"math fp8":             func(c *Config) { c.Math = "fp8" },
		"replicas":             func(c *Config) { c.Replicas = 7 },
		"max batch":            func(c *Config) { c.MaxBatch = 5000 },
		"negative delay":       func(c *Config) { c.MaxDelay = -time.Millisecond },
		"source share":         func(c *Config) { c.SourceShare = 1.5 },
		"queue below batch":    func(c *Config) { c.MaxQueued = 3 },
		"pull messages":        func(c *Config) { c.PullMaxMessages = 1000 },
		"pull bytes too small": func(c *Config) { c.PullMaxBytes = 1 << 20 },
		"progress >= ack wait": func(c *Config) { c.ProgressEvery = time.Hour },
		"max in flight":        func(c *Config) { c.MaxInFlight = 65 },
		"preferred size":       func(c *Config) { c.PreferredSizes = []int{64} },
	} {
		c := Config{}
		c.setDefaults()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v (want ErrConfig)", name, err)
		}
	}
}
