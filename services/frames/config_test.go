package frames

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
		"bad prefix":       func(c *Config) { c.Prefix = "a.*" },
		"replicas":         func(c *Config) { c.Replicas = 7 },
		"batch frames":     func(c *Config) { c.BatchFrames = 5000 },
		"negative delay":   func(c *Config) { c.BatchDelay = -time.Millisecond },
		"in flight":        func(c *Config) { c.MaxInFlight = -1 },
		"publish timeout":  func(c *Config) { c.PublishTimeout = -time.Second },
		"publish retries":  func(c *Config) { c.PublishRetries = -1 },
		"live queue":       func(c *Config) { c.LiveQueue = 5000 },
		"max reconnects":   func(c *Config) { c.MaxReconnects = -2 },
		"backoff inverted": func(c *Config) { c.BackoffMax = time.Millisecond },
		"poll":             func(c *Config) { c.Poll = -time.Second },
	} {
		c := Config{}
		c.setDefaults()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v (want ErrConfig)", name, err)
		}
	}
}
