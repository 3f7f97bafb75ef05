package scyllastore

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"
)

// The seq mark lets Append tell a new row from one that may be stored
// without reading rows: settings row markName holds a seq at or above
// every seq stored in the keyspace. It is only ever raised, by a
// lightweight transaction (compare and set), before any row above it is
// written, so it stays above every row.
//
// A Store raises it ahead of what it writes, by reserveAhead seqs at a
// time: the transaction that moved the mark from M0 to M1 gives this Store
// the seqs in (M0, M1], which no other writer takes as new (they see the
// mark at M1 and look their rows up). Each Append reads the mark once (one
// point read, whatever the batch's size): while it is still where this
// Store set it, no other writer has written since, and a batch's rows
// above the highest seq this Store has written and within its reservation
// are new: nothing else is read. If another writer moved it, everything
// below it is looked up from then on. Only rows at or below what this
// Store wrote or another writer reserved (a redelivered or re-appended
// batch, a rebuild, a failover, a stream restored from an old backup:
// exactly where ErrConflict can arise) are looked up. The stream hands out
// seqs in ascending order, so a writer keeping up pays one point read per
// batch and one transaction per reserveAhead seqs. A writer that stops
// leaves the rest of its reservation to be looked up by the next (at most
// reserveAhead seqs).
//
// A keyspace written before the mark existed may hold rows above it, so
// the mark is trusted only once settings row markCompleteName exists:
// Migrate writes it, after raising the mark to the highest seq stored (a
// scan of every conversation's last seq, once). Until then Append looks
// every row up, as it always did, and raises the mark all the same.
//
// Never write these rows by hand: the mark is a compare-and-set cell.
const (
	markName         = "high_seq"
	markCompleteName = "high_seq_complete"
	reserveAhead     = 20_000
)

// reservation is a Store's share of the seq mark.
type reservation struct {
	mu       sync.Mutex
	complete bool   // the keyspace's mark is complete (never unset)
	own      uint64 // rows above own, up to hi, are new
	hi       uint64 // the mark as this Store last set it; 0 none
}

// claim makes sure the mark covers high and returns the seq at or below
// which a batch's rows may be stored already and must be looked up: all of
// them (maxSeq) while the mark is not complete. Rows of the batch above it
// are new. It counts the batch as written up to high, so a batch offered
// again (after a failure, or with other content) is looked up.
func (s *Store) claim(ctx context.Context, high uint64) (uint64, error) {
	r := &s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok, complete, err := s.readMark(ctx, !r.complete)
	if err != nil {
		return 0, err
	}
	if r.hi != 0 && (!ok || cur < r.hi) {
		// The mark went back, which only a restore does: the keyspace
		// came back from a backup. The buckets registered since may be
		// gone with it: register them again.
		s.known.reset()
	}
	if complete && !r.complete {
		// Rows stored before the mark was complete may sit in what this
		// Store reserved meanwhile: everything below the mark is suspect.
		r.complete, r.own, r.hi = true, cur, 0
	}
	if cur != r.hi {
		// The first claim, or another writer (or Migrate) moved the mark:
		// rows up to it may be stored; reserve afresh above it.
		r.own, r.hi = max(r.own, cur), 0
	}
	if high > r.hi {
		if err := s.reserve(ctx, high, cur, ok); err != nil {
			return 0, err
		}
	}
	upTo := r.own
	r.own = max(r.own, high)
	if !r.complete {
		return maxSeq, nil
	}
	return upTo, nil
}

// reserve raises the mark from cur (none if !ok) to at least high plus
// reserveAhead, r.mu held.
func (s *Store) reserve(ctx context.Context, high, cur uint64, ok bool) error {
	r := &s.res
	for range 100 {
		next := min(max(cur, high)+reserveAhead, maxSeq)
		applied, now, nowOK, err := s.casMark(ctx, cur, ok, next)
		if err != nil {
			return err
		}
		if applied {
			if cur != r.hi {
				// Another writer moved it since: what is below may be stored.
				r.own = max(r.own, cur)
			}
			r.hi = next
			return nil
		}
		cur, ok = now, nowOK
	}
	return fmt.Errorf("scyllastore: seq mark: too many writers racing to raise it")
}

// readMark reads the mark (ok false if there is none) and, if flag,
// whether it is complete.
func (s *Store) readMark(ctx context.Context, flag bool) (high uint64, ok, complete bool, err error) {
	if s.session.Session.Closed() {
		return 0, false, false, ErrClosed
	}
	q := s.session.Session.Query("SELECT name, value FROM settings WHERE name = ?", markName)
	if flag {
		q = s.session.Session.Query("SELECT name, value FROM settings WHERE name IN (?, ?)", markName, markCompleteName)
	}
	iter := q.WithContext(ctx).Idempotent(true).Iter()
	var name, value string
	for iter.Scan(&name, &value) {
		switch name {
		case markName:
			if high, err = parseMark(value); err != nil {
				_ = iter.Close()
				return 0, false, false, err
			}
			ok = true
		case markCompleteName:
			complete = true
		}
	}
	if err := iter.Close(); err != nil {
		return 0, false, false, fmt.Errorf("scyllastore: read seq mark: %w", err)
	}
	return high, ok, complete, nil
}

func parseMark(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("scyllastore: setting %s = %q: %w", markName, v, err)
	}
	return n, nil
}

// casMark sets the mark to next if it still is cur (none, if !ok); if it
// is not, it returns what it is.
func (s *Store) casMark(ctx context.Context, cur uint64, ok bool, next uint64) (applied bool, now uint64, nowOK bool, err error) {
	if s.session.Session.Closed() {
		return false, 0, false, ErrClosed
	}
	var q *gocql.Query
	if ok {
		q = s.session.Session.Query("UPDATE settings SET value = ? WHERE name = ? IF value = ?",
			strconv.FormatUint(next, 10), markName, strconv.FormatUint(cur, 10))
	} else {
		q = s.session.Session.Query("INSERT INTO settings (name, value) VALUES (?, ?) IF NOT EXISTS",
			markName, strconv.FormatUint(next, 10))
	}
	existing := map[string]any{}
	applied, err = q.WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(existing)
	if err != nil {
		return false, 0, false, fmt.Errorf("scyllastore: raise seq mark to %d: %w", next, err)
	}
	if applied {
		return true, next, true, nil
	}
	v, isString := existing["value"].(string)
	if !isString {
		return false, 0, false, nil // gone? try again as none
	}
	now, err = parseMark(v)
	return false, now, err == nil, err
}

// completeMark makes the mark trusted, if it is not yet: it raises it to
// the highest seq stored, found by reading every conversation's Last, and
// then records that it is complete. Rows Append stores meanwhile raise it
// themselves. Migrate calls it.
func (s *Store) completeMark(ctx context.Context) error {
	_, _, complete, err := s.readMark(ctx, true)
	if err != nil || complete {
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
	cur, ok, _, err := s.readMark(ctx, false)
	for err == nil && high > cur {
		var applied bool
		applied, cur, ok, err = s.casMark(ctx, cur, ok, high)
		if applied {
			break
		}
	}
	if err != nil {
		return err
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

// reset forgets every bucket.
func (c *bucketCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur, c.old = make(map[bucketKey]struct{}, c.max), nil
}

func (c *bucketCache) addLocked(k bucketKey) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[bucketKey]struct{}, c.max)
	}
	c.cur[k] = struct{}{}
}
