package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

func newTestSession(t *testing.T, f *fakeServer, opts SessionOptions) *Session {
	t.Helper()
	opts.URLs = []string{f.url()}
	opts.Options.Token = goodToken
	s, err := NewSession(testCtx(t), opts)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSessionSendExpires checks that a send the server keeps refusing
// with a retryable code is given up after SendExpiry with ErrSendExpired,
// not retried until the caller's context ends (past the server's
// de-duplication window a retry could store the message twice).
func TestSessionSendExpires(t *testing.T) {
	f := newFakeServer(t)
	s := newTestSession(t, f, SessionOptions{SendExpiry: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Send(ctx, "down", "c-1", map[string]any{"text": "hi"})
	if !errors.Is(err, ErrSendExpired) {
		t.Fatalf("Send to a conversation that stays unavailable: %v, want ErrSendExpired", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Send gave up after %v, want about SendExpiry", took)
	}
	if n := f.count("send"); n < 2 {
		t.Fatalf("the server saw %d sends, want retries before giving up", n)
	}
	if got := f.last("send"); got["client_id"] != "c-1" {
		t.Fatalf("retry had client_id %v, want the original c-1", got["client_id"])
	}
}

// TestSessionSendMarksResends checks that Send marks every attempt after
// the first as a resend (the server looks only those up past JetStream's
// short duplicate window) and never the first.
func TestSessionSendMarksResends(t *testing.T) {
	f := newFakeServer(t)
	s := newTestSession(t, f, SessionOptions{SendExpiry: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Send(ctx, "down", "c-1", map[string]any{"text": "hi"}); !errors.Is(err, ErrSendExpired) {
		t.Fatalf("Send: %v, want ErrSendExpired", err)
	}
	f.mu.Lock()
	var sends []map[string]any
	for _, fr := range f.frames {
		var m map[string]any
		if json.Unmarshal(fr, &m) == nil && m["type"] == "send" {
			sends = append(sends, m)
		}
	}
	f.mu.Unlock()
	if len(sends) < 2 {
		t.Fatalf("%d sends, want retries", len(sends))
	}
	for i, m := range sends {
		if _, marked := m["resend"]; marked != (i > 0) || (i > 0 && m["resend"] != true) {
			t.Fatalf("attempt %d sent %v: want resend only (and true) on attempts after the first", i, m)
		}
	}
}

// TestSessionSendCallerDeadline checks that the caller's own deadline is
// reported as such, not as an expiry.
func TestSessionSendCallerDeadline(t *testing.T) {
	f := newFakeServer(t)
	s := newTestSession(t, f, SessionOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, "down", "c-2", map[string]any{"text": "hi"})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrSendExpired) {
		t.Fatalf("Send with the caller's deadline passing: %v, want context.DeadlineExceeded", err)
	}
}

// TestSessionSendAcked checks the ordinary path still answers the ack.
func TestSessionSendAcked(t *testing.T) {
	f := newFakeServer(t)
	s := newTestSession(t, f, SessionOptions{})
	ack, err := s.Send(testCtx(t), "k1", "", map[string]any{"text": "hi"})
	if err != nil || ack.Seq == 0 {
		t.Fatalf("Send: %+v, %v", ack, err)
	}
}

// TestSessionGaps checks the contiguous point a Session keeps per
// conversation: pushes whose prev it holds move it on, a push whose prev
// it lacks is a gap until the missing items come (from sync or late),
// and duplicates are delivered once.
func TestSessionGaps(t *testing.T) {
	type item struct {
		seq, prev uint64
		live      bool
	}
	tests := []struct {
		name     string
		items    []item
		wantGaps []bool
		wantHeld uint64
		wantN    int // delivered to OnMessage
	}{
		{"in order", []item{{1, 0, true}, {4, 1, true}, {9, 4, true}}, []bool{false, false, false}, 9, 3},
		{"lost push", []item{{1, 0, true}, {9, 4, true}}, []bool{false, true}, 1, 2},
		{"lost push fetched by sync", []item{{1, 0, true}, {9, 4, true}, {4, 1, false}, {9, 4, false}}, []bool{false, true, false, false}, 9, 3},
		{"two gaps closed by one item", []item{{9, 4, true}, {12, 9, true}, {4, 0, false}}, []bool{true, true, false}, 12, 3},
		{"duplicate push", []item{{1, 0, true}, {1, 0, true}, {5, 2, true}, {5, 2, true}}, []bool{false, false, true, false}, 1, 2},
		{"first item of a conversation", []item{{7, 0, true}}, []bool{false}, 7, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			s := &Session{convs: map[string]*convState{}, opts: SessionOptions{OnMessage: func(*protocol.Message, bool) { n++ }}}
			for i, it := range tt.items {
				gap := s.deliver(&protocol.Message{Conv: "c", Seq: it.seq, Prev: it.prev}, it.live)
				if gap != tt.wantGaps[i] {
					t.Fatalf("item %d (seq %d prev %d): gap %v, want %v", i, it.seq, it.prev, gap, tt.wantGaps[i])
				}
			}
			if held := s.convs["c"].held; held != tt.wantHeld || n != tt.wantN {
				t.Fatalf("held %d, delivered %d; want %d, %d", held, n, tt.wantHeld, tt.wantN)
			}
		})
	}
}

// TestSessionResyncPush checks that a resync push makes the session sync
// again at once, on the same connection, without a periodic re-sync.
func TestSessionResyncPush(t *testing.T) {
	f := newFakeServer(t)
	s := newTestSession(t, f, SessionOptions{})
	c, err := s.Client(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// One sync per conversation with something new (the fake lists two).
	synced, listed := f.count(protocol.TypeSync), f.count(protocol.TypeConversations)
	if synced == 0 {
		t.Fatal("no sync after connecting")
	}
	if _, err := c.Request(testCtx(t), map[string]any{"type": "push", "event": protocol.TypeResync, "n": 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.count(protocol.TypeSync) <= synced {
		if time.Now().After(deadline) {
			t.Fatal("no sync within 5 s of a resync push")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.count(protocol.TypeConversations) <= listed || s.Connects() != 1 {
		t.Fatalf("conversations asked %d times, %d connects: want a re-sync on the same connection", f.count(protocol.TypeConversations), s.Connects())
	}
}
