package history_test

import (
	"context"
	"sync"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// appendingStore is the store with the history writer appending rows
// while a count is read: the first Count appends the held rows after it
// counted, as a writer racing the reader would.
type appendingStore struct {
	history.Store
	once sync.Once
	held []*protocol.Message
}

func (s *appendingStore) Count(ctx context.Context, conv string, after uint64) (uint64, error) {
	n, err := s.Store.Count(ctx, conv, after)
	s.once.Do(func() {
		if aerr := s.Store.Append(ctx, s.held); aerr != nil {
			err = aerr
		}
	})
	return n, err
}

// TestCountAfterWhileTheWriterAppends checks that unread counts neither
// lose nor double the rows the writer appends during the count.
func TestCountAfterWhileTheWriterAppends(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.say("c", string(rune('a'+i)))
	}
	all, _, err := mustStream(t, e).After(ctxT(t), "c", 0, 100)
	if err != nil || len(all) != 10 {
		t.Fatalf("stream rows: %d, %v", len(all), err)
	}
	if err := e.store.Append(ctxT(t), all[:6]); err != nil {
		t.Fatal(err)
	}
	st, err := history.NewStream(ctxT(t), e.js)
	if err != nil {
		t.Fatal(err)
	}
	racing := &appendingStore{Store: e.store, held: all[6:8]}
	r, err := history.NewReader(ctxT(t), e.js, racing, st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.CountAfter(ctxT(t), "c", 0, 1000)
	if err != nil || n != 10 {
		t.Fatalf("CountAfter with the writer appending = %d, %v; want 10", n, err)
	}
}
