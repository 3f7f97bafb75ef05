package localstore_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/protocol"
)

var (
	benchMsgs  = flag.Int("bench-msgs", 1_000_000, "messages BenchmarkBefore50 loads")
	benchConvs = flag.Int("bench-convs", 10_000, "conversations BenchmarkBefore50 spreads them over")
)

// benchBody is a typical small message body (~150 bytes).
var benchBody = []byte(`{"text":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","mentions":[]}`)

func benchMsg(conv string, seq uint64) *protocol.Message {
	return &protocol.Message{
		Conv: conv, Seq: seq, Sender: "user-" + conv[len(conv)-1:], ClientID: strconv.FormatUint(seq, 36),
		TS: "2026-01-02T03:04:05.123456789Z", Body: benchBody,
	}
}

func openBench(b *testing.B, noSync bool) *localstore.Store {
	b.Helper()
	s, err := localstore.New(localstore.Config{Dir: b.TempDir(), NoSync: noSync, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppend appends batches of 100 messages spread over 100
// conversations, with the default fsync per batch and without.
func BenchmarkAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=100/nosync=%v", noSync), func(b *testing.B) {
			s := openBench(b, noSync)
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
		})
	}
}

// BenchmarkBefore50 loads -bench-msgs messages over -bench-convs
// conversations (global seqs, so each conversation's seqs are sparse), then
// measures "newest 50 before S" pages: from the newest, and from a random
// point inside a conversation.
func BenchmarkBefore50(b *testing.B) {
	s := openBench(b, true)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	convs, total := *benchConvs, *benchMsgs
	lastSeq := make([]uint64, convs)
	start := time.Now()
	batch := make([]*protocol.Message, 0, 1000)
	for seq := uint64(1); seq <= uint64(total); seq++ {
		c := rng.IntN(convs)
		lastSeq[c] = seq
		batch = append(batch, benchMsg(fmt.Sprintf("conv-%d", c), seq))
		if len(batch) == cap(batch) || seq == uint64(total) {
			if err := s.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("loaded %d messages over %d conversations in %s; peak RSS %s",
		total, convs, time.Since(start).Round(time.Millisecond), peakRSS())

	for _, tc := range []struct {
		name   string
		before func(c int) uint64
	}{
		{"newest", func(int) uint64 { return 0 }},
		{"middle", func(c int) uint64 { return lastSeq[c] / 2 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rows := 0
			for b.Loop() {
				c := rng.IntN(convs)
				got, _, err := s.Before(ctx, fmt.Sprintf("conv-%d", c), tc.before(c), 50)
				if err != nil {
					b.Fatal(err)
				}
				rows += len(got)
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
	b.Logf("peak RSS after the reads %s", peakRSS())
}

// peakRSS reads the process's peak resident set size (Linux), for the
// bounded-memory claim in the package comment.
func peakRSS() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
