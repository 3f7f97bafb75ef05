package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// benchClient is a thin WebSocket client of a benchmark: it writes frames
// encoded once and only counts what comes back (acks, pushes, errors), so
// that what the benchmark measures is the gateway's work, not a client's
// decoding.
type benchClient struct {
	gws.BuiltinEventHandler
	conn    *gws.Conn
	welcome chan struct{}
	acks    chan struct{}
	pushes  *atomic.Int64
	errs    *atomic.Int64
}

func (c *benchClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	data := m.Bytes()
	switch {
	case bytes.HasPrefix(data, []byte(`{"type":"welcome"`)):
		close(c.welcome)
	case bytes.HasPrefix(data, []byte(`{"type":"ack"`)):
		c.acks <- struct{}{}
	case bytes.HasPrefix(data, []byte(`{"type":"message"`)):
		c.pushes.Add(1)
	case bytes.HasPrefix(data, []byte(`{"type":"error"`)):
		c.errs.Add(1)
		c.acks <- struct{}{}
	}
	_ = m.Close()
}

// benchDial connects user to h's gateway with a token in the
// Authorization header.
func benchDial(b *testing.B, h *harness, user string, pushes, errs *atomic.Int64) *benchClient {
	b.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	c := &benchClient{welcome: make(chan struct{}), acks: make(chan struct{}, 64), pushes: pushes, errs: errs}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{
		Addr:          h.url,
		RequestHeader: http.Header{"Authorization": []string{"Bearer " + tok}},
	})
	if err != nil {
		b.Fatalf("dial as %s: %v", user, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	b.Cleanup(func() { _ = conn.NetConn().Close() })
	// Registered, and so subscribed to its pushes, once welcomed.
	select {
	case <-c.welcome:
	case <-time.After(30 * time.Second):
		b.Fatalf("%s not welcomed in 30 s", user)
	}
	return c
}

// BenchmarkSend measures a send through the gateway over real sockets and
// an embedded JetStream: the frame read and decoded, the membership view
// (kept, so no read), the publish with its precondition and PubAck, the
// ack frame written; and, to the recipient's connection on the same
// gateway, the delivery of the pushed frame from its NATS subject. One op
// is one send acked and delivered. pairs senders send at once, each
// waiting for its ack before the next send, as a client that acks its
// sends does. cpu-ns/send is the process's CPU (the embedded NATS server
// and the thin clients included) per send: what a loaded machine does not
// distort.
func BenchmarkSend(b *testing.B) {
	for _, pairs := range []int{1, 16} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) {
			ns := natstest.Start(b)
			gwNC, gwJS := natstest.Connect(b, ns)
			nc, js := natstest.Connect(b, ns)
			h := &harness{nc: nc, js: js}
			h.start(b, schema.Config{}, gwNC, gwJS, Metrics{}, func(c *Config) {
				c.MemberViews = 1000
				c.RateBurst, c.RateSustained = 1_000_000, 1_000_000
			})
			var pushes, errs atomic.Int64
			senders := make([]*benchClient, pairs)
			convs := make([]string, pairs)
			for i := range pairs {
				a, r := fmt.Sprintf("alice%d", i), fmt.Sprintf("bob%d", i)
				convs[i] = "d_bench" + strconv.Itoa(i)
				h.convs.add(convs[i], protocol.ConversationDirect, a, a, r)
				senders[i] = benchDial(b, h, a, &pushes, &errs)
				benchDial(b, h, r, &pushes, &errs)
			}
			// The fan-out's part, so that the recipient gets a push: the
			// stored message, as the fan-out pushes it, on the
			// recipient's subject.
			push := []byte(`{"type":"message","conv":"d_bench0","seq":1,"sender":"alice0","client_id":"x","ts":"2026-11-27T01:39:17.753960963Z","prev":0,"body":{"text":"the quick brown fox jumps over the lazy dog"}}`)
			sub, err := nc.Subscribe(schema.Msg(">"), func(m *nats.Msg) {
				conv := schema.ConvFromSubject(m.Subject)
				i, _ := strconv.Atoi(conv[len("d_bench"):])
				_ = nc.Publish(schema.User(fmt.Sprintf("bob%d", i), schema.EventMessage), push)
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sub.Unsubscribe() })
			var seq atomic.Int64
			send := func(i int) {
				n := seq.Add(1)
				frame := fmt.Appendf(nil, `{"type":"send","id":"%d","conv":"%s","client_id":"b-%d","body":{"text":"the quick brown fox jumps over the lazy dog"}}`, n, convs[i], n)
				if err := senders[i].conn.WriteMessage(gws.OpcodeText, frame); err != nil {
					b.Fatal(err)
				}
				<-senders[i].acks
			}
			for i := range pairs { // warm: the views are read once
				send(i)
			}
			for deadline := time.Now().Add(30 * time.Second); pushes.Load() < int64(pairs); {
				if time.Now().After(deadline) {
					b.Fatalf("%d pushes of %d in 30 s", pushes.Load(), pairs)
				}
				time.Sleep(time.Millisecond)
			}
			base := pushes.Load()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			var wg sync.WaitGroup
			per := (b.N + pairs - 1) / pairs
			for i := range pairs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						send(i)
					}
				}()
			}
			wg.Wait()
			want := base + int64(per*pairs)
			for deadline := time.Now().Add(30 * time.Second); pushes.Load() < want; {
				if time.Now().After(deadline) {
					b.Fatalf("%d pushes of %d in 30 s", pushes.Load()-base, want-base)
				}
				time.Sleep(50 * time.Microsecond)
			}
			b.StopTimer()
			sent := float64(per * pairs)
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/sent, "cpu-ns/send")
			b.ReportMetric(sent/time.Since(start).Seconds(), "sends/s")
			if n := errs.Load(); n > 0 {
				b.Fatalf("%d sends answered with an error", n)
			}
		})
	}
}
