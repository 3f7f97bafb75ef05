package gateway

import (
	"strconv"
	"testing"
)

// The send views are bounded: past the bound the least recently used
// view goes, and a view in use stays.
func TestViewsBounded(t *testing.T) {
	const max = 100
	c := newViews(max)
	k := func(i int) viewKey { return viewKey{"c" + strconv.Itoa(i), "u"} }
	for i := range max {
		c.put(k(i), uint64(i))
	}
	if _, ok := c.get(k(0)); !ok {
		t.Fatal("a kept view is missing")
	}
	for i := max; i < 3*max; i++ {
		c.put(k(i), uint64(i))
		if n := c.len(); n > max {
			t.Fatalf("%d views kept, bound %d", n, max)
		}
		if i%2 == 0 {
			c.get(k(0)) // in use
		}
	}
	if seq, ok := c.get(k(0)); !ok || seq != 0 {
		t.Errorf("the view in use was evicted (%d, %v)", seq, ok)
	}
	if _, ok := c.get(k(1)); ok {
		t.Error("the least recently used view was kept")
	}
	c.put(k(0), 7)
	if seq, _ := c.get(k(0)); seq != 7 {
		t.Errorf("a view read again kept seq %d, want 7", seq)
	}
	c.drop(k(0))
	if _, ok := c.get(k(0)); ok {
		t.Error("a dropped view is kept")
	}
}
