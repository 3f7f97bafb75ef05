package fanout

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
)

// members is what the fan-out needs of one conversation, with the delivery
// subjects built once per membership change rather than once per message.
type members struct {
	doc      *conversation.Doc
	msgSubj  []string // chat.user.<uid>.msg for every member
	loadedAt time.Time
}

func newMembers(d *conversation.Doc, now time.Time) *members {
	m := &members{doc: d, msgSubj: make([]string, len(d.Members)), loadedAt: now}
	for i, u := range d.Members {
		m.msgSubj[i] = schema.User(u, schema.EventMessage)
	}
	return m
}

// cache holds member lists by conversation. Membership events in the stream
// refresh an entry in order with the messages; the TTL bounds staleness if
// an event was ever lost between the document write and its announcement.
type cache struct {
	mu    sync.Mutex
	m     map[string]*members
	max   int
	ttl   time.Duration
	now   func() time.Time
	store *conversation.Store
}

func (c *cache) get(ctx context.Context, conv string) (*members, error) {
	c.mu.Lock()
	e := c.m[conv]
	c.mu.Unlock()
	if e != nil && c.now().Sub(e.loadedAt) < c.ttl {
		return e, nil
	}
	return c.load(ctx, conv)
}

func (c *cache) load(ctx context.Context, conv string) (*members, error) {
	d, err := c.store.Get(ctx, conv)
	if err != nil {
		return nil, err
	}
	e := newMembers(d, c.now())
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Evict an arbitrary tenth: map order is random.
		n := c.max / 10
		for k := range c.m {
			if n <= 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[conv] = e
	c.mu.Unlock()
	return e, nil
}
