package history

import "context"

// Dropper is a Store that removes rows for good: the store's part of a
// conversation's retention (retention_days, services/erase/retain.go),
// which drops every row older than the retention from the store, the
// CHAT stream, the search index and the attachments. Both stores
// implement it and pass storetest's Drop case.
type Dropper interface {
	// Drop deletes the rows of conv at seqs, whatever their kind, with
	// every index entry of theirs (plain-message count, thread replies,
	// expiry), so that no read returns them and Count no longer counts
	// them. Seqs not stored are skipped; dropping again changes nothing.
	// Retention drops a prefix of a conversation (every row older than a
	// time), so a dropped thread reply's root, older, is dropped with it:
	// Drop need not update the counts of a root it leaves.
	Drop(ctx context.Context, conv string, seqs []uint64) error
}
