package gateway

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

// BenchmarkFindSent is the cost of one marked resend's lookup whose
// original is not there (the whole window read): a conversation with n
// messages in the window, among 100 times as many of other conversations,
// in an embedded server.
func BenchmarkFindSent(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("conv-msgs-%d", n), func(b *testing.B) {
			ns := natstest.Start(b)
			_, js := natstest.Connect(b, ns)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := schema.Ensure(ctx, js, schema.Config{Duplicates: 10 * time.Minute, FastDuplicates: time.Second}); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"sender":"u1","client_id":"c","ts":"2026-12-02T13:00:00.000000000Z","body":{"text":"0123456789012345678901234567890123456789"}}`)
			var futures []jetstream.PubAckFuture
			for i := range 101 * n {
				conv := fmt.Sprintf("other%d", i%100)
				if i%101 == 0 {
					conv = "busy"
				}
				m := &nats.Msg{Subject: schema.Msg(conv), Data: body, Header: nats.Header{}}
				m.Header.Set(schema.HeaderMsgID, fmt.Sprintf("u1:%s:%d", conv, i))
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					b.Fatal(err)
				}
				if futures = append(futures, f); len(futures) == 1000 || i == 101*n-1 {
					for _, f := range futures {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							b.Fatal(err)
						}
					}
					futures = futures[:0]
				}
			}
			s := &Server{js: js, cfg: Config{Now: time.Now}}
			b.ResetTimer()
			cpu0, ops := cpuTime(), 0
			for b.Loop() {
				_, _, found, err := s.findSent(ctx, "busy", "u1:busy:none", true)
				if err != nil || found {
					b.Fatal(found, err)
				}
				ops++
			}
			// The box is shared: CPU time (the process's, NATS included)
			// says more than wall time.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(ops), "cpu-µs/op")
		})
	}
}
