package pushnotify_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
)

// batches collects what a Coalescer flushes.
type batches struct {
	mu  sync.Mutex
	got []pushnotify.Batch
}

func (b *batches) flush(x pushnotify.Batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, x)
}

func (b *batches) take() []pushnotify.Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	got := b.got
	b.got = nil
	return got
}

func newCoalescer(t *testing.T, clock *fakeClock, maxOpen int) (*pushnotify.Coalescer, *batches) {
	t.Helper()
	out := &batches{}
	c, err := pushnotify.NewCoalescer(pushnotify.CoalescerConfig{
		Window: 2 * time.Second, MaxOpen: maxOpen, Flush: out.flush, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, out
}

func add(t *testing.T, c *pushnotify.Coalescer, m pushnotify.Message) {
	t.Helper()
	if err := c.Add(m); err != nil {
		t.Fatalf("Add: %v", err)
	}
}

func TestCoalescerMergesWithinWindow(t *testing.T) {
	clock := newFakeClock()
	c, out := newCoalescer(t, clock, 100)

	add(t, c, pushnotify.Message{User: "u2", Conv: "g1", ConvTitle: "Team", Sender: "Ann", Text: "hi", Seq: 10})
	clock.Advance(500 * time.Millisecond)
	add(t, c, pushnotify.Message{User: "u2", Conv: "g1", ConvTitle: "Team", Sender: "Bob", Text: "yo", Seq: 12})
	add(t, c, pushnotify.Message{User: "u3", Conv: "g1", ConvTitle: "Team", Sender: "Ann", Text: "hi", Seq: 10})
	clock.Advance(1400 * time.Millisecond)
	add(t, c, pushnotify.Message{User: "u2", Conv: "g1", ConvTitle: "Team", Sender: "Cy", Text: "ok", Seq: 15})
	if got := out.take(); len(got) != 0 {
		t.Fatalf("flushed %d batches before the window closed", len(got))
	}

	clock.Advance(100 * time.Millisecond) // 2 s after the first message
	got := out.take()
	if len(got) != 1 {
		t.Fatalf("flushed %d batches, want u2's: %+v", len(got), got)
	}
	u2 := got[0]
	if u2.User != "u2" || u2.Count != 3 || u2.FirstSeq != 10 || u2.LastSeq != 15 || u2.Last.Sender != "Cy" {
		t.Errorf("u2 batch = %+v, want 3 messages 10..15, last from Cy", u2)
	}
	n := u2.Notification(pushnotify.PlatformAPNs, "tok", false)
	if n.Title != "Team" || n.Body != "3 new messages in Team" || n.Count != 3 || n.Seq != 15 || n.Conv != "g1" || n.CollapseID != "g1" {
		t.Errorf("notification = %+v", n)
	}
	clock.Advance(500 * time.Millisecond) // u3's window opened 500 ms later
	if got := out.take(); len(got) != 1 || got[0].User != "u3" || got[0].Count != 1 {
		t.Errorf("u3 batch = %+v, want one message", got)
	}

	// The next message opens a new window.
	add(t, c, pushnotify.Message{User: "u2", Conv: "g1", Seq: 16})
	clock.Advance(1999 * time.Millisecond)
	if got := out.take(); len(got) != 0 {
		t.Fatalf("flushed %d batches early", len(got))
	}
	clock.Advance(time.Millisecond)
	if got := out.take(); len(got) != 1 || got[0].FirstSeq != 16 {
		t.Fatalf("second window flushed %+v", got)
	}
	if c.Open() != 0 || clock.Pending() != 0 {
		t.Errorf("open windows %d, timers %d after every flush", c.Open(), clock.Pending())
	}
}

func TestBatchNotificationText(t *testing.T) {
	tests := []struct {
		name      string
		batch     pushnotify.Batch
		private   bool
		wantTitle string
		wantBody  string
	}{
		{"direct", pushnotify.Batch{Count: 1, Last: pushnotify.Message{Sender: "Ann", Text: "hi"}}, false, "Ann", "hi"},
		{"group", pushnotify.Batch{ConvTitle: "Team", Count: 1, Last: pushnotify.Message{Sender: "Ann", Text: "hi"}}, false, "Team", "Ann: hi"},
		{"private", pushnotify.Batch{ConvTitle: "Team", Count: 1, Last: pushnotify.Message{Sender: "Ann", Text: "secret"}}, true, "Team", "New message"},
		{"several direct", pushnotify.Batch{Count: 4, Last: pushnotify.Message{Sender: "Ann", Text: "hi"}}, true, "Ann", "4 new messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.batch.Notification(pushnotify.PlatformFCM, "tok", tt.private)
			if n.Title != tt.wantTitle || n.Body != tt.wantBody || n.Private != tt.private || n.Token != "tok" || n.Platform != "fcm" {
				t.Errorf("got %+v, want title %q body %q", n, tt.wantTitle, tt.wantBody)
			}
		})
	}
}

func TestCoalescerBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	c, out := newCoalescer(t, clock, 2)

	add(t, c, pushnotify.Message{User: "u1", Conv: "c1", Seq: 1})
	add(t, c, pushnotify.Message{User: "u2", Conv: "c1", Seq: 2})
	add(t, c, pushnotify.Message{User: "u1", Conv: "c1", Seq: 3}) // merges, no new window
	add(t, c, pushnotify.Message{User: "u3", Conv: "c1", Seq: 4}) // evicts u1's window
	got := out.take()
	if len(got) != 1 || got[0].User != "u1" || got[0].Count != 2 {
		t.Fatalf("early flush = %+v, want u1's window with 2 messages", got)
	}
	if c.Open() != 2 {
		t.Errorf("open windows = %d, want 2", c.Open())
	}
	clock.Advance(2 * time.Second)
	if got := out.take(); len(got) != 2 {
		t.Fatalf("flushed %+v, want u2 and u3 once each (the evicted timer must not fire)", got)
	}
}

func TestCoalescerStop(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	out := &batches{}
	// The real clock: Stop must leave no timer goroutine behind.
	c, err := pushnotify.NewCoalescer(pushnotify.CoalescerConfig{Window: time.Hour, Flush: out.flush})
	if err != nil {
		t.Fatal(err)
	}
	add(t, c, pushnotify.Message{User: "u1", Conv: "c1", Seq: 1})
	add(t, c, pushnotify.Message{User: "u2", Conv: "c1", Seq: 2})
	c.Stop()
	if got := out.take(); len(got) != 2 {
		t.Fatalf("Stop flushed %d batches, want the 2 open windows", len(got))
	}
	if err := c.Add(pushnotify.Message{User: "u1", Conv: "c1"}); !errors.Is(err, pushnotify.ErrStopped) {
		t.Fatalf("Add after Stop = %v, want ErrStopped", err)
	}
	c.Stop() // idempotent
}

func TestCoalescerRealClockConcurrent(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	var mu sync.Mutex
	total := 0
	c, err := pushnotify.NewCoalescer(pushnotify.CoalescerConfig{
		Window: 5 * time.Millisecond, MaxOpen: 8,
		Flush: func(b pushnotify.Batch) { mu.Lock(); total += b.Count; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				_ = c.Add(pushnotify.Message{User: string(rune('a' + g)), Conv: string(rune('a' + i%20)), Seq: uint64(i)})
			}
		})
	}
	wg.Wait()
	c.Stop()
	if total != 2000 {
		t.Fatalf("flushed %d messages, want all 2000", total)
	}
}

// The one notification of a message request says so and never carries
// text, private or not.
func TestRequestNotificationSaysSo(t *testing.T) {
	b := pushnotify.Batch{User: "alice", Conv: "d_x", Count: 1, FirstSeq: 3, LastSeq: 3,
		Last: pushnotify.Message{User: "alice", Conv: "d_x", Sender: "mallory", Text: "buy now", Seq: 3, Request: true}}
	for _, private := range []bool{false, true} {
		n := b.Notification(pushnotify.PlatformFCM, "tok", private)
		if n.Body != "New message request" || n.Title != "mallory" {
			t.Errorf("private %v: %q / %q", private, n.Title, n.Body)
		}
	}
}
