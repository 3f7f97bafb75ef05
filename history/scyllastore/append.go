package scyllastore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// tombstoneBody is the Body of a deleted message.
const tombstoneBody = `{}`

// Limits of one unlogged batch. All its statements touch one partition, so
// Cassandra and Scylla apply it as one mutation (atomic and isolated) and
// do not hold it to their multi-partition batch size thresholds; these
// keep a mutation far below the commit log's limit (half a segment) and a
// request short.
const (
	maxBatchStatements = 100
	maxBatchBytes      = 256 << 10
)

type bucketKey struct {
	conv   string
	bucket int64
}

type rowKey struct {
	conv string
	seq  uint64
}

// Append stores msgs and applies their edits and deletions, as
// history.Store describes: the batch behaves like its rows appended one by
// one in seq order. A batch of new rows costs no read at all:
//
//  1. The seq mark (mark.go) says which rows may be stored already: those
//     at or below what this Store has written or outside its reservation.
//     Usually none; the rest are new. Only those are looked up, one read
//     per partition, and a row stored with other content fails the batch
//     with history.ErrConflict before anything is written.
//  2. The edits and deletes are applied in seq order in memory: to their
//     target in the batch, or to a target read from the store (one read
//     per target outside the batch, as rare as edits of older messages).
//  3. Buckets this Store has not registered yet are registered, before
//     any row, so no row is ever where a page would not look.
//  4. Each partition's new rows and target updates go in unlogged
//     single-partition batches, each statement at its own write timestamp
//     (see the package comment). A conversation's partitions and batches
//     are written one after another in seq order, with an update ahead of
//     the event that caused it, so a conversation's rows become visible
//     in seq order and an event is never stored without its effect;
//     WriteConcurrency conversations are written at once.
//
// Every step is safe to repeat, so a batch can be appended again after any
// failure. EditSeq and Deleted of the input are ignored.
func (s *Store) Append(ctx context.Context, msgs []*protocol.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if s.session.Session.Closed() {
		return ErrClosed
	}
	// Seq order; the stable sort keeps the first of two copies of a row.
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b *protocol.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	rows := make([]*protocol.Message, 0, len(sorted)) // distinct rows, normalised copies
	first := make(map[rowKey]*protocol.Message, len(sorted))
	for _, m := range sorted {
		if m.Conv == "" || m.Seq == 0 || m.Seq > maxSeq || m.Ref > maxSeq || m.Thread > maxSeq || m.ReplyTo > maxSeq {
			return fmt.Errorf("%w: conv %q seq %d ref %d", ErrInvalid, m.Conv, m.Seq, m.Ref)
		}
		k := rowKey{m.Conv, m.Seq}
		if f := first[k]; f != nil {
			// As if appended one by one: the second copy meets the first.
			if !history.Same(f, m) {
				return conflict(f, m)
			}
			continue
		}
		c := *m
		c.EditSeq, c.Deleted, c.Prev, c.DeletedBy, c.ThreadCount, c.ThreadLastSeq = 0, false, 0, "", 0, 0
		first[k] = &c
		rows = append(rows, &c)
	}

	upTo, err := s.claim(ctx, rows[len(rows)-1].Seq)
	if err != nil {
		return err
	}
	var maybe []*protocol.Message
	for _, m := range rows {
		if m.Seq <= upTo {
			maybe = append(maybe, m)
		}
	}
	stored, err := s.storedRows(ctx, maybe)
	if err != nil {
		return err
	}

	// state is what Apply works on: each row of the batch and each target
	// read, as stored so far with the batch's earlier events applied.
	state := make(map[rowKey]*protocol.Message, len(rows))
	var fresh []*protocol.Message
	for _, m := range rows {
		k := rowKey{m.Conv, m.Seq}
		if old := stored[k]; old != nil {
			state[k] = old
			continue
		}
		fresh = append(fresh, m)
		t := *m
		state[k] = &t
	}
	if len(fresh) == 0 {
		return nil // all stored already: a re-append changes nothing
	}
	if err := s.readTargets(ctx, fresh, state); err != nil {
		return err
	}

	w := newPlan()
	var threads []*protocol.Message // thread replies, indexed before any row
	for _, m := range fresh {
		w.add(bucketKey{m.Conv, s.bucket(m.Seq)}, entry{
			pos: m.Seq, sub: 1, size: len(m.Body) + len(m.Sender) + len(m.ClientID) + len(m.TS) + 64,
			stmt: s.q.insertRowTS.cql,
			args: []any{m.Conv, s.bucket(m.Seq), int64(m.Seq), m.Sender, m.ClientID, m.TS, m.Kind, int64(m.Ref), []byte(m.Body),
				int64(m.ReplyTo), encodeQuote(m.Quote), int64(m.Thread), m.Mentions, m.ExpiresAt, s.ttlOf(m), int64(m.Seq)},
		})
		if isThreadReply(m) {
			threads = append(threads, m)
			t := state[rowKey{m.Conv, m.Thread}]
			if t == nil || !history.ApplyThread(t, m) {
				continue
			}
			// Ahead of the reply's own row, in the root's partition, at the
			// reply's seq: the newest reply's counts win.
			st := s.q.setThreadTS.cql
			if m.ExpiresAt != "" {
				st = s.q.setThreadExpTS.cql // the root recounts on reads (expiry.go)
			}
			w.add(bucketKey{t.Conv, s.bucket(t.Seq)}, entry{pos: m.Seq, sub: 0, size: 64, stmt: st,
				args: []any{s.ttlOf(t), int64(m.Seq), int64(t.ThreadCount), int64(t.ThreadLastSeq), t.Conv, s.bucket(t.Seq), int64(t.Seq)}})
			continue
		}
		if !isEvent(m) {
			continue
		}
		t := state[rowKey{m.Conv, m.Ref}]
		if t == nil || !history.Apply(t, m) {
			continue
		}
		// Ahead of the event's own row (sub 0), in the target's partition.
		e := entry{pos: m.Seq, sub: 0, size: 64}
		if t.Deleted {
			// Above every cell of the row: the original (at the target's
			// seq) and the latest edit (at its seq), so both bodies are gone.
			e.stmt = s.q.setDelTS.cql
			e.args = []any{s.ttlOf(t), int64(max(m.Seq, t.EditSeq)), nullable(t.DeletedBy), t.Conv, s.bucket(t.Seq), int64(t.Seq)}
		} else {
			// At the edit's seq: should an older edit be applied later
			// (another writer), the newer cells still win.
			e.stmt, e.size = s.q.setEditTS.cql, 64+len(t.Body)
			e.args = []any{s.ttlOf(t), int64(t.EditSeq), []byte(t.Body), int64(t.EditSeq), t.Conv, s.bucket(t.Seq), int64(t.Seq)}
		}
		w.add(bucketKey{t.Conv, s.bucket(t.Seq)}, e)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	var registered []bucketKey
	for _, k := range w.keys {
		if !s.known.has(k) {
			registered = append(registered, k)
			g.Go(func() error { return s.insertBucket(gctx, k) })
		}
	}
	for _, m := range threads {
		// The thread index may name a row not written yet, never the
		// reverse: a thread page skips a reply whose row it cannot read.
		g.Go(func() error { return s.insertThread(gctx, m) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, k := range registered {
		s.known.add(k)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for _, conv := range w.convs {
		g.Go(func() error { return s.writeConv(gctx, w, conv) })
	}
	return g.Wait()
}

// isThreadReply reports whether m is a reply under an earlier root.
func isThreadReply(m *protocol.Message) bool {
	return m.Kind == protocol.KindMessage && m.Thread != 0 && m.Thread < m.Seq
}

// targetOf is the seq of the row m changes: an event's target or a thread
// reply's root; 0 for none.
func targetOf(m *protocol.Message) uint64 {
	switch {
	case isEvent(m):
		return m.Ref
	case isThreadReply(m):
		return m.Thread
	}
	return 0
}

func isEvent(m *protocol.Message) bool {
	return (m.Kind == protocol.KindEdit || m.Kind == protocol.KindDelete) && m.Ref != 0 && m.Ref < m.Seq
}

// conflict is the error of m offered where old is stored.
func conflict(old, m *protocol.Message) error {
	return fmt.Errorf("%w: (%s, %d) from %s, offered again from %s", history.ErrConflict, m.Conv, m.Seq, old.Sender, m.Sender)
}

// storedRows returns those of ms (seq order) that are stored, as stored
// (edits applied), or history.ErrConflict if one is stored with other
// content: one read per partition, seq IN the batch's seqs, partitions
// read in parallel.
func (s *Store) storedRows(ctx context.Context, ms []*protocol.Message) (map[rowKey]*protocol.Message, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	groups := map[bucketKey][]*protocol.Message{}
	var keys []bucketKey
	for _, m := range ms {
		k := bucketKey{m.Conv, s.bucket(m.Seq)}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], m)
	}
	found := make([][]*protocol.Message, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for i, k := range keys {
		g.Go(func() error {
			var err error
			found[i], err = s.storedIn(gctx, k, groups[k])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[rowKey]*protocol.Message{}
	for _, ms := range found {
		for _, m := range ms {
			out[rowKey{m.Conv, m.Seq}] = m
		}
	}
	return out, nil
}

// storedIn returns the rows of ms (all in bucket k) that are stored, or
// history.ErrConflict.
func (s *Store) storedIn(ctx context.Context, k bucketKey, ms []*protocol.Message) ([]*protocol.Message, error) {
	seqs := make([]int64, len(ms))
	for i, m := range ms {
		seqs[i] = int64(m.Seq)
	}
	q, err := s.query(ctx, s.q.stored)
	if err != nil {
		return nil, err
	}
	var rows []row
	if err := q.Bind(k.conv, k.bucket, seqs).SelectRelease(&rows); err != nil {
		return nil, fmt.Errorf("scyllastore: read stored rows of (%s, %d): %w", k.conv, k.bucket, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	offered := make(map[uint64]*protocol.Message, len(ms))
	for _, m := range ms {
		offered[m.Seq] = m
	}
	out := make([]*protocol.Message, 0, len(rows))
	for i := range rows {
		old := rows[i].message(k.conv)
		if m := offered[old.Seq]; m != nil {
			if !history.Same(old, m) {
				return nil, conflict(old, m)
			}
			out = append(out, old)
		}
	}
	return out, nil
}

// target is what readTargets reads of an edit's or delete's target or a
// thread reply's root.
type target struct {
	Sender        string `db:"sender"`
	Kind          string `db:"kind"`
	EditSeq       int64  `db:"edit_seq"`
	Deleted       bool   `db:"deleted"`
	Thread        int64  `db:"thread"`
	ThreadCount   int64  `db:"thread_count"`
	ThreadLastSeq int64  `db:"thread_last_seq"`
	ExpiresAt     string `db:"expires_at"`
}

// readTargets adds to state the stored targets of fresh's edits and
// deletes and the roots of its thread replies that are not rows of the
// batch, in parallel.
func (s *Store) readTargets(ctx context.Context, fresh []*protocol.Message, state map[rowKey]*protocol.Message) error {
	var want []rowKey
	seen := map[rowKey]bool{}
	for _, m := range fresh {
		k := rowKey{m.Conv, targetOf(m)}
		if k.seq != 0 && state[k] == nil && !seen[k] {
			seen[k] = true
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		return nil
	}
	got := make([]*protocol.Message, len(want))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for i, k := range want {
		g.Go(func() error {
			q, err := s.query(gctx, s.q.target)
			if err != nil {
				return err
			}
			var r target
			err = q.Bind(k.conv, s.bucket(k.seq), int64(k.seq)).GetRelease(&r)
			if errors.Is(err, gocql.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("scyllastore: read target (%s, %d): %w", k.conv, k.seq, err)
			}
			got[i] = &protocol.Message{Conv: k.conv, Seq: k.seq, Sender: r.Sender, Kind: r.Kind, EditSeq: uint64(r.EditSeq), Deleted: r.Deleted,
				Thread: uint64(r.Thread), ThreadCount: uint64(r.ThreadCount), ThreadLastSeq: uint64(r.ThreadLastSeq),
				ExpiresAt: r.ExpiresAt}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, k := range want {
		if got[i] != nil {
			state[k] = got[i]
		}
	}
	return nil
}

func (s *Store) insertThread(ctx context.Context, m *protocol.Message) error {
	q, err := s.query(ctx, s.q.insertThread)
	if err != nil {
		return err
	}
	if err := q.Bind(m.Conv, int64(m.Thread), int64(m.Seq), s.ttlOf(m)).ExecRelease(); err != nil {
		return fmt.Errorf("scyllastore: index thread reply (%s, %d): %w", m.Conv, m.Seq, err)
	}
	return nil
}

func (s *Store) insertBucket(ctx context.Context, k bucketKey) error {
	q, err := s.query(ctx, s.q.insertBucket)
	if err != nil {
		return err
	}
	if err := q.Bind(k.conv, k.bucket).ExecRelease(); err != nil {
		return fmt.Errorf("scyllastore: insert bucket (%s, %d): %w", k.conv, k.bucket, err)
	}
	return nil
}

// entry is one write statement of a plan.
type entry struct {
	pos, sub uint64 // order in its partition: (seq of the row or event, 0 update / 1 row)
	size     int    // rough bytes, for the batch size limit
	stmt     string
	args     []any
}

// plan is an Append's writes, by conversation and partition.
type plan struct {
	parts map[bucketKey][]entry
	keys  []bucketKey            // partitions in first-use order
	byCon map[string][]bucketKey // partitions of each conversation
	convs []string
}

func newPlan() *plan {
	return &plan{parts: map[bucketKey][]entry{}, byCon: map[string][]bucketKey{}}
}

func (p *plan) add(k bucketKey, e entry) {
	if _, ok := p.parts[k]; !ok {
		p.keys = append(p.keys, k)
		if p.byCon[k.conv] == nil {
			p.convs = append(p.convs, k.conv)
		}
		p.byCon[k.conv] = append(p.byCon[k.conv], k)
	}
	p.parts[k] = append(p.parts[k], e)
}

// writeConv writes conv's partitions of p in bucket order, each in batches
// in seq order, one after another.
func (s *Store) writeConv(ctx context.Context, p *plan, conv string) error {
	keys := p.byCon[conv]
	slices.SortFunc(keys, func(a, b bucketKey) int { return cmp.Compare(a.bucket, b.bucket) })
	for _, k := range keys {
		es := p.parts[k]
		slices.SortStableFunc(es, func(a, b entry) int {
			return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.sub, b.sub))
		})
		for len(es) > 0 {
			n, size := 0, 0
			for n < len(es) && n < maxBatchStatements && (n == 0 || size+es[n].size <= maxBatchBytes) {
				size += es[n].size
				n++
			}
			if err := s.exec(ctx, es[:n]); err != nil {
				return fmt.Errorf("scyllastore: write %d rows of (%s, %d): %w", n, k.conv, k.bucket, err)
			}
			es = es[n:]
		}
	}
	return nil
}

// exec runs es, which all touch one partition: alone, or as one unlogged
// batch.
func (s *Store) exec(ctx context.Context, es []entry) error {
	if s.session.Session.Closed() {
		return ErrClosed
	}
	if len(es) == 1 {
		return s.session.Session.Query(es[0].stmt, es[0].args...).WithContext(ctx).Idempotent(true).Exec()
	}
	b := s.session.Session.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = make([]gocql.BatchEntry, len(es))
	for i, e := range es {
		b.Entries[i] = gocql.BatchEntry{Stmt: e.stmt, Args: e.args, Idempotent: true}
	}
	return s.session.Session.ExecuteBatch(b)
}
