package localstore_test

import (
	"context"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// BenchmarkAfter1000 reads 1,000 missed messages of one conversation from
// the store in pages of protocol.MaxLimit, as a reconnecting client's sync
// does once the messages have left the stream's tail. Another
// conversation's messages are interleaved.
func BenchmarkAfter1000(b *testing.B) {
	s := openBench(b, true)
	ctx := context.Background()
	batch := make([]*protocol.Message, 0, 2000)
	for seq := uint64(1); seq <= 2000; seq++ {
		conv := "conv-1"
		if seq%2 == 0 {
			conv = "conv-2"
		}
		batch = append(batch, benchMsg(conv, seq))
	}
	if err := s.Append(ctx, batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		var after uint64
		for {
			page, more, err := s.After(ctx, "conv-1", after, protocol.MaxLimit)
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
