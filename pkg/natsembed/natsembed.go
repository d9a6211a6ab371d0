// Package natsembed runs a NATS JetStream server inside the process, the
// way `vireo up` and the tests use it.
//
// JetStream syncs every write to disk before acknowledging it
// (SyncAlways): corrections and model versions are the users' work and must
// survive a power cut (DESIGN.md, "Durability"). The frame path does not
// pay for it: FRAMES is a memory stream.
//
// Start returns once the server accepts clients; Shutdown stops it and
// waits. The server's own logging goes to the injected zerolog logger.
package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// ErrConfig is wrapped by Config.Validate errors.
var ErrConfig = errors.New("natsembed: invalid config")

// Config of an embedded server.
type Config struct {
	// StoreDir is where JetStream keeps its files (required).
	StoreDir string
	// Host and Port to listen on for clients; Port -1 picks a free port
	// (tests), 0 means 4222.
	Host string
	Port int
	// MaxPayload is the largest message the server accepts (0: 8 MiB, to
	// fit a frame batch; see schema.FramesMaxMsgSize).
	MaxPayload int32
	// MaxMemory and MaxStore bound JetStream's memory and file storage
	// (0: 2 GiB and 32 GiB).
	MaxMemory, MaxStore int64
	// ServerName names the server in logs (default "vireo").
	ServerName string
	// NoSync turns SyncAlways off (benchmarks only; never for users' data).
	NoSync bool
	// ReadyTimeout bounds the wait for the server to accept clients (0: 10s).
	ReadyTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 4222
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 8 << 20
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = 2 << 30
	}
	if c.MaxStore == 0 {
		c.MaxStore = 32 << 30
	}
	if c.ServerName == "" {
		c.ServerName = "vireo"
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
}

// Validate reports a config that cannot start.
func (c Config) Validate() error {
	switch {
	case c.StoreDir == "":
		return fmt.Errorf("%w: StoreDir is required", ErrConfig)
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("%w: Port %d (want -1..65535)", ErrConfig, c.Port)
	case c.MaxPayload < 0 || c.MaxPayload > 64<<20:
		return fmt.Errorf("%w: MaxPayload %d (want 0..64 MiB)", ErrConfig, c.MaxPayload)
	}
	return nil
}

// Server is a running embedded server.
type Server struct {
	s *server.Server
}

// Start starts a server and waits until it accepts clients.
func Start(cfg Config, log zerolog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		MaxPayload:         cfg.MaxPayload,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		SyncAlways:         !cfg.NoSync,
		NoSigs:             true,
		// A client may hold a frame batch plus headroom pending.
		MaxPending: 64 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	s.SetLoggerV2(zlog{log.With().Str("component", "nats").Logger()}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after %v (port %d in use?)", cfg.ReadyTimeout, cfg.Port)
	}
	return &Server{s: s}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.s.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}

// zlog adapts zerolog to the server's Logger.
type zlog struct{ l zerolog.Logger }

func (z zlog) Noticef(f string, v ...any) { z.l.Debug().Msgf(f, v...) }
func (z zlog) Warnf(f string, v ...any)   { z.l.Warn().Msgf(f, v...) }
func (z zlog) Fatalf(f string, v ...any)  { z.l.Error().Msgf(f, v...) }
func (z zlog) Errorf(f string, v ...any)  { z.l.Error().Msgf(f, v...) }
func (z zlog) Debugf(f string, v ...any)  { z.l.Debug().Msgf(f, v...) }
func (z zlog) Tracef(f string, v ...any)  { z.l.Trace().Msgf(f, v...) }
