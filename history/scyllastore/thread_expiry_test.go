package scyllastore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// A reply that expired no longer counts on its root: Cassandra drops the
// reply by itself, and the root, marked as counting an expiring reply,
// is recounted from its thread index on every read.
func TestExpiredReplyLeavesRootCount(t *testing.T) {
	cfg := config(t, 16)
	migrate(t, cfg)
	s := open(t, cfg)
	ctx := context.Background()
	now := time.Now()
	soon := protocol.FormatTime(now.Add(2 * time.Second))
	row := func(seq, thread uint64, expires string) *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: seq, Sender: "u", ClientID: fmt.Sprint("c", seq),
			TS: protocol.FormatTime(now), Body: []byte(`{"text":"x"}`), Thread: thread, ExpiresAt: expires}
	}
	// Root 1 with replies 2 (kept) and 3 (expires); root 4 with one reply
	// 5 (expires).
	if err := s.Append(ctx, []*protocol.Message{row(1, 0, ""), row(2, 1, ""), row(3, 1, soon), row(4, 0, ""), row(5, 4, soon)}); err != nil {
		t.Fatal(err)
	}
	page, _, err := s.After(ctx, "c", 0, 10)
	if err != nil || page[0].ThreadCount != 2 || page[0].ThreadLastSeq != 3 {
		t.Fatalf("before expiry: %v; root 1 %+v", err, page[0])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, _, err = s.After(ctx, "c", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expiring replies are still there: %d rows", len(page))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range []struct {
		m           *protocol.Message
		count, last uint64
	}{{page[0], 1, 2}, {page[2], 0, 0}} {
		if c.m.ThreadCount != c.count || c.m.ThreadLastSeq != c.last {
			t.Errorf("root %d after its reply expired: count %d last %d, want %d %d", c.m.Seq, c.m.ThreadCount, c.m.ThreadLastSeq, c.count, c.last)
		}
	}
	// Thread pages read rows by seq (Rows): the same counts.
	rows, err := s.Rows(ctx, "c", []uint64{1, 4})
	if err != nil || len(rows) != 2 || rows[0].ThreadCount != 1 || rows[1].ThreadCount != 0 {
		t.Fatalf("Rows after expiry: %v %+v", err, rows)
	}
}
