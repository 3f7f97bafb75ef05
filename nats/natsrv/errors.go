package natsrv

import "errors"

// Sentinel errors returned (wrapped with %w) by this package.
var (
	// ErrNoDataDir is returned by Start when Config.DataDir is empty.
	ErrNoDataDir = errors.New("natsrv: data directory is required")
	// ErrInvalidListen is returned by Start when Config.Listen or
	// Config.HTTPMonitor is not a valid host:port.
	ErrInvalidListen = errors.New("natsrv: invalid listen address")
	// ErrAuthFile is returned by Start when nats-auth.json cannot be read,
	// parsed or written.
	ErrAuthFile = errors.New("natsrv: credentials file")
	// ErrNotReady is returned by Start when the server did not become ready
	// for connections with JetStream enabled in time.
	ErrNotReady = errors.New("natsrv: server not ready")
	// ErrShutdownTimeout is returned by Shutdown when its context ends
	// before the server has stopped.
	ErrShutdownTimeout = errors.New("natsrv: shutdown not complete")
)

// ErrCluster is returned by Start when the cluster settings of Config are
// incomplete or malformed.
var ErrCluster = errors.New("natsrv: cluster configuration")
