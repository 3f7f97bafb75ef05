package fanout

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// BenchmarkDeliver publishes one message frame to the subjects of 10,000
// members, as the fan-out does per message, to a subscriber standing in for
// the gateways; one op is one message to every member, waited for until the
// subscriber has all of them. "origin=all" is the old header on every
// publish, "origin=sender" the header on the sender's subject only.
func BenchmarkDeliver(b *testing.B) {
	srv := natstest.Start(b)
	nc, _ := natstest.Connect(b, srv)
	sub, _ := natstest.Connect(b, srv)
	var got atomic.Int64
	s, err := sub.Subscribe("chat.user.*.msg", func(*nats.Msg) { got.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	_ = s.SetPendingLimits(-1, -1)
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	const members = 10_000
	subjects := make([]string, members)
	for i := range subjects {
		subjects[i] = schema.User(fmt.Sprintf("user-%d", i), schema.EventMessage)
	}
	frame := []byte(`{"type":"message","conv":"g_AbCdEfGhIjKlMnOpQrStUv","seq":123456789,"sender":"user-0","client_id":"5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11","ts":"2026-11-27T01:39:17.753960963Z","body":{"text":"the quick brown fox jumps over the lazy dog"}}`)
	f := &Fanout{nc: nc}
	for _, tc := range []struct{ name, originSubj string }{{"origin=all", ""}, {"origin=sender", subjects[0]}} {
		b.Run(tc.name, func(b *testing.B) {
			got.Store(0)
			var want int64
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if err := f.deliverFrom(subjects, frame, "session-1", tc.originSubj); err != nil {
					b.Fatal(err)
				}
				want += members
				for got.Load() < want {
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
