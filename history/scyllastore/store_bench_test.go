package scyllastore_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/protocol"
)

var (
	benchMsgs  = flag.Int("bench-msgs", 100_000, "messages BenchmarkBefore50 loads")
	benchConvs = flag.Int("bench-convs", 1_000, "conversations BenchmarkBefore50 spreads them over")
	benchConc  = flag.Int("bench-conc", 0, "Config.WriteConcurrency of the benchmarks' store (0: the default)")
)

// benchBody is a typical small message body (~150 bytes).
var benchBody = []byte(`{"text":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","mentions":[]}`)

func benchMsg(conv string, seq uint64) *protocol.Message {
	return &protocol.Message{
		Conv: conv, Seq: seq, Sender: "user-1", ClientID: strconv.FormatUint(seq, 36),
		TS: "2026-01-02T03:04:05.123456789Z", Body: benchBody,
	}
}

// benchStore opens a store on a fresh keyspace with the default bucket size.
func benchStore(b *testing.B) *scyllastore.Store {
	b.Helper()
	cfg := config(b, 0)
	cfg.WriteConcurrency = *benchConc
	migrate(b, cfg)
	return open(b, cfg)
}

// BenchmarkAppend appends batches of 100 messages spread over 100
// conversations (LOCAL_QUORUM, one node).
func BenchmarkAppend(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var seq uint64
	batch := make([]*protocol.Message, 100)
	start := time.Now()
	for b.Loop() {
		for i := range batch {
			seq++
			batch[i] = benchMsg(fmt.Sprintf("conv-%d", seq%100), seq)
		}
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkAppendWriterBatch appends batches as the history writer makes
// them under 1:1 traffic: schema.HistoryBatch (500) messages over 1,000
// conversations, so most partitions get one row a batch.
func BenchmarkAppendWriterBatch(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var seq uint64
	batch := make([]*protocol.Message, 500)
	start := time.Now()
	for b.Loop() {
		for i := range batch {
			seq++
			batch[i] = benchMsg(fmt.Sprintf("conv-%d", (seq*7919)%1000), seq)
		}
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkBefore50 loads -bench-msgs messages over -bench-convs
// conversations, as 1% of a system's traffic (global seqs 100 apart, so
// they span several buckets of the default size), then measures "newest 50
// before S" pages from the newest and from a random point.
func BenchmarkBefore50(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	convs, total := *benchConvs, *benchMsgs
	lastSeq := make([]uint64, convs)
	start := time.Now()
	batch := make([]*protocol.Message, 0, 500)
	for i := 1; i <= total; i++ {
		seq := uint64(i) * 100
		c := rng.IntN(convs)
		lastSeq[c] = seq
		batch = append(batch, benchMsg(fmt.Sprintf("conv-%d", c), seq))
		if len(batch) == cap(batch) || i == total {
			if err := s.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("loaded %d messages over %d conversations in %s", total, convs, time.Since(start).Round(time.Millisecond))
	for _, tc := range []struct {
		name   string
		before func(c int) uint64
	}{
		{"newest", func(int) uint64 { return 0 }},
		{"middle", func(c int) uint64 { return lastSeq[c] / 2 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rows := 0
			var took []time.Duration
			for b.Loop() {
				c := rng.IntN(convs)
				t0 := time.Now()
				got, _, err := s.Before(ctx, fmt.Sprintf("conv-%d", c), tc.before(c), 50)
				took = append(took, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				rows += len(got)
			}
			slices.Sort(took)
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100])/1e6, "p99-ms")
		})
	}
}
