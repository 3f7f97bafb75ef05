package schema_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// BenchmarkConsumerBacklog is what the server spends to hand a CHAT
// consumer its next message when it is behind (a burst, a slow writer):
// 1,000 conversations, each with a membership event, then 4×b.N messages
// spread over them; a durable pull consumer reads its share in batches of
// 500 and acks each. "partition" is a fan-out partition's consumer (a
// quarter of the messages), "all" one that reads every message and
// membership event (pushnotify, the events writer); "filters=2" is how
// they were configured before (two filter subjects each), "filters=1" is
// the one wildcard they have now (PartitionFilters, StoredWildcard). The
// same stored messages match both. It reports the process's CPU per
// delivered message (server and client together).
//
//	go test -run '^$' -bench ConsumerBacklog -benchtime 5000x ./nats/schema/
func BenchmarkConsumerBacklog(b *testing.B) {
	cases := []struct {
		name    string
		filters []string
		share   int // messages of every 4 published that it reads
	}{
		{"partition/filters=2", []string{"chat.msg.*.0", "chat.member.*.0"}, 1},
		{"partition/filters=1", schema.PartitionFilters(0), 1},
		{"all/filters=2", []string{schema.StoredMsgWildcard, schema.StoredMemberWildcard}, 4},
		{"all/filters=1", []string{schema.StoredWildcard}, 4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := natstest.Start(b)
			_, js := natstest.Connect(b, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
				b.Fatal(err)
			}
			l, err := schema.ReadLayout(ctx, js)
			if err != nil {
				b.Fatal(err)
			}
			// Conversations of partition 0 and of the others, 1 in 4 each
			// way, so that 4×b.N messages round-robin give partition 0 b.N.
			var p0, rest []string
			for i := 0; len(p0) < 250 || len(rest) < 750; i++ {
				conv := fmt.Sprintf("d_%016x", i)
				if l.Partition(conv) == 0 {
					if len(p0) < 250 {
						p0 = append(p0, conv)
					}
				} else if len(rest) < 750 {
					rest = append(rest, conv)
				}
			}
			body := []byte(`{"sender":"u1","client_id":"0f1e2d3c-4b5a-4697-8877-665544332211","ts":"2026-12-02T13:00:00.000000000Z","kind":"text","body":{"text":"a short message of about the usual length"}}`)
			var futures []jetstream.PubAckFuture
			publish := func(subj string) {
				f, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: body})
				if err != nil {
					b.Fatal(err)
				}
				if futures = append(futures, f); len(futures) == 256 {
					waitAcks(b, futures)
					futures = futures[:0]
				}
			}
			for _, conv := range append(append([]string{}, p0...), rest...) {
				publish(schema.Member(conv))
			}
			for i := range 4 * b.N {
				if i%4 == 0 {
					publish(schema.Msg(p0[(i/4)%len(p0)]))
				} else {
					publish(schema.Msg(rest[(i/4*3+i%4-1)%len(rest)]))
				}
			}
			waitAcks(b, futures)
			want := c.share*b.N + c.share*250 // the messages and the membership events it matches
			cons, err := js.CreateOrUpdateConsumer(ctx, schema.StreamChat, jetstream.ConsumerConfig{
				Durable: "bench", FilterSubjects: c.filters, AckPolicy: jetstream.AckExplicitPolicy,
				MaxAckPending: 20_000, DeliverPolicy: jetstream.DeliverAllPolicy,
			})
			if err != nil {
				b.Fatal(err)
			}
			cpu0, t0 := cpuTime(b), time.Now()
			b.ResetTimer()
			got := 0
			for got < want {
				batch, err := cons.Fetch(min(500, want-got), jetstream.FetchMaxWait(5*time.Second))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for m := range batch.Messages() {
					if err := m.Ack(); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if batch.Error() != nil {
					b.Fatal(batch.Error())
				}
				if n == 0 {
					b.Fatalf("read %d of %d", got, want)
				}
				got += n
			}
			b.StopTimer()
			if got != want {
				b.Fatalf("read %d, want %d", got, want)
			}
			cpu, wall := cpuTime(b)-cpu0, time.Since(t0)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(got)/1e3, "cpu-µs/msg")
			b.ReportMetric(float64(got)/wall.Seconds(), "msgs/s")
		})
	}
}
