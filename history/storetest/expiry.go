package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// expiryWait bounds how long a store may take to drop an expired row
// (Cassandra's TTL, a sweep), on a loaded machine.
const expiryWait = 30 * time.Second

// testExpiry: rows with ExpiresAt come back with it; once it passed (and
// an Expirer swept) the store holds none of them: pages, thread pages
// and Count leave them out, also where an edit or a thread count was
// applied to an expiring row (cells written without a TTL would outlive
// it). Rows without expiry stay as they were.
func testExpiry(t *testing.T, s history.Store) {
	const conv = "exp"
	at := protocol.FormatTime(time.Now().Add(2 * time.Second))
	keep := msg(conv, 1, "alice")
	gone := msg(conv, 2, "alice")
	gone.ExpiresAt = at
	edit := event(conv, 3, "alice", protocol.KindEdit, 2, editBody(3))
	edit.ExpiresAt = at
	reply := threadReply(conv, 4, "bob", 2)
	reply.ExpiresAt = at
	keepReply := threadReply(conv, 5, "bob", 1)
	keptRoot := msg(conv, 6, "carol") // an expiring reply counts on it
	goneReply := threadReply(conv, 7, "bob", 6)
	goneReply.ExpiresAt = at
	mustAppend(t, s, keep, gone, edit)
	mustAppend(t, s, reply, keepReply, keptRoot, goneReply)
	got := row(t, s, conv, 2)
	if got.ExpiresAt != at || got.EditSeq != 3 {
		t.Fatalf("expiring row before expiry: %s", diff(gone, got))
	}

	ctx := context.Background()
	deadline := time.Now().Add(expiryWait)
	for {
		if ex, ok := s.(history.Expirer); ok {
			if _, err := ex.Expire(ctx, time.Now()); err != nil {
				t.Fatalf("Expire: %v", err)
			}
		}
		err := expiredGone(t, s, conv)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", expiryWait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := row(t, s, conv, 1); got.ExpiresAt != "" || string(got.Body) != string(keep.Body) {
		t.Fatalf("row without expiry changed: %s", diff(keep, got))
	}
}

// expiredGone says which expired row of conv (seqs 2, 3, 4, 7) a read
// still returns, or nil.
func expiredGone(t *testing.T, s history.Store, conv string) error {
	ctx := context.Background()
	all, _ := after(t, s, conv, 0, 100)
	if got := seqs(all); !slices.Equal(got, []uint64{1, 5, 6}) {
		return fmt.Errorf("after returns seqs %v, want [1 5 6]", got)
	}
	back, _ := before(t, s, conv, 0, 100)
	if got := seqs(back); !slices.Equal(got, []uint64{1, 5, 6}) {
		return fmt.Errorf("before returns seqs %v, want [1 5 6]", got)
	}
	if n := count(t, s, conv, 0); n != 3 {
		return fmt.Errorf("count = %d, want 3", n)
	}
	for _, root := range []uint64{2, 6} {
		replies, _, err := s.ThreadAfter(ctx, conv, root, 0, 10)
		if err != nil {
			t.Fatalf("ThreadAfter: %v", err)
		}
		if len(replies) > 0 {
			return fmt.Errorf("thread under %d returns %v", root, seqs(replies))
		}
	}
	return nil
}
