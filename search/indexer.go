package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/lease"
	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// IndexerConfig tunes the Indexer.
type IndexerConfig struct {
	// Batch is the most messages fetched and written at once; at most
	// schema.SearchBatch.
	Batch int
	// MaxBackoff caps the wait between attempts while the index fails.
	MaxBackoff time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// SingleIndexer, when set, makes this the cluster's only indexer: it
	// holds the indexer lease (schema.LeaseSearchIndexer) under this name
	// while it runs, and Claim and Run fail with ErrIndexerRunning while
	// another name holds it. Set it for an embedded index (Bleve), which
	// only this process sees (two would each get part of the messages),
	// to a name that stays the same across restarts of the same index
	// (IndexName). Leave it empty for a shared index (OpenSearch), which
	// takes any number of indexers.
	SingleIndexer string
	// LeaseTTL is how long the lease outlives an indexer that died
	// without releasing it; default 15s.
	LeaseTTL time.Duration
	// ExpireEvery is how often the indexer removes from the index the
	// disappearing messages whose expires_at has come (Index.Expire);
	// default 1 minute. Search leaves them out from expires_at on in any
	// case: this only frees the space.
	ExpireEvery time.Duration
}

// Indexer keeps an Index from the CHAT stream through the durable
// consumer schema.ConsumerSearch: it fetches a batch, writes what it
// changes to the index as one commit, and only then acks it, so a
// restarted indexer goes on where the index ends and re-indexes nothing
// but the batch it was writing. Plain messages are indexed, except
// Plain messages are indexed, disappearing ones (expires_at set: a ttl
// or a retention) with their expires_at, from which on Search leaves them
// out and Expire, every ExpireEvery, removes them; edits and deletes
// change their target by history.Apply, the rule the history store
// follows; other kinds change nothing. While the index fails it retries
// the same batch with backoff.
type Indexer struct {
	cfg     IndexerConfig
	js      jetstream.JetStream
	idx     Index
	indexed atomic.Uint64
	lease   *lease.Lease // held between Claim and the end of Run
	wmu     sync.Mutex   // the message streams' loops write the index in turn
}

// NewIndexer returns an indexer; Run starts it.
func NewIndexer(cfg IndexerConfig, js jetstream.JetStream, idx Index) *Indexer {
	if cfg.Batch <= 0 || cfg.Batch > schema.SearchBatch {
		cfg.Batch = schema.SearchBatch
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = time.Minute
	}
	return &Indexer{cfg: cfg, js: js, idx: idx}
}

// Indexed is how many stream messages this Indexer has committed to the
// index since it started (every kind, also those that changed nothing).
func (ix *Indexer) Indexed() uint64 { return ix.indexed.Load() }

// IndexName names an embedded index for IndexerConfig.SingleIndexer: the
// host and the index's absolute directory.
func IndexName(dir string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ":" + dir
}

// Claim takes the single-indexer lease, if the config asks for one, so a
// second indexer fails at start with ErrIndexerRunning rather than in the
// background; Run takes it itself otherwise. Call it before Run, not
// concurrently.
func (ix *Indexer) Claim(ctx context.Context) error {
	if ix.cfg.SingleIndexer == "" || ix.lease != nil {
		return nil
	}
	l, err := lease.Claim(ctx, ix.js, lease.Config{Key: schema.LeaseSearchIndexer, Owner: ix.cfg.SingleIndexer,
		TTL: ix.cfg.LeaseTTL, What: "search indexer", Logger: ix.cfg.Logger})
	if errors.Is(err, lease.ErrHeld) {
		return fmt.Errorf("%w: one embedded search index per cluster (use --opensearch-url for several indexers): %w", ErrIndexerRunning, err)
	}
	if err != nil {
		return err
	}
	ix.lease = l
	return nil
}

// Run indexes until ctx ends, and then returns nil. With SingleIndexer it
// returns ErrIndexerRunning when another indexer holds the lease, and an
// error wrapping lease.ErrLost when another one took it meanwhile; a
// lease that lapsed (the LEASES bucket had no leader for its TTL) pauses
// it until it has the lease back.
func (ix *Indexer) Run(ctx context.Context) error {
	if err := ix.Claim(ctx); err != nil {
		return err
	}
	if ix.lease == nil {
		return ix.run(ctx)
	}
	defer func() { ix.lease = nil }()
	return lease.Run(ctx, ix.lease, ix.run)
}

// run is the consuming loop: a batch is acked once the index committed
// it. With partition streams (schema.Layout) it runs one loop per stream,
// each on that stream's consumer; their writes to the index take turns.
func (ix *Indexer) run(ctx context.Context) error {
	l, err := schema.ReadLayout(ctx, ix.js)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { ix.expire(ctx) })
	defer func() {
		stop()
		wg.Wait()
	}()
	return pinned.RunBatchesStreams(ctx, ix.js, pinned.BatchConfig{Consumer: schema.ConsumerSearch,
		Group: schema.PriorityGroupSearch, Batch: ix.cfg.Batch, Logger: ix.cfg.Logger}, l.ChatStreams(),
		func(string) pinned.BatchHandler { return ix.handle })
}

// expire removes what expired from the index every ExpireEvery, taking
// its turn with the streams' writes, until ctx ends.
func (ix *Indexer) expire(ctx context.Context) {
	t := time.NewTicker(ix.cfg.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ix.wmu.Lock()
		n, err := ix.idx.Expire(ctx, time.Now())
		ix.wmu.Unlock()
		switch {
		case err != nil && ctx.Err() == nil:
			ix.cfg.Logger.Warn("search index: removing expired messages failed; retrying later", "removed", n, "err", err)
		case n > 0:
			ix.cfg.Logger.Debug("search index: removed expired messages", "removed", n)
		}
	}
}

// handle indexes one batch of a message stream.
func (ix *Indexer) handle(ctx context.Context, got []jetstream.Msg) error {
	msgs := make([]*protocol.Message, 0, len(got))
	for _, m := range got {
		// The history writer dead-letters what does not decode.
		if pm, err := history.DecodeStored(m); err == nil {
			msgs = append(msgs, pm)
		}
	}
	ix.wmu.Lock()
	err := ix.write(ctx, msgs, got)
	ix.wmu.Unlock()
	if err != nil {
		return err // ctx ended before the index had the batch
	}
	ix.indexed.Add(uint64(len(got)))
	return nil
}

// write applies msgs to the index, retrying until it succeeds or ctx ends.
func (ix *Indexer) write(ctx context.Context, msgs []*protocol.Message, got []jetstream.Msg) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		put, del, err := changes(ctx, ix.idx, msgs, time.Now())
		if err == nil {
			err = ix.idx.Write(ctx, put, del)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ix.cfg.Logger.Warn("search index write failed; retrying", "attempt", attempt, "messages", len(msgs), "err", err)
		for _, m := range got {
			_ = m.InProgress()
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, ix.cfg.MaxBackoff)
	}
}

// changes turns a batch of stream messages, in stream order, into the
// docs to write and the keys to delete. An edit or delete whose target is
// in the same batch applies to the batch's version of it. A message that
// expired by now is not written (a copy of it is deleted).
func changes(ctx context.Context, idx Index, msgs []*protocol.Message, now time.Time) ([]Doc, []Key, error) {
	docs := map[Key]*Doc{} // nil: deleted
	var order []Key
	set := func(k Key, d *Doc) {
		if _, ok := docs[k]; !ok {
			order = append(order, k)
		}
		docs[k] = d
	}
	for _, m := range msgs {
		switch m.Kind {
		case protocol.KindMessage:
			if m.Expired(now) {
				set(Key{m.Conv, m.Seq}, nil)
				continue
			}
			set(Key{m.Conv, m.Seq}, &Doc{Conv: m.Conv, Seq: m.Seq, Sender: m.Sender, TS: m.TS, Text: protocol.BodyText(m.Body), ExpiresAt: m.ExpiresAt})
		case protocol.KindEdit, protocol.KindDelete:
			k := Key{m.Conv, m.Ref}
			d, ok := docs[k]
			if !ok {
				var err error
				if d, err = idx.Get(ctx, k); errors.Is(err, ErrNotFound) {
					continue
				} else if err != nil {
					return nil, nil, err
				}
			}
			if d == nil {
				continue // deleted in this batch
			}
			t := &protocol.Message{Conv: d.Conv, Seq: d.Seq, Sender: d.Sender, TS: d.TS, EditSeq: d.EditSeq}
			if !history.Apply(t, m) {
				continue
			}
			if t.Deleted {
				set(k, nil)
				continue
			}
			nd := *d
			nd.Text, nd.EditSeq = protocol.BodyText(t.Body), t.EditSeq
			set(k, &nd)
		}
	}
	var put []Doc
	var del []Key
	for _, k := range order {
		if d := docs[k]; d != nil {
			put = append(put, *d)
		} else {
			del = append(del, k)
		}
	}
	return put, del, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
