package scyllastore

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"
)

// The seq mark lets Append tell a new row from one that may be stored
// without reading rows: settings row markName holds a seq at or above
// every seq stored in the keyspace. Append raises it to a batch's highest
// seq before writing any row of the batch, so it stays above every row,
// and only rows at or below it are looked up (redeliveries, re-appended
// batches, rebuilds, a stream restored from an old backup: exactly where
// ErrConflict can arise). The stream hands out seqs in ascending order, so
// a writer keeping up appends above the mark and reads nothing per row.
//
// The value is written with its seq as its CQL write timestamp, so
// last-write-wins keeps the highest value whatever order racing writers
// land in: the cell only ever grows. Never DELETE it: a tombstone written
// at wall-clock time would hide every later raise. To start a keyspace
// over, drop it.
//
// A keyspace written before the mark existed may hold rows above a mark
// raised by new batches, so the mark is trusted only once settings row
// markCompleteName exists: Migrate writes it, after raising the mark to
// the highest seq stored (a scan of every conversation's last seq, once).
// Until then Append looks every row up, as it always did.
const (
	markName         = "high_seq"
	markCompleteName = "high_seq_complete"
)

// mark is what readMark read.
type mark struct {
	high     uint64 // the mark; 0 if none
	complete bool   // high bounds every stored seq
}

func (s *Store) readMark(ctx context.Context) (mark, error) {
	var m mark
	if s.session.Session.Closed() {
		return m, ErrClosed
	}
	iter := s.session.Session.Query("SELECT name, value FROM settings WHERE name IN (?, ?)", markName, markCompleteName).
		WithContext(ctx).Idempotent(true).Iter()
	var name, value string
	for iter.Scan(&name, &value) {
		switch name {
		case markName:
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				_ = iter.Close()
				return m, fmt.Errorf("scyllastore: setting %s = %q: %w", markName, value, err)
			}
			m.high = n
		case markCompleteName:
			m.complete = true
		}
	}
	if err := iter.Close(); err != nil {
		return m, fmt.Errorf("scyllastore: read seq mark: %w", err)
	}
	return m, nil
}

// raiseMark raises the mark to seq (a lower seq written late loses to it).
func (s *Store) raiseMark(ctx context.Context, seq uint64) error {
	if s.session.Session.Closed() {
		return ErrClosed
	}
	err := s.session.Session.Query("INSERT INTO settings (name, value) VALUES (?, ?) USING TIMESTAMP ?",
		markName, strconv.FormatUint(seq, 10), int64(seq)).WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("scyllastore: raise seq mark to %d: %w", seq, err)
	}
	return nil
}

// completeMark makes the mark trusted, if it is not yet: it raises it to
// the highest seq stored, found by reading every conversation's Last, and
// then records that it is complete. Rows Append stores meanwhile raise it
// themselves. Migrate calls it.
func (s *Store) completeMark(ctx context.Context) error {
	m, err := s.readMark(ctx)
	if err != nil || m.complete {
		return err
	}
	iter := s.session.Session.Query("SELECT DISTINCT conv FROM buckets").WithContext(ctx).PageSize(1000).Iter()
	var (
		mu   sync.Mutex
		high uint64
		conv string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for iter.Scan(&conv) {
		g.Go(func() error {
			last, err := s.Last(gctx, conv)
			mu.Lock()
			high = max(high, last)
			mu.Unlock()
			return err
		})
	}
	err = g.Wait()
	if cerr := iter.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("scyllastore: list conversations: %w", cerr)
	}
	if err != nil {
		return err
	}
	if high > m.high {
		if err := s.raiseMark(ctx, high); err != nil {
			return err
		}
	}
	err = s.session.Session.Query("INSERT INTO settings (name, value) VALUES (?, ?)", markCompleteName, "1").
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("scyllastore: record seq mark: %w", err)
	}
	return nil
}

// knownBuckets is how many (conversation, bucket) pairs a Store remembers
// having registered, so Append writes the buckets table once per bucket
// rather than once per batch. Forgetting one costs one idempotent write.
const knownBuckets = 1 << 17

// bucketCache is a bounded set of registered buckets: two generations,
// the older dropped when the newer fills up, so recently used buckets stay.
type bucketCache struct {
	mu       sync.Mutex
	cur, old map[bucketKey]struct{}
	max      int // per generation
}

func newBucketCache(size int) *bucketCache {
	return &bucketCache{cur: map[bucketKey]struct{}{}, max: max(size/2, 1)}
}

func (c *bucketCache) has(k bucketKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return true
	}
	if _, ok := c.old[k]; ok {
		c.addLocked(k)
		return true
	}
	return false
}

func (c *bucketCache) add(k bucketKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k)
}

func (c *bucketCache) addLocked(k bucketKey) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[bucketKey]struct{}, c.max)
	}
	c.cur[k] = struct{}{}
}
