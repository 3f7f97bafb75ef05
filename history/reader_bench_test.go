package history_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// benchReader is a Reader over an embedded store the history writer has
// filled with 1,000 messages of g_bench (interleaved with another
// conversation's), sent the way the gateway sends them (Nats-Msg-Id and
// origin headers); the writer is stopped, so every page comes from the
// store and is checked against the stream, as a reconnecting client's
// sync is once the store caught up.
func benchReader(b *testing.B) *history.Reader {
	ctx := context.Background()
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		b.Fatal(err)
	}
	for i := range 2000 {
		conv := "g_bench"
		if i%2 == 1 {
			conv = "g_other"
		}
		data := fmt.Appendf(nil, `{"sender":"alice","client_id":"c%d","ts":"2026-11-27T01:39:17.753960963Z","body":{"text":"the quick brown fox jumps over the lazy dog, twice"}}`, i)
		msg := &nats.Msg{Subject: schema.Msg(conv), Data: data, Header: nats.Header{
			schema.HeaderMsgID: []string{fmt.Sprintf("alice:%s:c%d", conv, i)}, schema.HeaderOrigin: []string{"s1"}}}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	store, err := localstore.New(localstore.Config{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = history.NewWriter(history.WriterConfig{}, js, store).Run(wctx); close(done) }()
	cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.AckFloor.Stream >= 2000 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the writer stored up to %d of 2000", info.AckFloor.Stream)
		}
	}
	stop()
	<-done
	st, err := history.NewStream(ctx, js)
	if err != nil {
		b.Fatal(err)
	}
	r, err := history.NewReader(ctx, js, store, st)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkReaderAfter1000 is a reconnecting client's sync of 1,000
// missed messages in pages of protocol.MaxLimit, as natter serve answers
// it: store rows checked against the stream.
func BenchmarkReaderAfter1000(b *testing.B) {
	r := benchReader(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		var after uint64
		for {
			page, more, err := r.After(ctx, "g_bench", after, protocol.MaxLimit)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page)
			if len(page) > 0 {
				after = page[len(page)-1].Seq
			}
			if !more {
				break
			}
		}
		if n != 1000 {
			b.Fatalf("read %d messages, want 1000", n)
		}
	}
}

// BenchmarkReaderBefore50 is a history page of 50 (the newest).
func BenchmarkReaderBefore50(b *testing.B) {
	r := benchReader(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		page, _, err := r.Before(ctx, "g_bench", 0, protocol.DefaultLimit)
		if err != nil || len(page) != protocol.DefaultLimit {
			b.Fatalf("%d messages, %v", len(page), err)
		}
	}
}

// BenchmarkReaderStorm is the read side of a reconnect storm: 1,000
// clients that each missed the newest 100 messages of a conversation sync
// at once, 64 at a time (each caller asks again as soon as it has its
// answer, so no more than 64 syncs are ever in flight). One op is the
// whole storm; ns/sync is per client.
func BenchmarkReaderStorm(b *testing.B) {
	r := benchReader(b)
	ctx := context.Background()
	const clients, callers, missed = 1000, 64, 100
	after := uint64(2*(1000-missed) - 1) // g_bench is every other seq from 1
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			wg.Go(func() {
				for next.Add(1) <= clients {
					page, more, err := r.After(ctx, "g_bench", after, missed)
					if err == nil && (len(page) != missed || more || page[0].Seq != after+2 || page[0].Prev != after) {
						err = fmt.Errorf("page of %d from %d (prev %d), more %v", len(page), page[0].Seq, page[0].Prev, more)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*clients), "ns/sync")
}
