package localstore

import "errors"

var (
	// ErrConfig is returned by New for an unusable Config.
	ErrConfig = errors.New("localstore: invalid config")
	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("localstore: store is closed")
	// ErrInvalid is returned by Append for a row that cannot be keyed: an
	// empty conversation id or one longer than 255 bytes, or seq 0.
	ErrInvalid = errors.New("localstore: invalid row")
	// ErrLocked is returned by New when another process (or another Store
	// of this one) has the directory open: Pebble locks it, and one
	// embedded store has one writer.
	ErrLocked = errors.New("localstore: directory is in use by another process")
	// ErrCorrupt is returned when a stored value cannot be decoded.
	ErrCorrupt = errors.New("localstore: corrupt row")
)
