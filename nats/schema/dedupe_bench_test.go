package schema_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// BenchmarkDedupeWindowBytes measures what JetStream's duplicate window
// costs per message it remembers: it stores dedupeBenchMsgs messages of
// 1,000 direct conversations into an embedded CHAT stream, once with the
// gateway's Nats-Msg-Id (<sender>:<conv>:<client_id>, a UUID), once with
// 22-character ids and once without any, and reports the growth of the
// live heap divided by the messages (B/msg-live). The last variant has
// JetStream's window (the fast one) shorter than the run: its entries are
// gone. Run it with -benchtime=1x: each variant is one fill whatever b.N
// is.
func BenchmarkDedupeWindowBytes(b *testing.B) {
	gatewayID := func(i int) string {
		return fmt.Sprintf("bench-a1b2c3-u%d:d_%016x:%08x-4b1e-4c7d-9a57-%012x", i%2000, i%1000, i, i)
	}
	for _, v := range []struct {
		name string
		id   func(i int) string
		fast time.Duration // JetStream's own window
	}{
		{"none", nil, time.Hour},
		{"gateway-id", gatewayID, time.Hour},
		// A fixed-size id of 22 characters (128 bits, base64url), for
		// comparison: what shorter ids would save per entry.
		{"22-char-id", func(i int) string { return fmt.Sprintf("%022x", i) }, time.Hour},
		// JetStream's window shorter than the fill and the wait after it:
		// what is left once the messages are older than it.
		{"gateway-id-past-fast-window", gatewayID, 3 * time.Second},
	} {
		b.Run(v.name, func(b *testing.B) {
			heap := dedupeFill(b, v.id, v.fast)
			b.ReportMetric(float64(heap)/dedupeBenchMsgs, "B/msg-live")
		})
	}
}

const dedupeBenchMsgs = 200_000

// dedupeFill stores dedupeBenchMsgs messages into a fresh CHAT stream
// with JetStream's duplicate window fast, waits 12 s and returns how much
// the live heap grew.
func dedupeFill(b *testing.B, id func(int) string, fast time.Duration) int64 {
	s := natstest.Start(b)
	_, js := natstest.Connect(b, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{Duplicates: time.Hour, FastDuplicates: fast}); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"sender":"u1","client_id":"c","ts":"2026-12-02T13:00:00.000000000Z","body":{"text":"0123456789012345678901234567890123456789"}}`)
	before := liveHeap()
	var futures []jetstream.PubAckFuture
	for i := range dedupeBenchMsgs {
		m := &nats.Msg{Subject: schema.Msg(fmt.Sprintf("d_%016x", i%1000)), Data: body, Header: nats.Header{}}
		if id != nil {
			m.Header.Set(schema.HeaderMsgID, id(i))
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
		if len(futures) == 4000 {
			waitAcks(b, futures)
			futures = futures[:0]
		}
	}
	waitAcks(b, futures)
	// The filestore's block caches expire after a few seconds of no use.
	time.Sleep(12 * time.Second)
	return liveHeap() - before
}

func waitAcks(b *testing.B, fs []jetstream.PubAckFuture) {
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		case <-time.After(time.Minute):
			b.Fatal("no ack")
		}
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
