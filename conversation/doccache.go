package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// docCache keeps decoded documents by KV revision. A revision is the
// sequence of the write in the bucket's stream, never reused, so a cached
// document is exactly the one stored at that revision. It is bounded by
// the members it holds: past max it starts again empty.
type docCache struct {
	mu      sync.Mutex
	m       map[string]cachedDoc
	members int
	max     int
}

type cachedDoc struct {
	rev uint64
	d   *Doc
}

// GetShared returns conv's document like Get, but the document may be
// shared with other callers and must not be modified. Each read still
// fetches the current revision; only the decoding, the expensive part for
// a large group, is skipped when the revision is one seen before.
func (s *Store) GetShared(ctx context.Context, conv string) (*Doc, error) {
	e, err := s.kv.Get(ctx, docKey(conv))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	s.docs.mu.Lock()
	c, ok := s.docs.m[conv]
	s.docs.mu.Unlock()
	if ok && c.rev == e.Revision() {
		return c.d, nil
	}
	d := new(Doc)
	if err := json.Unmarshal(e.Value(), d); err != nil {
		return nil, fmt.Errorf("decode conversation %s: %w", conv, err)
	}
	s.docs.put(conv, e.Revision(), d)
	return d, nil
}

func (c *docCache) put(conv string, rev uint64, d *Doc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[conv]; ok {
		if old.rev > rev {
			return // a newer revision got here first
		}
		c.members -= len(old.d.Members)
	}
	if c.m == nil || c.members+len(d.Members) > c.max {
		c.m = make(map[string]cachedDoc)
		c.members = 0
	}
	c.m[conv] = cachedDoc{rev: rev, d: d}
	c.members += len(d.Members)
}
