package conversation

import (
	"context"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// TestMarkReadAcrossProcesses moves one marker through two Stores, as two
// gateways would: each remembers the revision it wrote, and a stale one
// must neither move the marker back nor lose a move.
func TestMarkReadAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		s     *Store
		name  string
		seq   uint64
		moved bool
		want  uint64
	}{
		{a, "a creates", 5, true, 5},
		{a, "a moves with its revision", 9, true, 9},
		{a, "a does not move back", 7, false, 9},
		{b, "b reads, then moves", 12, true, 12},
		{a, "a's revision is stale: it reads again", 15, true, 15},
		{b, "b's remembered seq is behind; the marker is not", 14, false, 15},
		{b, "b's revision is stale", 20, true, 20},
		{a, "a behind again, equal seq", 20, false, 20},
	}
	for _, st := range steps {
		moved, err := st.s.MarkRead(ctx, "g_conv", "alice", st.seq)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if moved != st.moved {
			t.Errorf("%s: moved = %v, want %v", st.name, moved, st.moved)
		}
		got, err := a.ReadSeq(ctx, "g_conv", "alice")
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Errorf("%s: marker = %d, want %d", st.name, got, st.want)
		}
	}
}

func TestMarkerCacheBounded(t *testing.T) {
	c := markerCache{max: 3}
	for i := range uint64(10) {
		c.put(string(rune('a'+i)), i+1, i+1)
		if len(c.m) > 3 {
			t.Fatalf("cache holds %d entries, max 3", len(c.m))
		}
	}
	c.put("x", 5, 50)
	c.put("x", 4, 40)
	if m, _ := c.get("x"); m.seq != 5 || m.rev != 50 {
		t.Fatalf("cache kept %+v, want the furthest marker 5/50", m)
	}
}
