// Package localstore is the embedded history.Store, the default of a
// one-process Natter: messages live in a Pebble database in a local
// directory, nothing to install or run.
//
// Why Pebble (github.com/cockroachdb/pebble/v2): it is pure Go (no cgo, so
// the natter binary stays static and cross-compiles), an LSM tree whose
// memory is bounded by settings we choose (block cache plus memtables) no
// matter how many messages it holds, and its keys are ordered with cheap
// reverse iteration, so "newest N before S" is one SeekLT and N Prev steps,
// the query scroll-back needs most. SQLite would need cgo (mattn/go-sqlite3)
// or a pure-Go port (modernc.org/sqlite, a C-to-Go translation measurably
// slower than the C original), and a B-tree with a secondary index gives us
// nothing the ordered key space does not.
//
// Durability: every Append is one Pebble batch committed with Sync (fsync of
// the WAL) unless Config.NoSync is set. This store is a system of record
// once messages age out of the CHAT stream, and Append is called with
// batches, so one fsync per batch is affordable.
//
// Measured on the 2-core development VM, shared with other test runs at
// the time (go test -bench, store_bench_test.go): Append of 100-message
// batches ~35-50k msgs/s with fsync per batch, ~55-60k msgs/s without;
// with 1M messages over 10k conversations, "newest 50
// before S" takes 0.14-0.23 ms, and the whole process peaked at 155 MB RSS
// with the default 64 MiB cache. A 10M-message load was stopped after 5
// minutes on the shared CPU, with ~400 MB on disk; RSS held at 176 MB. Memory is bounded by
// CacheSize + MemTableSize × MemTableStopWrites plus Pebble's per-table
// metadata, independent of the number of rows.
package localstore

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/natter-chat/natter/history"
)

var _ history.Store = (*Store)(nil)

// Config configures a Store. Zero values take the defaults below.
type Config struct {
	// Dir is the database directory, created if missing. Required.
	Dir string
	// CacheSize is Pebble's block cache in bytes; default 64 MiB.
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes; default 16 MiB. At
	// most MemTableStopWrites memtables exist at once (writes stall
	// beyond), so memtables use at most MemTableSize × MemTableStopWrites.
	MemTableSize uint64
	// MemTableStopWrites is Pebble's MemTableStopWritesThreshold; default 4.
	MemTableStopWrites int
	// NoSync commits batches without fsync. Only for tests and
	// benchmarks: a crash of the machine could lose acknowledged history.
	NoSync bool
	// Logger receives Pebble's log lines; default slog.Default().
	Logger *slog.Logger
	// Now is the clock rows expire by (expiry.go); time.Now by default.
	Now func() time.Time
}

// Defaults for Config.
const (
	DefaultCacheSize          = 64 << 20
	DefaultMemTableSize       = 16 << 20
	DefaultMemTableStopWrites = 4
)

// lockStripes is how many conversation locks Append uses; see Store.locks.
const lockStripes = 64

// Store is a history.Store in a Pebble database. It is safe for concurrent
// use.
type Store struct {
	db   *pebble.DB
	sync *pebble.WriteOptions
	seed maphash.Seed
	// locks serialise Appends that touch the same conversation (by hash),
	// because applying an edit reads its target and writes it back. Appends
	// for other conversations commit concurrently, and Pebble groups their
	// WAL syncs.
	locks [lockStripes]sync.Mutex

	// mu guards closed: methods hold it shared, Close exclusively, so no
	// call reaches a closed Pebble (which panics).
	mu     sync.RWMutex
	closed bool

	now func() time.Time
}

// New opens (or creates) the store in cfg.Dir.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is required", ErrConfig)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.MemTableSize == 0 {
		cfg.MemTableSize = DefaultMemTableSize
	}
	if cfg.MemTableStopWrites <= 0 {
		cfg.MemTableStopWrites = DefaultMemTableStopWrites
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                cfg.MemTableSize,
		MemTableStopWritesThreshold: cfg.MemTableStopWrites,
		MaxOpenFiles:                1000,
		Logger:                      pebbleLogger{cfg.Logger.With("component", "localstore")},
	}
	// Bloom filters make Append's existence check of a new row (the common
	// case: the key is absent) skip the tables that cannot hold it.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		if lockHeld(err) {
			return nil, fmt.Errorf("%w: %s (%v)", ErrLocked, cfg.Dir, err)
		}
		return nil, fmt.Errorf("localstore: open %s: %w", cfg.Dir, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{db: db, sync: pebble.Sync, seed: maphash.MakeSeed(), now: cfg.Now}
	if cfg.NoSync {
		s.sync = pebble.NoSync
	}
	return s, nil
}

// Close flushes nothing extra (every Append is committed) and closes the
// database. Calling it again returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("localstore: close: %w", err)
	}
	return nil
}

// acquire takes the shared lock, or fails once the store is closed.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.mu.RUnlock() }

// lockConvs locks the stripes of convs in ascending order (so two Appends
// cannot deadlock) and returns the unlock function.
func (s *Store) lockConvs(convs []string) func() {
	var stripes []int
	for _, c := range convs {
		stripes = append(stripes, int(maphash.String(s.seed, c)%lockStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}
}

// lockHeld reports whether Pebble failed to take the directory's LOCK
// file: a conflicting fcntl lock of another process (EAGAIN, or EACCES on
// some systems), or Pebble's own check within this process.
func lockHeld(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Info(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf logs and panics: Pebble expects Fatalf not to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("localstore: pebble: " + msg)
}

// Name names the store in dir for the history writer lease
// (history.WriterConfig.SingleWriter): host and absolute directory, the
// same across restarts. Pebble's lock on the directory means at most one
// live process has it open, so a writer may take over a lease held under
// its own Name.
func Name(dir string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ":" + dir
}
