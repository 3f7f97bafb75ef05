package schema_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// BenchmarkChatPublish is the stream write of one message, the unit cost
// docs/scaling.md's capacity model counts per replica: a send's envelope
// (about the size a gateway stores for a short text) with its Nats-Msg-Id,
// published to CHAT with an ack, 256 in flight, into 1,000 conversations.
// R1 is one embedded server; R3 a 3-node in-process cluster (the stream
// replicated to all three, file storage). It reports the process's CPU
// per message (cpu-µs/msg, user + system from getrusage: the servers and
// the publishing client together, so R3 includes all three replicas) and
// the rate.
//
//	go test -run '^$' -bench ChatPublish -benchtime 100000x ./nats/schema/
func BenchmarkChatPublish(b *testing.B) {
	for _, r := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", r), func(b *testing.B) {
			var js jetstream.JetStream
			if r == 1 {
				s := natstest.Start(b)
				_, js = natstest.Connect(b, s)
			} else {
				_, js = natstest.StartCluster(b, r).Connect(b)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := schema.Ensure(ctx, js, schema.Config{Replicas: r}); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"sender":"u1","client_id":"0f1e2d3c-4b5a-4697-8877-665544332211","ts":"2026-12-02T13:00:00.000000000Z","kind":"text","body":{"text":"a short message of about the usual length"}}`)
			subjects := make([]string, 1000)
			for i := range subjects {
				subjects[i] = schema.Msg(fmt.Sprintf("d_%016x", i))
			}
			futures := make([]jetstream.PubAckFuture, 0, 256)
			cpu0, t0 := cpuTime(b), time.Now()
			b.ResetTimer()
			for i := range b.N {
				m := &nats.Msg{Subject: subjects[i%len(subjects)], Data: body, Header: nats.Header{}}
				m.Header.Set(schema.HeaderMsgID, fmt.Sprintf("u1:%d:%d", r, i))
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					b.Fatal(err)
				}
				futures = append(futures, f)
				if len(futures) == cap(futures) {
					waitAcks(b, futures)
					futures = futures[:0]
				}
			}
			waitAcks(b, futures)
			b.StopTimer()
			cpu, wall := cpuTime(b)-cpu0, time.Since(t0)
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "msgs/s")
		})
	}
}

// cpuTime is the process's user and system CPU so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
