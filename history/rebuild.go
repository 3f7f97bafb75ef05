package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// RebuildStats reports what Rebuild did.
type RebuildStats struct {
	// First and Last are the stream seqs Rebuild read from and up to, of
	// the last message stream it read (of the only one, CHAT, unless the
	// messages are in partition streams: then Streams has each).
	First, Last uint64
	// Streams are the seq ranges read of each message stream.
	Streams []StreamRange
	// Read is how many messages of chat.msg.* it read.
	Read int
	// Appended is how many rows it handed the store; rows the store had
	// already are among them (Append skips them).
	Appended int
	// Skipped is how many it left out: not a valid envelope or
	// conversation (the writer sent those to the DEAD stream).
	Skipped int
}

// Rebuild fills store with every message the CHAT stream still holds,
// from its first seq to the last seq it had when Rebuild began: for a
// history store that was lost, restored from an old backup, or is new.
// It is idempotent (Append skips rows already stored) and may run while
// the writer runs on a shared store; messages older than the stream's
// first seq are gone unless the store kept them. A row stored with other
// content stops it with ErrConflict: the store belongs to another stream.
//
// It reads with an ordered consumer, so it leaves the history consumer
// and its ack floor alone.
//
// With partition streams (schema.Layout) it rebuilds from each in turn.
func Rebuild(ctx context.Context, js jetstream.JetStream, store Store, batch int) (RebuildStats, error) {
	var st RebuildStats
	if batch <= 0 {
		batch = schema.HistoryBatch
	}
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		return st, fmt.Errorf("rebuild: %w", err)
	}
	for _, name := range l.ChatStreams() {
		err := rebuildStream(ctx, js, name, store, batch, &st)
		st.Streams = append(st.Streams, StreamRange{Stream: name, First: st.First, Last: st.Last})
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// StreamRange is the seq range Rebuild read of one message stream.
type StreamRange struct {
	Stream      string
	First, Last uint64
}

// rebuildStream is Rebuild of one message stream, adding to st.
func rebuildStream(ctx context.Context, js jetstream.JetStream, name string, store Store, batch int, st *RebuildStats) error {
	st.First, st.Last = 0, 0
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("rebuild: open stream %s: %w", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	st.First, st.Last = info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schema.StoredMsgWildcard},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("rebuild: consumer: %w", err)
	}
	failed := 0
	for {
		msgs, done, ferr := fetchUpTo(ctx, cons, batch, st.Last)
		var rows []*protocol.Message
		for _, m := range msgs {
			st.Read++
			if row := decodeStored(m); row != nil {
				rows = append(rows, row)
			} else {
				st.Skipped++
			}
		}
		if len(rows) > 0 {
			if err := store.Append(ctx, rows); err != nil {
				return fmt.Errorf("rebuild: append %d rows from seq %d: %w", len(rows), rows[0].Seq, err)
			}
			st.Appended += len(rows)
		}
		if ferr != nil {
			// Each fetch of the ordered consumer recreates it after the
			// last message delivered (kept above), so a fetch that failed
			// for a moment (a node restarting, a meta leader changing: no
			// responders, a timeout) is tried again rather than ending
			// the rebuild.
			if failed++; errors.Is(ferr, errUnplaced) || ctx.Err() != nil || failed > rebuildRetries {
				return fmt.Errorf("rebuild: %w", ferr)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("rebuild: %w", ctx.Err())
			case <-time.After(rebuildRetryWait):
			}
			continue
		}
		failed = 0
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// A rebuild tries a failed fetch again rebuildRetries times, waiting
// rebuildRetryWait before each: half a minute for the cluster to settle.
const (
	rebuildRetries   = 30
	rebuildRetryWait = time.Second
)

// fetchUpTo fetches up to batch messages with seq ≤ last; done once the
// consumer has nothing more up to last. The messages it returns were
// delivered, also when it returns an error: the ordered consumer's next
// fetch starts after them, so the caller must keep them. An error is
// worth retrying unless it is errUnplaced.
func fetchUpTo(ctx context.Context, cons jetstream.Consumer, batch int, last uint64) ([]jetstream.Msg, bool, error) {
	b, err := cons.Fetch(batch, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		return nil, false, err
	}
	var out []jetstream.Msg
	done := false
	var unplaced error
	for m := range b.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			unplaced = fmt.Errorf("%w: %v", errUnplaced, err)
			continue // drain the batch; nothing after it is kept
		}
		if unplaced != nil || meta.Sequence.Stream > last {
			done = done || meta.Sequence.Stream > last
			continue
		}
		out = append(out, m)
		if meta.Sequence.Stream == last || meta.NumPending == 0 {
			done = true
		}
	}
	if unplaced != nil {
		return out, false, unplaced
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return out, false, err
	}
	if len(out) == 0 && !done {
		// Nothing within the wait: done if nothing is pending either
		// (the stream's last messages may be membership events).
		info, err := cons.Info(ctx)
		if err != nil {
			return out, false, err
		}
		done = info.NumPending == 0
	}
	return out, done, nil
}

// errUnplaced is a delivered message without JetStream metadata: its seq
// is unknown, so a rebuild cannot go on past it.
var errUnplaced = errors.New("a message without stream metadata")

// ErrUnplaced and ErrNoConversation are why DecodeStored returns no row,
// besides a bad envelope's own error.
var (
	// ErrUnplaced: a message without JetStream metadata.
	ErrUnplaced = errors.New("history: a message without stream metadata")
	// ErrNoConversation: its subject names no valid conversation id.
	ErrNoConversation = errors.New("history: subject holds no valid conversation id")
)

// DecodeStored turns a CHAT message into the row the history store keeps
// (and the search index indexes): its conversation from the subject, its
// seq and time from the metadata, the rest from the envelope. It fails
// with ErrUnplaced, ErrNoConversation, or the envelope's decoding error
// for a message the writer does not store.
func DecodeStored(m jetstream.Msg) (*protocol.Message, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnplaced, err)
	}
	conv := schema.ConvFromSubject(m.Subject())
	if !protocol.ValidID(conv) {
		return nil, ErrNoConversation
	}
	env, err := protocol.DecodeEnvelope(m.Data())
	if err != nil {
		return nil, err
	}
	return env.Message(conv, meta.Sequence.Stream, protocol.FormatTime(meta.Timestamp)), nil
}

// Seq is a CHAT message's stream seq, 0 without metadata.
func Seq(m jetstream.Msg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// decodeStored is DecodeStored's row, nil for one the writer does not
// store.
func decodeStored(m jetstream.Msg) *protocol.Message {
	row, _ := DecodeStored(m)
	return row
}
