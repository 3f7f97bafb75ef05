package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
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
}

// Indexer keeps an Index from the CHAT stream through the durable
// consumer schema.ConsumerSearch: it fetches a batch, writes what it
// changes to the index as one commit, and only then acks it, so a
// restarted indexer goes on where the index ends and re-indexes nothing
// but the batch it was writing. Plain messages are indexed, except
// disappearing ones (expires_at set), which no index keeps; edits and
// deletes change their target by history.Apply, the rule the history
// store follows; other kinds change nothing. While the index fails it
// retries the same batch with backoff.
type Indexer struct {
	cfg     IndexerConfig
	js      jetstream.JetStream
	idx     Index
	indexed atomic.Uint64
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
	return &Indexer{cfg: cfg, js: js, idx: idx}
}

// Indexed is how many stream messages this Indexer has committed to the
// index since it started (every kind, also those that changed nothing).
func (ix *Indexer) Indexed() uint64 { return ix.indexed.Load() }

// Run indexes until ctx ends, and then returns nil.
func (ix *Indexer) Run(ctx context.Context) error {
	cons, err := ix.js.Consumer(ctx, schema.StreamChat, schema.ConsumerSearch)
	if err != nil {
		return fmt.Errorf("search consumer: %w", err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(ix.cfg.Batch, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupSearch))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ix.cfg.Logger.Warn("search fetch failed", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		var msgs []*protocol.Message
		var got []jetstream.Msg
		for m := range batch.Messages() {
			got = append(got, m)
			if pm := toMessage(m); pm != nil {
				msgs = append(msgs, pm)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			ix.cfg.Logger.Debug("search fetch ended early", "err", err)
		}
		if len(got) == 0 {
			continue
		}
		if err := ix.write(ctx, msgs, got); err != nil {
			return nil // ctx ended before the index had the batch
		}
		ix.indexed.Add(uint64(len(got)))
		for _, m := range got[:len(got)-1] {
			_ = m.Ack()
		}
		if err := got[len(got)-1].DoubleAck(ctx); err != nil && ctx.Err() == nil {
			ix.cfg.Logger.Warn("search ack failed; the batch will be indexed again", "err", err)
		}
	}
	return nil
}

// write applies msgs to the index, retrying until it succeeds or ctx ends.
func (ix *Indexer) write(ctx context.Context, msgs []*protocol.Message, got []jetstream.Msg) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		put, del, err := changes(ctx, ix.idx, msgs)
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
// in the same batch applies to the batch's version of it.
func changes(ctx context.Context, idx Index, msgs []*protocol.Message) ([]Doc, []Key, error) {
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
			if m.ExpiresAt != "" {
				// A disappearing message is never indexed: no copy of
				// it outlives its expires_at (docs/protocol.md).
				continue
			}
			set(Key{m.Conv, m.Seq}, &Doc{Conv: m.Conv, Seq: m.Seq, Sender: m.Sender, TS: m.TS, Text: protocol.BodyText(m.Body)})
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

// toMessage decodes a stored message; nil for one that is not a valid
// envelope (the history writer dead-letters those).
func toMessage(m jetstream.Msg) *protocol.Message {
	meta, err := m.Metadata()
	if err != nil {
		return nil
	}
	conv := schema.ConvFromSubject(m.Subject())
	if !protocol.ValidID(conv) {
		return nil
	}
	env, err := protocol.DecodeEnvelope(m.Data())
	if err != nil {
		return nil
	}
	return env.Message(conv, meta.Sequence.Stream, protocol.FormatTime(meta.Timestamp))
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
