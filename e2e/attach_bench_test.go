package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/attachments"
)

// BenchmarkUploadRequest is the upload request over a real socket (bounds,
// quota update and record in the ATTACHMENTS bucket, URL signing), one at
// a time from one client: ns/op and its p99. Nothing is PUT, so the
// quota is set out of reach. Figures: docs/benchmarks.md, Uploads.
func BenchmarkUploadRequest(b *testing.B) {
	e := start(b, withFiles(b, attachments.Config{Quota: 1 << 50}), unlimited)
	c := e.dial(b, "alice")
	ctx := longCtx(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Upload(ctx, "image/png", 1<<20, "x.png"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	// The nearest-rank p99: the smallest latency at least 99 % of the
	// requests did not exceed.
	b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1].Microseconds())/1000, "p99-ms")
}

// BenchmarkUploadPut1MiB is a whole upload of 1 MiB: the request, then
// the PUT to the fs store served by natter; MB/s is the throughput.
func BenchmarkUploadPut1MiB(b *testing.B) {
	e := start(b, withFiles(b, attachments.Config{Quota: 1 << 50}), unlimited)
	c := e.dial(b, "alice")
	ctx := longCtx(b)
	data := bytes.Repeat([]byte("natter!\n"), 1<<17)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.UploadBytes(ctx, "application/octet-stream", "", data); err != nil {
			b.Fatal(err)
		}
	}
}

// unlimited lifts the per-connection request rate limit, which a
// benchmark's one client would otherwise hit within the first second.
func unlimited(c *app.Config) {
	c.Gateway.RateBurst, c.Gateway.RateSustained = 1_000_000, 1_000_000
}
