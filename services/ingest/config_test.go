package ingest

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
		"replicas":        func(c *Config) { c.Replicas = 7 },
		"body bytes":      func(c *Config) { c.MaxBodyBytes = -1 },
		"width":           func(c *Config) { c.MaxWidth = 1 << 20 },
		"height":          func(c *Config) { c.MaxHeight = -3 },
		"pixels":          func(c *Config) { c.MaxPixels = -1 },
		"json bytes":      func(c *Config) { c.MaxJSONBytes = 10 },
		"in flight":       func(c *Config) { c.MaxInFlight = -1 },
		"predict timeout": func(c *Config) { c.PredictTimeout = -time.Second },
		"request timeout": func(c *Config) { c.RequestTimeout = -time.Second },
		"manifest ttl":    func(c *Config) { c.ManifestTTL = -time.Second },
	} {
		c := Config{}
		c.setDefaults()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v (want ErrConfig)", name, err)
		}
	}
}
