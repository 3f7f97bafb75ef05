package conversation

import "sync"

// markerCache remembers the read markers this process last read or wrote,
// with their KV revisions, so that moving a marker is one compare-and-set
// instead of a read and a compare-and-set. It is only ever a hint: markers
// never move backwards and are never deleted, so a remembered seq is at most
// the current one, and a remembered revision that is no longer current
// makes the compare-and-set fail, after which the marker is read again.
type markerCache struct {
	mu  sync.Mutex
	m   map[string]marker
	max int
}

type marker struct{ seq, rev uint64 }

func (c *markerCache) get(key string) (marker, bool) {
	c.mu.Lock()
	m, ok := c.m[key]
	c.mu.Unlock()
	return m, ok
}

// put keeps the furthest marker seen for key. Past max entries the cache
// starts again empty: a miss costs one read, nothing else.
func (c *markerCache) put(key string, seq, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok && old.seq >= seq {
		return
	}
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]marker)
	}
	c.m[key] = marker{seq: seq, rev: rev}
}
