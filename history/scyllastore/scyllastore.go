// Package scyllastore is the history.Store on ScyllaDB (or Apache
// Cassandra: the CQL is the same), for deployments that outgrow one
// machine's disk. It speaks CQL through gocqlx over the scylladb/gocql
// driver.
//
// Schema (schema.cql, applied by Migrate): rows are partitioned by
// (conv, bucket) with bucket = seq / BucketSize and clustered by seq DESC,
// in the spirit of Discord's message store, so partitions stay bounded
// however old a conversation gets. A per-conversation table of buckets lets
// pages skip empty buckets in one read, and makes Last two point reads.
//
// Writes are idempotent and carry the seq that caused them as their CQL
// write timestamp: the row itself is written at its own seq, an edit at the
// edit's seq, a delete at the delete's seq (or the latest edit's, if
// higher). Cassandra's last-write-wins then gives "the highest edit wins"
// and "a re-appended row does not undo its edits or its deletion" without
// lightweight transactions.
//
// Append reads nothing on the way of a new batch: a seq mark in the
// settings table (mark.go), raised ahead by compare-and-set, bounds every
// stored seq, so rows above what this Store wrote and within what it
// reserved are new, and only the others are looked up for ErrConflict. New
// rows go in unlogged single-partition batches, WriteConcurrency
// conversations at a time, and each bucket is registered once per Store
// (a bounded cache), not once per batch. Applying an edit to a target
// outside its batch reads the target first: that read and the write after
// it are not atomic, so this store assumes one serial writer per
// conversation, which the history consumer is (one pinned consumer, in
// stream order). Two concurrent writers could at worst apply an edit that
// raced a deletion: the row still reads as deleted, with that edit's
// EditSeq. Likewise the mark makes ErrConflict exact for a stream that
// replays or reuses seqs (redelivery, rebuild, restore from an old
// backup), before or after a restart; two streams writing new seqs into
// one keyspace at once are not told apart.
package scyllastore

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/natter-chat/natter/history"
)

var _ history.Store = (*Store)(nil)

// Config configures Migrate and New. Zero values take the defaults below.
type Config struct {
	// Hosts are contact points, host or host:port. Required.
	Hosts []string
	// Keyspace holds the tables; [A-Za-z0-9_]{1,48}. Required.
	Keyspace string
	// Consistency of reads and writes, a CQL consistency name; default
	// LOCAL_QUORUM, so a read sees every acknowledged write in the
	// local data center.
	Consistency string
	// LocalDC, when set, routes requests to that data center's replicas
	// (DC-aware round robin under token awareness).
	LocalDC string
	// Replication of the keyspace Migrate creates; Migrate only.
	Replication Replication
	// BucketSize is how many global seqs one partition bucket spans; it is
	// fixed when Migrate first runs and New checks it. 0 takes the
	// keyspace's (New) or DefaultBucketSize (Migrate).
	BucketSize uint64
	// Timeout of one request; default 5 s. ConnectTimeout of the initial
	// connection; default 10 s.
	Timeout, ConnectTimeout time.Duration
	// Retries is how many times a failed idempotent request is retried,
	// with exponential backoff from 50 ms to 2 s; default 5.
	Retries int
	// WriteConcurrency is how many conversations one Append writes (and
	// how many partitions it reads) in parallel; default 128.
	WriteConcurrency int

	// observer sees every query (tests).
	observer gocql.QueryObserver
}

// Defaults for Config.
const (
	// DefaultBucketSize is 2^20 global seqs. A partition then holds at most
	// 1,048,576 rows even if one conversation took every message of the
	// whole system, and in practice a busy conversation's share of that
	// (a conversation with 1% of the traffic puts ~10k rows in a bucket,
	// a few MB), well under the ~100 MB where Scylla and Cassandra
	// partitions start to hurt. Quiet conversations get rows in many
	// buckets; the buckets table keeps their pages from probing empty ones.
	DefaultBucketSize  = 1 << 20
	DefaultConsistency = "LOCAL_QUORUM"
	defaultTimeout     = 5 * time.Second
	defaultConnTimeout = 10 * time.Second
	defaultRetries     = 5
	defaultWriteConc   = 128
)

// maxSeq is the largest seq a CQL bigint holds.
const maxSeq = math.MaxInt64

// Store is a history.Store in a ScyllaDB/Cassandra keyspace. It is safe for
// concurrent use; see the package comment for the one-writer-per-conversation
// assumption about edits.
type Store struct {
	session    gocqlx.Session
	q          queries
	bucketSize uint64
	writeConc  int
	known      *bucketCache     // buckets registered by this Store
	res        reservation      // this Store's share of the seq mark
	now        func() time.Time // the clock of USING TTL (expiry.go)

	closeOnce sync.Once
}

// New connects to the keyspace, which Migrate must have created, and builds
// the statements once; gocql prepares each on first use per connection and
// sends only its id and values afterwards.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	session, err := connect(ctx, cfg, cfg.Keyspace)
	if err != nil {
		return nil, err
	}
	size, err := readBucketSize(ctx, session)
	if err != nil {
		session.Close()
		return nil, err
	}
	if cfg.BucketSize != 0 && cfg.BucketSize != size {
		session.Close()
		return nil, fmt.Errorf("%w: config %d, keyspace %s %d", ErrBucketSize, cfg.BucketSize, cfg.Keyspace, size)
	}
	return newStore(session, size, cfg.WriteConcurrency), nil
}

func newStore(session gocqlx.Session, bucketSize uint64, writeConc int) *Store {
	return &Store{session: session, q: buildQueries(), bucketSize: bucketSize, writeConc: writeConc,
		known: newBucketCache(knownBuckets), now: time.Now}
}

// Close closes the session. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(s.session.Close)
	return nil
}

// bucket returns the bucket of seq.
func (s *Store) bucket(seq uint64) int64 { return int64(seq / s.bucketSize) }

// query returns the statement bound to ctx, idempotent (so the retry
// policy may retry it) and failing fast once the store is closed.
func (s *Store) query(ctx context.Context, st stmt) (*gocqlx.Queryx, error) {
	if s.session.Session.Closed() {
		return nil, ErrClosed
	}
	return s.session.ContextQuery(ctx, st.cql, st.names).Idempotent(true), nil
}

func withDefaults(cfg Config) (Config, error) {
	if len(cfg.Hosts) == 0 {
		return cfg, fmt.Errorf("%w: no hosts", ErrConfig)
	}
	if !validKeyspace(cfg.Keyspace) {
		return cfg, fmt.Errorf("%w: keyspace %q (want [A-Za-z0-9_]{1,48})", ErrConfig, cfg.Keyspace)
	}
	if cfg.Consistency == "" {
		cfg.Consistency = DefaultConsistency
	}
	if _, err := gocql.ParseConsistencyWrapper(cfg.Consistency); err != nil {
		return cfg, fmt.Errorf("%w: consistency: %w", ErrConfig, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnTimeout
	}
	if cfg.Retries <= 0 {
		cfg.Retries = defaultRetries
	}
	if cfg.WriteConcurrency <= 0 {
		cfg.WriteConcurrency = defaultWriteConc
	}
	return cfg, nil
}

func validKeyspace(k string) bool {
	if k == "" || len(k) > 48 {
		return false
	}
	for _, r := range k {
		ok := r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

// connect opens a session on keyspace ("" for none, as Migrate needs
// before the keyspace exists).
func connect(ctx context.Context, cfg Config, keyspace string) (gocqlx.Session, error) {
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Keyspace = keyspace
	cluster.Consistency = gocql.ParseConsistency(cfg.Consistency)
	cluster.Timeout = cfg.Timeout
	cluster.ConnectTimeout = cfg.ConnectTimeout
	cluster.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{
		NumRetries: cfg.Retries, Min: 50 * time.Millisecond, Max: 2 * time.Second,
	}
	fallback := gocql.RoundRobinHostPolicy()
	if cfg.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(cfg.LocalDC)
	}
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	cluster.QueryObserver = cfg.observer
	if err := ctx.Err(); err != nil {
		return gocqlx.Session{}, err
	}
	session, err := gocqlx.WrapSession(cluster.CreateSession())
	if err != nil {
		return gocqlx.Session{}, fmt.Errorf("scyllastore: connect to %v: %w", cfg.Hosts, err)
	}
	return session, nil
}
