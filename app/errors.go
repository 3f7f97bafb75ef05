package app

import "errors"

// ErrNoHistoryStore means the history role was asked for without a
// history store to write to (HistoryConfig names none).
var ErrNoHistoryStore = errors.New("app: the history role needs a history store (History.Dir, History.CQL or History.Store)")

// ErrPprofAddr means Config.Pprof is not a loopback address: profiles
// show internals no client should see.
var ErrPprofAddr = errors.New("app: pprof needs a loopback address")
