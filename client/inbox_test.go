package client

import (
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// TestInboxOrdersByTime: List orders by the time of each item's last,
// as the server does, not by its seq (seqs of conversations in different
// partition streams do not compare); equal times by id, no last last.
func TestInboxOrdersByTime(t *testing.T) {
	in := NewInbox("alice")
	for _, c := range []*protocol.Conversation{
		{Conv: "busy", Last: &protocol.Last{Seq: 900, TS: "2026-12-03T10:00:00.5Z"}},
		{Conv: "newest", Last: &protocol.Last{Seq: 3, TS: "2026-12-03T10:00:01Z"}},
		{Conv: "old", Last: &protocol.Last{Seq: 40, TS: "2026-12-03T10:00:00.25Z"}},
		{Conv: "also-old", Last: &protocol.Last{Seq: 7, TS: "2026-12-03T10:00:00.250Z"}},
		{Conv: "empty"},
	} {
		in.items[c.Conv] = c
	}
	var got []string
	for _, c := range in.List() {
		got = append(got, c.Conv)
	}
	want := []string{"newest", "busy", "also-old", "old", "empty"}
	if len(got) != len(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}
