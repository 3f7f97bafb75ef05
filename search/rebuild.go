package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// RowPager pages a conversation's rows as the history store keeps them
// (history.Store): ascending by seq, plain messages with their edits and
// deletion applied.
type RowPager interface {
	After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error)
}

// RebuildConfig is what Rebuild reads and writes.
type RebuildConfig struct {
	// JS is a JetStream context of the operator: Rebuild deletes and
	// creates the search consumer.
	JS jetstream.JetStream
	// Index is the index to fill: an empty one normally. (What it holds
	// of the store's messages is replaced; messages the store no longer
	// holds stay.)
	Index Index
	// Store pages the history store.
	Store RowPager
	// Convs are the conversations to read from Store (ConversationIDs).
	Convs []string
	// Batch is the most rows read and written at once; schema.SearchBatch
	// by default.
	Batch int
	// Progress, when set, is a file in which Rebuild keeps how far it
	// got, so that a rebuild that stopped (a crash, ^C) goes on from
	// there when run again with the same file rather than from the
	// start; Rebuild removes it when it is done.
	Progress string
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// RebuildStats reports what Rebuild did.
type RebuildStats struct {
	// Convs is how many conversations it read; Rows how many rows.
	Convs, Rows int
	// Indexed is how many messages it wrote to the index; Removed how
	// many keys it deleted from it (deleted or erased messages, and
	// disappearing ones, which no index keeps).
	Indexed, Removed int
	// Passes is how many times it read the conversations: 1, and one
	// more each time the stream was trimmed meanwhile past where the
	// consumer started.
	Passes int
	// Streams is where the search consumer starts on each message
	// stream.
	Streams []RebuildStream
	// Resumed is set when it went on from a progress file.
	Resumed bool
}

// RebuildStream is the search consumer's start on one message stream:
// the index has every message the history store held up to Floor (and
// more), and the consumer delivers everything after Floor.
type RebuildStream struct {
	Stream string
	Floor  uint64
}

// rebuildProgress is the progress file: the consumers' floors when the
// rebuild began, and the last conversation whose rows were all written.
type rebuildProgress struct {
	Floors []uint64 `json:"floors"`
	Done   string   `json:"done,omitempty"`
}

// Rebuild fills an index from the history store: for an index that was
// lost or is new, so that messages the CHAT stream no longer holds (older
// than its hot window) are found again. It must run while no indexer
// runs (the caller holds the indexer lease for an embedded index).
//
//  1. On each message stream it deletes the search consumer and creates
//     it again (schema.SearchConsumer), so it starts at the stream's
//     first message; the consumer's ack floor is then below it.
//  2. It reads every conversation's rows from the store, in batches, and
//     writes each plain message as the store has it (its latest edit
//     applied, its expires_at if it has one) to the index; a deleted or
//     erased message (a tombstone) or one that expired is removed from the
//     index instead.
//  3. The retention trimmer purges only what the store holds, but it
//     may purge while Rebuild reads (a consumer nobody read holds nothing
//     back): if a consumer's ack floor moved, Rebuild reads, on each
//     conversation, the rows above the floor it started from again (and
//     an edit's or deletion's target), until the floors hold still.
//
// Nothing is missed: every message up to a consumer's floor was stored
// before the stream lost it, so before the pass that read after that
// floor; the consumer delivers everything after it. What both hold is
// applied twice, which changes nothing: a message is written again with
// its text as sent and its edits and deletion, which follow it in the
// stream, apply again (an edit applies only over an older EditSeq, a
// deletion of a message not indexed is a no-op).
//
// It is idempotent, and resumable with Progress.
func Rebuild(ctx context.Context, cfg RebuildConfig) (RebuildStats, error) {
	var st RebuildStats
	if cfg.Batch <= 0 || cfg.Batch > schema.SearchBatch {
		cfg.Batch = schema.SearchBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l, err := schema.ReadLayout(ctx, cfg.JS)
	if err != nil {
		return st, fmt.Errorf("search rebuild: %w", err)
	}
	streams := l.ChatStreams()
	var prog rebuildProgress
	if cfg.Progress != "" {
		if b, err := os.ReadFile(cfg.Progress); err == nil {
			if err := json.Unmarshal(b, &prog); err != nil || len(prog.Floors) != len(streams) {
				return st, fmt.Errorf("search rebuild: progress file %s does not fit (%d message streams): remove it to start over", cfg.Progress, len(streams))
			}
			st.Resumed = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("search rebuild: %w", err)
		}
	}
	if !st.Resumed {
		// A new consumer on each stream: its floor is below the stream's
		// first message.
		for _, name := range streams {
			if err := cfg.JS.DeleteConsumer(ctx, name, schema.ConsumerSearch); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return st, fmt.Errorf("search rebuild: delete consumer %s on %s: %w", schema.ConsumerSearch, name, err)
			}
			if _, err := cfg.JS.CreateConsumer(ctx, name, schema.SearchConsumer()); err != nil {
				return st, fmt.Errorf("search rebuild: create consumer %s on %s: %w", schema.ConsumerSearch, name, err)
			}
		}
		if prog.Floors, err = floors(ctx, cfg.JS, streams); err != nil {
			return st, err
		}
		if err := saveProgress(cfg.Progress, prog); err != nil {
			return st, err
		}
	}
	convs := slices.Clone(cfg.Convs)
	slices.Sort(convs)
	convs = slices.Compact(convs)
	st.Convs = len(convs)

	// The first pass reads every row (after where a resumed one stopped),
	// the next ones what is above the floors the previous one began at.
	var above []uint64 // nil: every row
	start := prog.Floors
	todo := convs
	if prog.Done != "" {
		i, _ := slices.BinarySearch(convs, prog.Done)
		if i < len(convs) && convs[i] == prog.Done {
			i++
		}
		todo = convs[i:]
	}
	for {
		st.Passes++
		w := &rebuildWriter{cfg: cfg, st: &st}
		saved := 0 // st.Indexed+st.Removed when progress was saved
		for _, conv := range todo {
			from := uint64(0)
			if above != nil {
				from = above[l.StreamIndex(conv)]
			}
			if err := w.conv(ctx, conv, from); err != nil {
				return st, err
			}
			if w.pending() >= cfg.Batch/2 {
				if err := w.flush(ctx); err != nil {
					return st, err
				}
			}
			// Everything up to conv is in the index: a rerun may go on
			// after it.
			if above == nil && w.pending() == 0 && st.Indexed+st.Removed > saved {
				saved = st.Indexed + st.Removed
				prog.Done = conv
				if err := saveProgress(cfg.Progress, prog); err != nil {
					return st, err
				}
			}
		}
		if err := w.flush(ctx); err != nil {
			return st, err
		}
		now, err := floors(ctx, cfg.JS, streams)
		if err != nil {
			return st, err
		}
		if slices.Equal(now, start) {
			for i, name := range streams {
				st.Streams = append(st.Streams, RebuildStream{Stream: name, Floor: now[i]})
			}
			break
		}
		cfg.Logger.Info("search rebuild: the stream was trimmed meanwhile; reading what is above the floors again", "from", start, "to", now)
		if st.Passes >= maxRebuildPasses {
			return st, fmt.Errorf("search rebuild: the streams are still being trimmed after %d passes (floors %v, then %v): run it again", st.Passes, start, now)
		}
		above, start, todo = start, now, convs
		// A pass over what is above the old floors covers what the
		// trimmer took during the previous pass.
		prog = rebuildProgress{Floors: now}
		if err := saveProgress(cfg.Progress, prog); err != nil {
			return st, err
		}
	}
	if cfg.Progress != "" {
		if err := os.Remove(cfg.Progress); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, err
		}
	}
	return st, nil
}

// maxRebuildPasses bounds Rebuild's passes over the conversations.
const maxRebuildPasses = 10

// floors returns the search consumer's ack floor on each stream.
func floors(ctx context.Context, js jetstream.JetStream, streams []string) ([]uint64, error) {
	out := make([]uint64, len(streams))
	for i, name := range streams {
		c, err := js.Consumer(ctx, name, schema.ConsumerSearch)
		if err != nil {
			return nil, fmt.Errorf("search rebuild: consumer %s on %s: %w", schema.ConsumerSearch, name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("search rebuild: consumer %s on %s: %w", schema.ConsumerSearch, name, err)
		}
		if info.Delivered.Consumer > 0 {
			// An indexer read it: it must not run while the index is
			// rebuilt (and its floor says nothing of the index).
			return nil, fmt.Errorf("%w: consumer %s on %s delivered messages during the rebuild", ErrIndexerRunning, schema.ConsumerSearch, name)
		}
		out[i] = info.AckFloor.Stream
	}
	return out, nil
}

func saveProgress(path string, p rebuildProgress) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("search rebuild: save progress: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("search rebuild: save progress: %w", err)
	}
	return nil
}

// rebuildWriter turns rows into index writes, a batch at a time.
type rebuildWriter struct {
	cfg RebuildConfig
	st  *RebuildStats
	put []Doc
	del []Key
}

func (w *rebuildWriter) pending() int { return len(w.put) + len(w.del) }

// conv reads conv's rows with seq > from and queues their changes. With
// from > 0 (a later pass), an edit or deletion of a message at or below
// from re-reads that message.
func (w *rebuildWriter) conv(ctx context.Context, conv string, from uint64) error {
	after := from
	for {
		rows, more, err := w.cfg.Store.After(ctx, conv, after, w.cfg.Batch)
		if err != nil {
			return fmt.Errorf("search rebuild: read %s after %d: %w", conv, after, err)
		}
		for _, r := range rows {
			w.st.Rows++
			after = r.Seq
			if (r.Kind == protocol.KindEdit || r.Kind == protocol.KindDelete) && from > 0 && r.Ref <= from && r.Ref > 0 {
				t, _, err := w.cfg.Store.After(ctx, conv, r.Ref-1, 1)
				if err != nil {
					return fmt.Errorf("search rebuild: read %s at %d: %w", conv, r.Ref, err)
				}
				if len(t) == 1 && t[0].Seq == r.Ref {
					w.row(t[0])
				}
				continue
			}
			w.row(r)
		}
		if w.pending() >= w.cfg.Batch {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if !more || len(rows) == 0 {
			return nil
		}
	}
}

// row queues the index change of one stored row: a plain message is
// written as stored, unless it is a tombstone or disappears; other kinds
// are applied in their target's row already.
func (w *rebuildWriter) row(r *protocol.Message) {
	if r.Kind != protocol.KindMessage {
		return
	}
	k := Key{Conv: r.Conv, Seq: r.Seq}
	if r.Deleted || r.Expired(time.Now()) {
		w.del = append(w.del, k)
		return
	}
	w.put = append(w.put, Doc{Conv: r.Conv, Seq: r.Seq, Sender: r.Sender, TS: r.TS, Text: protocol.BodyText(r.Body), EditSeq: r.EditSeq, ExpiresAt: r.ExpiresAt})
}

// flush writes what is queued as one commit.
func (w *rebuildWriter) flush(ctx context.Context) error {
	if len(w.put) == 0 && len(w.del) == 0 {
		return nil
	}
	if err := w.cfg.Index.Write(ctx, w.put, w.del); err != nil {
		return fmt.Errorf("search rebuild: write %d messages: %w", len(w.put)+len(w.del), err)
	}
	w.st.Indexed += len(w.put)
	w.st.Removed += len(w.del)
	w.put, w.del = w.put[:0], w.del[:0]
	return nil
}
