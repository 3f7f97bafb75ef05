package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Retention (docs/protocol.md "Retention"): a conversation with
// retention_days keeps its items that many days. The retention sweeper
// (services/erase/retain.go) removes older ones from the store, CHAT,
// the search index and attachments every minute or so; the inbox does
// not wait for it: a preview older than the retention is no preview, and
// the unread count of such a conversation comes from the history store,
// which no longer counts what the sweeper dropped (the summary's recent
// seqs would).

// retained reports whether an item sent at ts is still kept at now under
// a retention of days (0: for ever). A ts that does not parse is kept.
func retained(ts string, days int64, now time.Time) bool {
	if days <= 0 {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return err != nil || !t.Before(now.Add(-time.Duration(days)*24*time.Hour))
}

// keptLast returns l when it is a preview the conversation c still
// keeps, else nil.
func keptLast(c *protocol.Conversation, l *protocol.Last) *protocol.Last {
	if l == nil || !retained(l.TS, c.RetentionDays, time.Now()) {
		return nil
	}
	return l
}

// liveMentions counts the mentions after readSeq whose message is still
// there: not expired (ttl), dropped by retention or deleted from the
// store. It reads each (at most protocol.MaxMentionCount), so the inbox
// calls it only where some may be gone.
func (sess *session) liveMentions(ctx context.Context, c *protocol.Conversation, mentions []uint64) (uint64, error) {
	var n uint64
	now := time.Now()
	for _, seq := range mentions {
		if seq <= c.ReadSeq {
			continue
		}
		m, err := sess.srv.msgs.Get(ctx, c.Conv, seq)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if (m.ExpiresAt == "" || !m.Expired(now)) && retained(m.TS, c.RetentionDays, now) {
			n++
		}
	}
	return n, nil
}
