package scyllastore

import "github.com/gocql/gocql"

// WithObserver returns cfg with o seeing every query of the store.
func WithObserver(cfg Config, o gocql.QueryObserver) Config {
	cfg.observer = o
	return cfg
}
