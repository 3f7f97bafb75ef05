package scyllastore_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

var (
	writerRate  = flag.Int("writer-rate", 5_000, "messages per second BenchmarkWriterKeepsUp publishes")
	writerFor   = flag.Duration("writer-for", 60*time.Second, "how long BenchmarkWriterKeepsUp publishes")
	writerConvs = flag.Int("writer-convs", 1_000, "direct conversations BenchmarkWriterKeepsUp spreads its messages over")
	writerDrain = flag.Duration("writer-drain", 2*time.Minute, "how long BenchmarkWriterKeepsUp waits for the writer to catch up once publishing ended")
)

// BenchmarkWriterKeepsUp publishes -writer-rate messages a second of
// 1:1 traffic (-writer-convs direct conversations, ~150-byte bodies) into
// a real CHAT stream (embedded JetStream) for -writer-for, while the
// history writer copies the stream into this store on the real Cassandra.
// Every second it logs the history consumer's lag (messages not yet
// acked: pending + ack pending); the writer keeps up if the lag stays
// bounded, and it reports the largest lag, the lag when publishing ended,
// and how long the writer then took to drain it. One run (b.N is 1):
//
//	deploy/cassandra/with.sh go test -run x -bench WriterKeepsUp -benchtime 1x ./history/scyllastore/
func BenchmarkWriterKeepsUp(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		b.Fatal(err)
	}
	s := benchStore(b)
	w := history.NewWriter(history.WriterConfig{}, js, s)
	werr := make(chan error, 1)
	go func() { werr <- w.Run(ctx) }()
	cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		b.Fatal(err)
	}

	// Payloads, one per conversation and sender, prepared up front so the
	// publisher's cost is the publish.
	rate, convs := *writerRate, *writerConvs
	type pub struct {
		subject string
		data    []byte
	}
	pubs := make([]pub, 2*convs)
	for i := range pubs {
		env := protocol.Envelope{
			Sender: fmt.Sprintf("user-%d", i), ClientID: fmt.Sprintf("c-%d", i),
			TS: "2026-01-02T03:04:05.123456789Z", Body: benchBody,
		}
		data, _ := json.Marshal(env)
		pubs[i] = pub{subject: schema.Msg(fmt.Sprintf("dm-%d", i/2)), data: data}
	}

	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		// Every 10 ms, as many as the rate asks for by then.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		n := 0
		for time.Since(start) < *writerFor {
			<-tick.C
			due := int(time.Since(start).Seconds() * float64(rate))
			for ; n < due; n++ {
				p := pubs[n%len(pubs)]
				if _, err := js.PublishAsync(p.subject, p.data); err != nil {
					pubDone <- err
					return
				}
			}
			published.Store(int64(n))
		}
		select {
		case <-js.PublishAsyncComplete():
			pubDone <- nil
		case <-time.After(30 * time.Second):
			pubDone <- fmt.Errorf("publish acks outstanding after 30s")
		}
	}()

	lag := func() uint64 {
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return info.NumPending + uint64(info.NumAckPending)
	}
	start := time.Now()
	var lags []uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var ended time.Time
	var lagAtEnd uint64
	for {
		select {
		case err := <-pubDone:
			if err != nil {
				b.Fatal(err)
			}
			ended, lagAtEnd = time.Now(), lag()
			b.Logf("published %d in %s; lag %d", published.Load(), ended.Sub(start).Round(time.Millisecond), lagAtEnd)
			pubDone = nil
		case err := <-werr:
			b.Fatalf("writer stopped: %v", err)
		case <-tick.C:
		}
		if pubDone != nil {
			l := lag()
			lags = append(lags, l)
			if len(lags)%5 == 0 {
				b.Logf("t=%2ds published %7d lag %6d (max of the last 5 s %d)", len(lags), published.Load(), l, slices.Max(lags[len(lags)-5:]))
			}
			continue
		}
		if l := lag(); l == 0 {
			break
		} else if time.Since(ended) > *writerDrain {
			b.Fatalf("writer still %d behind %s after publishing ended (max lag %d)", l, *writerDrain, slices.Max(lags))
		}
	}
	drain := time.Since(ended)
	total := published.Load()
	if info, err := cons.Info(ctx); err != nil || info.AckFloor.Stream < uint64(total) {
		b.Fatalf("ack floor %v, want ≥ %d (%v)", info, total, err)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(slices.Max(lags)), "max-lag")
	b.ReportMetric(float64(lagAtEnd), "end-lag")
	b.ReportMetric(drain.Seconds(), "drain-s")
}
