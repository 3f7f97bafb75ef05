package bleveindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
)

// BenchmarkSearch1M is docs/benchmarks.md's search figure: it indexes
// NATTER_SEARCH_BENCH_N messages (1,000,000 by default) in batches of 500,
// as the indexer writes them, then runs 2,000 queries of a user in 50
// conversations and 500 of one in 1,000, and reports the indexing rate and
// the queries' p50 and p99. NATTER_SEARCH_BENCH_MAX (a Go duration) stops
// the indexing early, and the queries then run on what was indexed (the
// log says how much). NATTER_SEARCH_BENCH_DIR keeps the index in that
// directory, and a later run with the same directory (and N) skips the
// indexing and only queries (the same queries: they have a generator of
// their own). NATTER_SEARCH_BENCH_MERGE set merges the index into one
// segment (Index.ForceMerge) before the queries. Run it once:
//
//	go test -run '^$' -bench Search1M -benchtime 1x -timeout 2h ./search/bleveindex
func BenchmarkSearch1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("NATTER_SEARCH_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	var budget time.Duration
	if v, err := time.ParseDuration(os.Getenv("NATTER_SEARCH_BENCH_MAX")); err == nil {
		budget = v
	}
	const convs, batch = 10_000, 500
	// One message every 100 ms, the last one now: 1M span 28 hours.
	t0 := time.Now().Add(-time.Duration(n) * 100 * time.Millisecond)
	dir := filepath.Join(b.TempDir(), "search")
	reuse := false
	if d := os.Getenv("NATTER_SEARCH_BENCH_DIR"); d != "" {
		dir = d
		_, err := os.Stat(filepath.Join(dir, "index_meta.json"))
		reuse = err == nil
	}
	x, err := New(Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	words := vocabulary(5000)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 1, uint64(len(words)-1))
	text := func() string {
		k := 6 + rng.IntN(15)
		w := make([]string, k)
		for i := range w {
			w[i] = words[zipf.Uint64()]
		}
		return strings.Join(w, " ")
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		docs := make([]search.Doc, 0, batch)
		if reuse {
			c, err := x.b.DocCount()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("querying the index in %s (%d messages) without indexing", dir, c)
			n = 0 // skips the loop
		}
		for seq := 1; seq <= n; seq++ {
			docs = append(docs, search.Doc{Conv: fmt.Sprintf("c%05d", rng.IntN(convs)), Seq: uint64(seq),
				Sender: fmt.Sprintf("u%04d", rng.IntN(5000)), TS: protocol.FormatTime(t0.Add(time.Duration(seq) * 100 * time.Millisecond)), Text: text()})
			if len(docs) == batch || seq == n {
				if err := x.Write(ctx, docs, nil); err != nil {
					b.Fatal(err)
				}
				docs = docs[:0]
			}
			if seq%100_000 == 0 {
				b.Logf("%d indexed, %.0f/s", seq, float64(seq)/time.Since(start).Seconds())
			}
			if budget > 0 && len(docs) == 0 && time.Since(start) > budget {
				b.Logf("stopped after %s at %d messages (NATTER_SEARCH_BENCH_MAX)", budget, seq)
				n = seq
				break
			}
		}
		took := time.Since(start)
		if !reuse {
			b.ReportMetric(float64(n)/took.Seconds(), "msgs/s")
			b.Logf("indexed %d messages in %s: %.0f/s; index %s", n, took.Round(time.Second), float64(n)/took.Seconds(), dirSize(dir))
		}
		if os.Getenv("NATTER_SEARCH_BENCH_MERGE") != "" {
			t0 := time.Now()
			if err := x.ForceMerge(ctx); err != nil {
				b.Fatal(err)
			}
			b.Logf("force merge (NATTER_SEARCH_BENCH_MERGE): %s", time.Since(t0).Round(time.Second))
		}
		b.Logf("segments: %v", segments(x))
		qrng := rand.New(rand.NewPCG(7, 8))
		qzipf := rand.NewZipf(rand.New(rand.NewPCG(9, 10)), 1.1, 1, uint64(len(words)-1))
		for _, tc := range []struct {
			name    string
			convs   int
			queries int
		}{{"50convs", 50, 2000}, {"1000convs", 1000, 500}} {
			var lat []time.Duration
			hits := 0
			for q := 0; q < tc.queries; q++ {
				mine := make([]string, tc.convs)
				for j := range mine {
					mine[j] = fmt.Sprintf("c%05d", qrng.IntN(convs))
				}
				// One or two words, of the common and the rare ones.
				query := words[qzipf.Uint64()]
				if q%2 == 1 {
					query += " " + words[qrng.IntN(len(words))]
				}
				t0 := time.Now()
				p, err := x.Search(ctx, search.Query{Text: query, Convs: mine, Limit: 20})
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				hits += len(p.Hits)
			}
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms-"+tc.name)
			b.Logf("queries in %d conversations: %d, p50 %s, p99 %s, max %s, %.1f hits per query", tc.convs, tc.queries,
				p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lat[len(lat)-1].Round(time.Millisecond), float64(hits)/float64(tc.queries))
		}
	}
}

// segments is how many segments the index has in memory and on disk.
func segments(x *Index) string {
	st, _ := x.b.StatsMap()["index"].(map[string]any)
	return fmt.Sprintf("%v in memory, %v on disk", st["num_root_memorysegments"], st["num_root_filesegments"])
}

// vocabulary returns n distinct pronounceable words.
func vocabulary(n int) []string {
	cons, vow := "bcdfghjklmnprstvwz", "aeiou"
	rng := rand.New(rand.NewPCG(5, 6))
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		var sb strings.Builder
		for range 2 + rng.IntN(3) {
			sb.WriteByte(cons[rng.IntN(len(cons))])
			sb.WriteByte(vow[rng.IntN(len(vow))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

func dirSize(dir string) string {
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return fmt.Sprintf("%.1f MiB", float64(total)/(1<<20))
}
