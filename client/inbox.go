package client

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Inbox is a user's conversation list kept up to date from pushes, so it
// never has to be fetched again (docs/protocol.md "Inbox"): Load reads the
// first pages, Apply takes each push. Items are ordered as the server
// orders them: newest activity (the time of Last, Last.TS) first, then by
// id; conversations without Last come last. It is safe
// for concurrent use.
type Inbox struct {
	user  string
	mu    sync.Mutex
	items map[string]*protocol.Conversation
	next  string // cursor of the next page, "" when all are loaded
	more  bool
}

// NewInbox returns an empty inbox of user (the connection's user: a
// message they sent counts as read).
func NewInbox(user string) *Inbox {
	return &Inbox{user: user, items: make(map[string]*protocol.Conversation)}
}

// Load reads up to pages pages of limit conversations (0: the server's
// default) from the start, replacing what the inbox held.
func (in *Inbox) Load(ctx context.Context, c *Client, pages, limit int) error {
	items := make(map[string]*protocol.Conversation)
	after, more := "", false
	for range max(pages, 1) {
		f, err := c.ConversationsPage(ctx, after, limit)
		if err != nil {
			return err
		}
		for _, cv := range f.Conversations {
			items[cv.Conv] = cv
		}
		after, more = f.Next, f.More
		if !more {
			break
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.items, in.next, in.more = items, after, more
	return nil
}

// LoadMore reads the next page after what Load read; it reports whether
// further pages remain.
func (in *Inbox) LoadMore(ctx context.Context, c *Client, limit int) (bool, error) {
	in.mu.Lock()
	after, more := in.next, in.more
	in.mu.Unlock()
	if !more {
		return false, nil
	}
	f, err := c.ConversationsPage(ctx, after, limit)
	if err != nil {
		return false, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, cv := range f.Conversations {
		if _, ok := in.items[cv.Conv]; !ok {
			in.items[cv.Conv] = cv
		}
	}
	in.next, in.more = f.Next, f.More
	return f.More, nil
}

// List returns copies of the items in the server's order.
func (in *Inbox) List() []protocol.Conversation {
	in.mu.Lock()
	out := make([]protocol.Conversation, 0, len(in.items))
	for _, cv := range in.items {
		out = append(out, *cv)
	}
	in.mu.Unlock()
	slices.SortFunc(out, func(a, b protocol.Conversation) int {
		if x, y := activity(&a), activity(&b); x != y {
			if x > y {
				return -1
			}
			return 1
		}
		if a.Conv < b.Conv {
			return -1
		}
		return 1
	})
	return out
}

// Get returns a copy of conv's item.
func (in *Inbox) Get(conv string) (protocol.Conversation, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	cv, ok := in.items[conv]
	if !ok {
		return protocol.Conversation{}, false
	}
	return *cv, true
}

// activity is what orders the list, as the server orders it: Last's time
// in nanoseconds (not its seq: seqs of conversations in different
// partition streams do not compare), 1 when it does not parse, 0 without
// Last.
func activity(c *protocol.Conversation) int64 {
	if c.Last == nil {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, c.Last.TS)
	if err != nil || t.UnixNano() <= 1 {
		return 1
	}
	return t.UnixNano()
}

// Apply takes a push into the inbox and reports whether it changed: an
// inbox conversation push replaces the item (another conversation push
// its settings and members), a message push moves its
// conversation up with the new preview and counts, a read push of the
// user's own marker clears what it covers, a member push removing the
// user drops the item. Other pushes change nothing.
func (in *Inbox) Apply(ev Event) bool {
	switch ev.Type {
	case protocol.TypeConversation:
		var f protocol.ConversationFrame
		if ev.Decode(&f) != nil || f.Conversation == nil {
			return false
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		cv := f.Conversation
		old, ok := in.items[cv.Conv]
		switch {
		case ok && !f.Inbox:
			// Settings and members: the counts stay the inbox's.
			cv.LastSeq, cv.Last, cv.ReadSeq, cv.Unread, cv.MentionCount = old.LastSeq, old.Last, old.ReadSeq, old.Unread, old.MentionCount
		case ok && old.LastSeq > cv.LastSeq:
			// Rendered before a message this inbox already took (the
			// pushes come different ways): keep what that told.
			cv.LastSeq, cv.Last = old.LastSeq, old.Last
			cv.Unread, cv.MentionCount = max(cv.Unread, old.Unread), max(cv.MentionCount, old.MentionCount)
		}
		in.items[cv.Conv] = cv
		return true
	case protocol.TypeMessage:
		var m protocol.Message
		if ev.Decode(&m) != nil {
			return false
		}
		return in.ApplyMessage(&m)
	case protocol.TypeRead:
		var r struct {
			Conv string `json:"conv"`
			User string `json:"user"`
			Seq  uint64 `json:"seq"`
		}
		if ev.Decode(&r) != nil || r.User != in.user {
			return false
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		cv, ok := in.items[r.Conv]
		if !ok || r.Seq <= cv.ReadSeq {
			return false
		}
		cv.ReadSeq = r.Seq
		if r.Seq >= cv.LastSeq {
			// The exact counts of a partial read come with the
			// conversation push that follows it.
			cv.Unread, cv.MentionCount = 0, 0
		}
		return true
	case protocol.TypeMember:
		var e protocol.MemberEvent
		if ev.Decode(&e) != nil || e.User != in.user || e.Action != protocol.MemberActionRemoved {
			return false
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		_, ok := in.items[e.Conv]
		delete(in.items, e.Conv)
		return ok
	}
	return false
}

// ApplyMessage takes a message of a conversation into the inbox: a push,
// or one the user sent (with the seq and ts of its ack). A conversation
// the inbox does not hold yet gets an item with what the message tells;
// its kind and title come with the next Load.
func (in *Inbox) ApplyMessage(m *protocol.Message) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	cv, ok := in.items[m.Conv]
	if !ok {
		cv = &protocol.Conversation{Conv: m.Conv}
		in.items[m.Conv] = cv
	}
	if m.Seq <= cv.LastSeq {
		return false
	}
	cv.LastSeq = m.Seq
	switch m.Kind {
	case protocol.KindMessage, protocol.KindEvent:
		cv.Last = &protocol.Last{Seq: m.Seq, Sender: m.Sender, TS: m.TS, Kind: m.Kind, Snippet: protocol.Snippet(m.Body, m.Kind)}
	case protocol.KindEdit:
		if l := cv.Last; l != nil && l.Seq == m.Ref && l.Sender == m.Sender && !l.Deleted && l.Kind == protocol.KindMessage {
			cv.Last = &protocol.Last{Seq: l.Seq, Sender: l.Sender, TS: l.TS, Snippet: protocol.Snippet(m.Body, protocol.KindMessage)}
		}
	case protocol.KindDelete:
		if l := cv.Last; l != nil && l.Seq == m.Ref && l.Kind == protocol.KindMessage {
			cv.Last = &protocol.Last{Seq: l.Seq, Sender: l.Sender, TS: l.TS, Deleted: true}
		}
	}
	switch {
	case m.Sender == in.user:
		// Sending reads the conversation up to the message.
		cv.ReadSeq, cv.Unread, cv.MentionCount = m.Seq, 0, 0
	case m.Kind == protocol.KindMessage:
		cv.Unread++
		if mentions(m, in.user) && cv.MentionCount < protocol.MaxMentionCount {
			cv.MentionCount++
		}
	}
	return true
}

func mentions(m *protocol.Message, user string) bool {
	return slices.Contains(m.Mentions, user) || slices.Contains(m.Mentions, protocol.MentionAll)
}
