package history

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/natter-chat/natter/protocol"
)

// tombstone is the Body of a deleted message.
var tombstone = json.RawMessage(`{}`)

// Apply applies the edit or delete ev to its target t, by the rules Store
// describes, and reports whether t changed. It is the one copy of the
// rule: the Reader applies stream events with it and both stores apply
// appended events with it, so a page reads the same wherever it came from.
//
// t must be the stored row at (ev.Conv, ev.Ref) with the edits so far
// applied (Body, EditSeq, Deleted); ev must be an edit or delete (anything
// else changes nothing). The rule:
//   - the target must precede its event (ev.Ref < ev.Seq), be a plain
//     message and not be deleted; an edit must have the target's sender;
//   - an edit sets Body and EditSeq unless a higher edit is applied;
//   - a delete makes a tombstone: Deleted, Body {}, EditSeq kept, and
//     DeletedBy the delete's sender when that is not the target's (a
//     moderator's delete: the gateway decides who may, the store records
//     who did).
func Apply(t, ev *protocol.Message) bool {
	if ev.Kind != protocol.KindEdit && ev.Kind != protocol.KindDelete {
		return false
	}
	if t.Conv != ev.Conv || t.Seq != ev.Ref || ev.Ref >= ev.Seq {
		return false
	}
	if t.Kind != protocol.KindMessage || t.Deleted {
		return false
	}
	if ev.Kind == protocol.KindDelete {
		t.Deleted, t.Body = true, tombstone
		if ev.Sender != t.Sender {
			t.DeletedBy = ev.Sender
		}
		return true
	}
	if t.Sender != ev.Sender {
		return false
	}
	if ev.Seq <= t.EditSeq {
		return false // a later edit is applied already
	}
	t.Body, t.EditSeq = ev.Body, ev.Seq
	return true
}

// ApplyThread counts the thread reply r on its root t (t.Seq == r.Thread)
// and reports whether t changed: ThreadCount goes up by one and
// ThreadLastSeq becomes r's seq. Replies are counted in seq order, so a
// reply at or below ThreadLastSeq is counted already (a re-appended
// batch, a page merging store rows with the stream's): applying it again
// changes nothing. Only a plain message that precedes its reply and is
// not itself a thread reply is a root; deleted roots and replies count
// like any other (a deleted reply stays in its thread as a tombstone).
func ApplyThread(t, r *protocol.Message) bool {
	if r.Kind != protocol.KindMessage || r.Thread == 0 {
		return false
	}
	if t.Conv != r.Conv || t.Seq != r.Thread || r.Thread >= r.Seq {
		return false
	}
	if t.Kind != protocol.KindMessage || t.Thread != 0 || r.Seq <= t.ThreadLastSeq {
		return false
	}
	t.ThreadCount++
	t.ThreadLastSeq = r.Seq
	return true
}

// Same reports whether m, offered to Append at a (Conv, Seq) where stored
// already is, is the same message again (a redelivery, a re-appended batch,
// a rebuild): then Append skips it. Otherwise the stream and the store
// disagree about that seq, which Append reports as ErrConflict.
//
// stored carries the edits applied since, so its Body is compared only
// while no edit or delete has replaced it; everything else a row keeps
// (sender, client id, timestamp, kind, ref, reply_to, quote, thread,
// mentions, expires_at) is compared always.
func Same(stored, m *protocol.Message) bool {
	if stored.Conv != m.Conv || stored.Seq != m.Seq {
		return false
	}
	if stored.Sender != m.Sender || stored.ClientID != m.ClientID || stored.TS != m.TS ||
		stored.Kind != m.Kind || stored.Ref != m.Ref ||
		stored.ReplyTo != m.ReplyTo || stored.Thread != m.Thread ||
		!sameQuote(stored.Quote, m.Quote) || !slices.Equal(stored.Mentions, m.Mentions) ||
		stored.ExpiresAt != m.ExpiresAt {
		return false
	}
	if stored.EditSeq != 0 || stored.Deleted {
		return true
	}
	return bytes.Equal(stored.Body, m.Body)
}

// sameQuote compares a stored quote a with an appended one b. A stored
// quote whose snippet was erased (Eraser: Deleted, no snippet) is the
// same as the original: a rebuild appending the stream's copy again
// must not conflict with it.
func sameQuote(a, b *protocol.Quote) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Deleted && a.Snippet == "" && a.Seq == b.Seq && a.Sender == b.Sender && a.Kind == b.Kind {
		return true
	}
	return *a == *b
}
