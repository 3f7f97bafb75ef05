package fanout

import (
	"context"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
)

// members is what the fan-out needs of one conversation, with the delivery
// subjects built once per membership change rather than once per message.
type members struct {
	doc     *conversation.Doc
	msgSubj []string // chat.user.<uid>.msg for every member
}

func newMembers(d *conversation.Doc) *members {
	m := &members{doc: d, msgSubj: make([]string, len(d.Members))}
	for i, u := range d.Members {
		m.msgSubj[i] = schema.User(u, schema.EventMessage)
	}
	return m
}

// cache holds member lists by conversation. Membership events in the stream
// reload an entry in order with the messages; the TTL bounds staleness if
// an event was ever lost between the document write and its announcement.
type cache struct {
	c *conversation.MemberCache[*members]
}

func newCache(cfg Config, convs conversation.Source) cache {
	return cache{conversation.NewMemberCache(
		conversation.CacheConfig{Size: cfg.CacheSize, TTL: cfg.CacheTTL, Now: cfg.Now}, convs, newMembers)}
}

// get returns conv's members, from the cache while they are fresh.
func (c cache) get(ctx context.Context, conv string) (*members, error) { return c.c.Get(ctx, conv) }

// load reads conv's members now: a membership event of conv, announcing
// revision rev, was met. The document read is at least that new: a
// replica of the bucket behind the change would give the members from
// before it (a removed member would still get messages).
func (c cache) load(ctx context.Context, conv string, rev uint64) (*members, error) {
	return c.c.RefreshAtLeast(ctx, conv, rev)
}
