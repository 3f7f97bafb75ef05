package history

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// Store keeps every message for good, after it has left the CHAT stream's
// hot window. Implementations: localstore (embedded, the default) and
// scyllastore (ScyllaDB/Cassandra). Both pass the suite in history/storetest.
//
// Rows are protocol.Message values: plain messages (Kind "") and the edit,
// delete and reaction events (Kind set, Ref = the target's seq), each under
// its own seq. Append also applies edits and deletions to their target by
// Apply, the one copy of the rule:
//   - an edit whose Sender is the target's Sender sets the target's Body to
//     the edit's Body and EditSeq to the edit's Seq, unless the target
//     already carries a higher EditSeq or is deleted;
//   - a delete makes the target a tombstone: Deleted true, Body {}
//     (EditSeq kept), DeletedBy the delete's Sender when it is not the
//     target's (a moderator's delete);
//   - reactions are rows of their own and change nothing else;
//   - an edit or delete whose target is not stored, is not a plain message,
//     or does not precede it (or an edit with another sender) is stored as
//     a row and applied to nothing;
//   - a thread reply (a plain message with Thread set) counts on its root
//     by ApplyThread: ThreadCount and ThreadLastSeq.
//
// Rows keep every field of the envelope: ReplyTo, Quote, Thread and
// Mentions as appended.
//
// Pages return rows as stored (targets with edits applied), in ascending seq.
type Store interface {
	// Append stores msgs, which all have Conv and Seq set. Appending a
	// (Conv, Seq) that is already stored with the same content (Same)
	// changes nothing and is not an error, so a batch may be written again
	// after a crash. One stored with other content fails the whole batch
	// with an error wrapping ErrConflict, and nothing of it is stored.
	Append(ctx context.Context, msgs []*protocol.Message) error
	// After returns up to limit rows of conv with seq > after, ascending,
	// and whether more follow.
	After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error)
	// Before returns the newest limit rows of conv with seq < before,
	// ascending, and whether older ones exist; before 0 means newest.
	Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error)
	// Last returns the highest seq stored for conv, 0 if none.
	Last(ctx context.Context, conv string) (uint64, error)
	// ThreadAfter returns up to limit thread replies of conv under root
	// (rows with Thread == root) with seq > after, ascending, and whether
	// more follow. Its cost grows with the page, not the conversation.
	ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error)
	// ThreadBefore returns the newest limit thread replies of conv under
	// root with seq < before (0: the newest), ascending, and whether older
	// ones exist.
	ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error)
	// Count returns how many plain messages (Kind "") of conv have
	// seq > after. Its cost grows with that count, not with the
	// conversation's size.
	Count(ctx context.Context, conv string, after uint64) (uint64, error)
	// Close releases the store.
	Close() error
}
