package attachments_test

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/protocol"
)

// An attachment of a disappearing message: its URLs expire no later than
// the message, once it expired Files hands out none, and the sweep
// deletes its bytes and gives them back to the quota; another attachment
// stays.
func TestAttachmentsDisappearWithTheirMessage(t *testing.T) {
	s, store, clk := newService(t, attachments.Config{GetExpiry: 10 * time.Minute})
	ctx := t.Context()
	gone := upload(t, s, store, "alice", "text/plain", []byte("gone"))
	kept := upload(t, s, store, "alice", "text/plain", []byte("kept"))
	at := protocol.FormatTime(clk.Now().Add(time.Minute))
	files, err := s.Attach(ctx, "alice", "c1", []string{gone}, at)
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Expires != at {
		t.Fatalf("URL of a message expiring at %s expires %s", at, files[0].Expires)
	}
	if _, err := s.Attach(ctx, "alice", "c1", []string{kept}, ""); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute)
	if got, _ := s.Files(ctx, "c1", []string{gone, kept}); len(got) != 1 || got[0].ID != kept {
		t.Fatalf("Files after expiry = %+v; want only %s", got, kept)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if _, err := store.Stat(ctx, gone); err == nil {
		t.Fatal("the expired attachment's bytes are still stored")
	}
	if _, err := store.Stat(ctx, kept); err != nil {
		t.Fatalf("the other attachment went: %v", err)
	}
	if n, _ := s.Used(ctx, "alice"); n != int64(len("kept")) {
		t.Fatalf("%d bytes used after the sweep", n)
	}
}
