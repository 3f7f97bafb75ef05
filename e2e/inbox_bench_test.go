package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
)

// BenchmarkInboxFirstPage: alice is in NATTER_BENCH_CONVS (default 5,000)
// groups, each with a message from bob; one op is the first page of 50
// of her conversations over a real socket, newest activity first. It
// reports the p50 and p99 latency of the ops (run with -benchtime=500x
// or more for a p99 worth the name). The setup takes a while: every
// group is created and written to through the API. Its connections skip
// the harness's spec check of every frame (see dial below).
//
//	go test ./e2e/ -run '^$' -bench BenchmarkInboxFirstPage -benchtime=500x
func BenchmarkInboxFirstPage(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("NATTER_BENCH_CONVS")); err == nil && v > 0 {
		n = v
	}
	e := start(b, func(c *app.Config) {
		c.Gateway.RateBurst, c.Gateway.RateSustained = 1_000_000, 1_000_000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// No spec check of every frame here (other e2e tests do it): it is
	// test instrumentation, and its CPU, thousands of setup pushes
	// validated while the pages are timed, would share the two cores with
	// the server being measured.
	dial := func(user string) *client.Client {
		return e.dialOpts(b, client.Options{Token: token(b, user), Trace: func(bool, []byte) {}})
	}
	alice, bob := dial("alice"), dial("bob")
	discardEvents(alice, bob)
	d, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Accept(ctx, d.Conv); err != nil {
		b.Fatal(err)
	}
	// Creates and sends on a few connections at once.
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, bb := dial("alice"), dial("bob")
			discardEvents(a, bb)
			for i := w; i < n; i += workers {
				g, err := a.CreateGroup(ctx, fmt.Sprintf("group %d", i), "bob")
				if err != nil {
					errs <- err
					return
				}
				if _, err := bb.Send(ctx, g.Conv, "m"+strconv.Itoa(i), text(fmt.Sprintf("message %d to a group with a longer text than most", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("setup: %d groups with a message each in %v", n, time.Since(start).Round(time.Second))
	// Wait until the fan-out noted the last of them.
	for {
		f, err := alice.ConversationsPage(ctx, "", 50)
		if err != nil {
			b.Fatal(err)
		}
		if f.Conversations[0].Last != nil && f.Conversations[len(f.Conversations)-1].Last != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		f, err := alice.ConversationsPage(ctx, "", 50)
		lat = append(lat, time.Since(t0))
		if err != nil || len(f.Conversations) != 50 || !f.More {
			b.Fatalf("page: %v (%d)", err, len(f.Conversations))
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// discardEvents reads and drops the pushes of connections whose pushes the
// benchmark does not use: each group and message pushes to every
// connection of alice and bob, thousands in all, which would otherwise be
// held in each client's event backlog.
func discardEvents(cs ...*client.Client) {
	for _, c := range cs {
		go func() {
			for range c.Events() {
			}
		}()
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
