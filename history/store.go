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
//   - a delete whose Sender is the target's Sender makes the target a
//     tombstone: Deleted true, Body {} (EditSeq kept);
//   - reactions are rows of their own and change nothing else;
//   - an edit or delete whose target is not stored, is not a plain message,
//     has another sender, or does not precede it, is stored as a row and
//     applied to nothing.
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
	// Count returns how many plain messages (Kind "") of conv have
	// seq > after. Its cost grows with that count, not with the
	// conversation's size.
	Count(ctx context.Context, conv string, after uint64) (uint64, error)
	// Close releases the store.
	Close() error
}
