package scyllastore

import "errors"

var (
	// ErrConfig is returned by New and Migrate for an unusable Config.
	ErrConfig = errors.New("scyllastore: invalid config")
	// ErrNotMigrated is returned by New when the keyspace has no schema:
	// run Migrate (natter migrate) first.
	ErrNotMigrated = errors.New("scyllastore: keyspace not migrated")
	// ErrBucketSize is returned when Config.BucketSize differs from the
	// bucket size the keyspace was created with.
	ErrBucketSize = errors.New("scyllastore: bucket size differs from the keyspace's")
	// ErrInvalid is returned by Append for a row without conv or seq, or
	// with a seq beyond the range of a CQL bigint.
	ErrInvalid = errors.New("scyllastore: invalid row")
	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("scyllastore: store is closed")
)
