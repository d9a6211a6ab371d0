// Package deploy holds what runs Vireo as a cluster: compose.yaml (at the
// repository root), the NATS node config and the Prometheus config. It has
// no code, only tests that check those files, since no Docker engine runs
// where the tests do.
package deploy
