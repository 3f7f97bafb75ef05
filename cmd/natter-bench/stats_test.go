package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The servers' memory is read from their --metrics listeners, which are
// not the client port the load goes to.
func TestServerRSSFromMetricsListeners(t *testing.T) {
	metrics := func(rss string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes " + rss + "\n"))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := metrics("1.5e+06"), metrics("2500000")
	client := httptest.NewServer(http.NotFoundHandler()) // a gateway's client port: no /metrics
	t.Cleanup(client.Close)

	c := &common{urls: []string{"ws" + client.URL[4:] + "/v1/ws"}}
	if _, ok := c.serverRSS(); ok {
		t.Fatal("serverRSS without --server-pid or --metrics-url reported a figure")
	}
	c.metricsURLs = []string{a.URL, b.URL}
	rss, ok := c.serverRSS()
	if !ok || rss != 4_000_000 {
		t.Fatalf("serverRSS = %d, %v; want 4000000, true", rss, ok)
	}
}
