package main

import (
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
)

// TestPeerMissingFiresForOneNodeDown scrapes a real node of a 3-node
// cluster: healthy, NatterNATSPeerMissing's condition
// (natter_nats_cluster_peers_connected < natter_nats_cluster_size - 1)
// is false; with one node shut down it is true on a survivor, while the
// route count the old rule used stays above what it alerted on.
func TestPeerMissingFiresForOneNodeDown(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	hs := httptest.NewServer(natsMux(c.Servers[0]))
	defer hs.Close()
	gauge := func(name string) float64 {
		t.Helper()
		resp, err := hs.Client().Get(hs.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("/metrics has no %s", name)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	fires := func() bool {
		return gauge("natter_nats_cluster_peers_connected") < gauge("natter_nats_cluster_size")-1
	}
	wait := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); fires() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("NatterNATSPeerMissing condition %v, want %v: peers %v, size %v, routes %v", !want, want,
					gauge("natter_nats_cluster_peers_connected"), gauge("natter_nats_cluster_size"), gauge("natter_nats_routes"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Servers[2].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wait(true)
	t.Logf("one node down: peers %v, cluster size %v, routes %v", gauge("natter_nats_cluster_peers_connected"),
		gauge("natter_nats_cluster_size"), gauge("natter_nats_routes"))
}
