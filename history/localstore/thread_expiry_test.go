package localstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// An expired thread reply no longer counts on its root: thread_count
// goes down and thread_last_seq falls back to the newest reply left.
func TestExpiredReplyLeavesRootCount(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	now := time.Now()
	soon := protocol.FormatTime(now.Add(time.Minute))
	row := func(seq, thread uint64, expires string) *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: seq, Sender: "u", ClientID: "c" + string(rune('0'+seq)),
			TS: protocol.FormatTime(now), Body: []byte(`{"text":"x"}`), Thread: thread, ExpiresAt: expires}
	}
	// Root 1 (kept) with replies 2 (kept) and 3 (expires); root 4 (kept)
	// with one reply 5 (expires).
	if err := s.Append(ctx, []*protocol.Message{row(1, 0, ""), row(2, 1, ""), row(3, 1, soon), row(4, 0, ""), row(5, 4, soon)}); err != nil {
		t.Fatal(err)
	}
	page, _, _ := s.After(ctx, "c", 0, 10)
	if page[0].ThreadCount != 2 || page[0].ThreadLastSeq != 3 {
		t.Fatalf("before expiry: root 1 count %d last %d", page[0].ThreadCount, page[0].ThreadLastSeq)
	}
	if n, err := s.Expire(ctx, now.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2 rows", n, err)
	}
	page, _, err := s.After(ctx, "c", 0, 10)
	if err != nil || len(page) != 3 {
		t.Fatalf("after expiry: %d rows, %v", len(page), err)
	}
	for _, c := range []struct {
		m           *protocol.Message
		count, last uint64
	}{{page[0], 1, 2}, {page[2], 0, 0}} {
		if c.m.ThreadCount != c.count || c.m.ThreadLastSeq != c.last {
			t.Errorf("root %d after its reply expired: count %d last %d, want %d %d", c.m.Seq, c.m.ThreadCount, c.m.ThreadLastSeq, c.count, c.last)
		}
	}
}
