package scyllastore_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/protocol"
)

// queryLog records the store's queries. It holds each answer of the
// buckets index for hold before the store sees it (the observer runs in
// the query's goroutine) and records when it let it through.
type queryLog struct {
	hold     time.Duration
	mu       sync.Mutex
	qs       []gocql.ObservedQuery
	released time.Time
}

func (l *queryLog) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if strings.Contains(q.Statement, "FROM buckets") {
		time.Sleep(l.hold)
		defer func() {
			l.mu.Lock()
			if l.released.IsZero() {
				l.released = time.Now()
			}
			l.mu.Unlock()
		}()
	}
	l.mu.Lock()
	l.qs = append(l.qs, q)
	l.mu.Unlock()
}

// A page from a seq the client named (scroll-back's before, sync's after)
// reads that seq's bucket at the same time as the buckets index, not one
// round trip after it: a page of 50 takes the index, then the first
// bucket, then the next ones, and each round trip shows in the tail.
func TestPageReadsItsBucketWithTheIndex(t *testing.T) {
	log := &queryLog{}
	cfg := config(t, 10)
	migrate(t, cfg)
	s := open(t, scyllastore.WithObserver(cfg, log))
	ctx := context.Background()
	var batch []*protocol.Message
	for seq := uint64(1); seq <= 100; seq++ {
		batch = append(batch, &protocol.Message{Conv: "c", Seq: seq, Sender: "u1", ClientID: "c" + strconv.FormatUint(seq, 10), TS: "2026-01-02T03:04:05Z", Kind: protocol.KindMessage, Body: []byte(`{"text":"x"}`)})
	}
	if err := s.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		read   func() ([]*protocol.Message, bool, error)
		bucket int64
		first  uint64
	}{
		{"before 55", func() ([]*protocol.Message, bool, error) { return s.Before(ctx, "c", 55, 20) }, 5, 35},
		{"after 55", func() ([]*protocol.Message, bool, error) { return s.After(ctx, "c", 55, 20) }, 5, 56},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log.mu.Lock()
			log.qs, log.released, log.hold = nil, time.Time{}, time.Second
			log.mu.Unlock()
			page, more, err := tc.read()
			if err != nil || len(page) != 20 || !more || page[0].Seq != tc.first {
				t.Fatalf("%d rows from %v, more %v, %v", len(page), page, more, err)
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			log.hold = 0
			var rows *gocql.ObservedQuery
			for i, q := range log.qs {
				if strings.Contains(q.Statement, "FROM messages") && len(q.Values) > 1 && q.Values[1] == tc.bucket && rows == nil {
					rows = &log.qs[i]
				}
			}
			if log.released.IsZero() || rows == nil {
				t.Fatalf("no index read or no read of bucket %d among %d queries", tc.bucket, len(log.qs))
			}
			// Held a second, the index's answer came long after the
			// bucket's read began, unless that read waited for it.
			if !rows.Start.Before(log.released) {
				t.Fatalf("bucket %d read %s after the index answered", tc.bucket, rows.Start.Sub(log.released))
			}
		})
	}
}
