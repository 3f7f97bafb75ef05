package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Source reads conversation documents; Store is one.
type Source interface {
	Get(ctx context.Context, conv string) (*Doc, error)
}

var _ Source = (*Store)(nil)

// CacheConfig bounds a MemberCache. The zero value is filled with defaults.
type CacheConfig struct {
	// Size bounds the conversations kept (default 10,000).
	Size int
	// Members bounds the members of all kept conversations together: the
	// memory that grows with group size (default 10,000,000).
	Members int
	// TTL bounds how long a member list is trusted without a membership
	// event (default 1 minute).
	TTL time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.Size <= 0 {
		c.Size = 10_000
	}
	if c.Members <= 0 {
		c.Members = 10_000_000
	}
	if c.TTL <= 0 {
		c.TTL = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// MemberCache keeps, per conversation, a value derived from its document
// (the document itself, or what a reader precomputes from the members).
// It is meant for a reader of the CHAT stream, which meets the membership
// events in order with the messages: on an event it calls Refresh or Drop,
// so the next message uses the new members. The TTL bounds staleness if an
// event was ever lost between a document's write and its announcement.
// When a bound is reached an arbitrary tenth of the entries goes.
type MemberCache[V any] struct {
	cfg    CacheConfig
	src    Source
	derive func(*Doc) V

	mu      sync.Mutex
	m       map[string]cacheEntry[V]
	members int // of every entry together
}

type cacheEntry[V any] struct {
	v       V
	members int
	rev     uint64 // the document's KV revision, 0 when not known
	at      time.Time
}

// NewMemberCache returns an empty cache reading documents from src and
// keeping derive(doc) for each.
func NewMemberCache[V any](cfg CacheConfig, src Source, derive func(*Doc) V) *MemberCache[V] {
	return &MemberCache[V]{cfg: cfg.withDefaults(), src: src, derive: derive, m: make(map[string]cacheEntry[V])}
}

// Get returns conv's value, read from the source when it is not cached or
// older than the TTL.
func (c *MemberCache[V]) Get(ctx context.Context, conv string) (V, error) {
	c.mu.Lock()
	e, ok := c.m[conv]
	c.mu.Unlock()
	if ok && c.cfg.Now().Sub(e.at) < c.cfg.TTL {
		return e.v, nil
	}
	return c.Refresh(ctx, conv)
}

// Refresh reads conv's document from the source now and caches its value:
// what a reader does when it meets a membership event of conv. A failed
// read leaves the cache as it was.
func (c *MemberCache[V]) Refresh(ctx context.Context, conv string) (V, error) {
	d, err := c.src.Get(ctx, conv)
	if err != nil {
		var zero V
		return zero, err
	}
	return c.put(conv, 0, d), nil
}

// AtLeastSource is a Source that can read a document at least as new as a
// revision (Store.GetAtLeast).
type AtLeastSource interface {
	GetAtLeast(ctx context.Context, conv string, rev uint64) (*Doc, error)
}

// RefreshAtLeast is Refresh for a membership event that announces
// revision rev (Event.Rev): with an AtLeastSource the document read is at
// least that new, whichever replica answers.
func (c *MemberCache[V]) RefreshAtLeast(ctx context.Context, conv string, rev uint64) (V, error) {
	src, ok := c.src.(AtLeastSource)
	if !ok {
		return c.Refresh(ctx, conv)
	}
	d, err := src.GetAtLeast(ctx, conv, rev)
	if err != nil {
		var zero V
		return zero, err
	}
	return c.put(conv, 0, d), nil
}

// Drop forgets conv, so the next Get reads it again.
func (c *MemberCache[V]) Drop(conv string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[conv]; ok {
		delete(c.m, conv)
		c.members -= e.members
	}
}

// atRevision returns conv's value if it was cached from revision rev.
func (c *MemberCache[V]) atRevision(conv string, rev uint64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[conv]
	if !ok || e.rev != rev {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put caches the value of d, read at revision rev (0: unknown), and
// returns it. A known revision older than the cached one loses: a slow
// reader does not replace a newer document.
func (c *MemberCache[V]) put(conv string, rev uint64, d *Doc) V {
	v := c.derive(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[conv]; ok {
		if rev != 0 && old.rev > rev {
			return v
		}
		delete(c.m, conv)
		c.members -= old.members
	}
	c.makeRoom(len(d.Members))
	c.m[conv] = cacheEntry[V]{v: v, members: len(d.Members), rev: rev, at: c.cfg.Now()}
	c.members += len(d.Members)
	return v
}

// makeRoom evicts arbitrary entries (map order is random) until one of
// members more fits, down to nine tenths of each bound so that a full
// cache does not evict on every read. c.mu is held.
func (c *MemberCache[V]) makeRoom(members int) {
	if len(c.m) < c.cfg.Size && c.members+members <= c.cfg.Members {
		return
	}
	size := c.cfg.Size - max(c.cfg.Size/10, 1)
	room := c.cfg.Members - c.cfg.Members/10 - members
	for k, e := range c.m {
		if len(c.m) <= size && c.members <= room {
			return
		}
		delete(c.m, k)
		c.members -= e.members
	}
}

// GetShared returns conv's document like Get, but the document may be
// shared with other callers and must not be modified. Each read still
// fetches the current revision; only the decoding, the expensive part for
// a large group, is skipped when the revision is one seen before.
func (s *Store) GetShared(ctx context.Context, conv string) (*Doc, error) {
	d, _, err := s.getShared(ctx, conv)
	return d, err
}

// getShared is GetShared with the document's revision.
func (s *Store) getShared(ctx context.Context, conv string) (*Doc, uint64, error) {
	e, err := s.kv.Get(ctx, docKey(conv))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	if d, ok := s.docs.atRevision(conv, e.Revision()); ok {
		return d, e.Revision(), nil
	}
	d := new(Doc)
	if err := json.Unmarshal(e.Value(), d); err != nil {
		return nil, 0, fmt.Errorf("decode conversation %s: %w", conv, err)
	}
	s.docs.put(conv, e.Revision(), d)
	return d, e.Revision(), nil
}

// NewDocCache returns a MemberCache of the documents themselves.
func NewDocCache(cfg CacheConfig, src Source) *MemberCache[*Doc] {
	return NewMemberCache(cfg, src, func(d *Doc) *Doc { return d })
}
