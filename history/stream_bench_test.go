package history

import (
	"context"
	"fmt"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// BenchmarkStreamAfter1000 reads 1,000 missed messages of one conversation
// from the CHAT stream in pages of protocol.MaxLimit, as a reconnecting
// client's sync does for seqs the history store has not caught up with.
// Another conversation's messages are interleaved, so the reads skip.
func BenchmarkStreamAfter1000(b *testing.B) {
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
		body := fmt.Sprintf(`{"sender":"alice","client_id":"c%d","ts":"2026-11-27T01:39:17.753960963Z","body":{"text":"the quick brown fox jumps over the lazy dog, twice"}}`, i)
		if _, err := js.Publish(ctx, schema.Msg(conv), []byte(body)); err != nil {
			b.Fatal(err)
		}
	}
	st, err := NewStream(ctx, js)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		var after uint64
		for {
			page, more, err := st.After(ctx, "g_bench", after, protocol.MaxLimit)
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
