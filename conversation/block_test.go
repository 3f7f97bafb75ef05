package conversation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBlockList(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	if err := s.Block(ctx, "alice", "alice"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("block self: %v, want ErrBadRequest", err)
	}
	for _, u := range []string{"mallory", "eve", "mallory"} {
		if err := s.Block(ctx, "alice", u); err != nil {
			t.Fatal(err)
		}
	}
	users, rev, err := s.Blocked(ctx, "alice")
	if err != nil || !slices.Equal(users, []string{"eve", "mallory"}) || rev == 0 {
		t.Fatalf("Blocked = %v rev %d, %v", users, rev, err)
	}
	if ok, err := s.HasBlocked(ctx, "alice", "eve"); !ok || err != nil {
		t.Fatalf("HasBlocked(alice, eve) = %v, %v", ok, err)
	}
	if ok, err := s.HasBlocked(ctx, "eve", "alice"); ok || err != nil {
		t.Fatalf("HasBlocked(eve, alice) = %v, %v: blocking is one way", ok, err)
	}
	if err := s.Unblock(ctx, "alice", "eve"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unblock(ctx, "alice", "nobody"); err != nil {
		t.Fatal(err)
	}
	if users, _, _ := s.Blocked(ctx, "alice"); !slices.Equal(users, []string{"mallory"}) {
		t.Fatalf("after unblock: %v", users)
	}
}

func TestBlockListBounded(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, MaxBlocked)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < MaxBlocked; i += 8 {
				if err := s.Block(ctx, "alice", fmt.Sprintf("u%04d", i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	users, _, _ := s.Blocked(ctx, "alice")
	if len(users) != MaxBlocked || !slices.IsSorted(users) {
		t.Fatalf("%d users blocked concurrently, sorted %v; want %d", len(users), slices.IsSorted(users), MaxBlocked)
	}
	if err := s.Block(ctx, "alice", "one-more"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("block past the bound: %v, want ErrTooLarge", err)
	}
	if err := s.Block(ctx, "alice", "u0001"); err != nil {
		t.Fatalf("blocking again a blocked user at the bound: %v", err)
	}
}

func TestWatchBlocks(t *testing.T) {
	s, _ := store(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Block(ctx, "bob", "old"); err != nil {
		t.Fatal(err)
	}
	got := make(chan BlockChange, 10)
	if err := s.WatchBlocks(ctx, func(c BlockChange) { got <- c }); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(ctx, "alice", "eve"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.User != "alice" || !slices.Equal(c.Users, []string{"eve"}) || c.Rev == 0 {
			t.Fatalf("change %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen")
	}
	select {
	case c := <-got:
		t.Fatalf("a change from before the watch came: %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNoteAddedRing(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s, _ := store(t, Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ctx := context.Background()
	for i := range 3 {
		if err := s.NoteAdded(ctx, "bob", 3, time.Hour); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if err := s.NoteAdded(ctx, "bob", 3, time.Hour); !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "user bob was added to too many conversations in the last hour") {
		t.Fatalf("fourth add within the hour: %v, want ErrRateLimited naming bob and the hour", err)
	}
	if err := s.NoteAdded(ctx, "carol", 3, time.Hour); err != nil {
		t.Fatalf("another user's bound is separate: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if err := s.NoteAdded(ctx, "bob", 3, time.Hour); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	e, err := s.kv.Get(ctx, addRingKey("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value()) > 64 {
		t.Fatalf("ring holds expired times: %s", e.Value())
	}
}

func TestCreateGroupBounded(t *testing.T) {
	s, _ := store(t, Config{MaxAddBatch: 3})
	ctx := context.Background()
	if _, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"a", "b", "c", "d"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("create naming 4 users past a batch of 3: %v, want ErrBadRequest", err)
	}
	if _, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
}
