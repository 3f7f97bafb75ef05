package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/natter-chat/natter/app"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every role serves /readyz and Prometheus /metrics on its --metrics
// listener, not on the client port; the gateway's counters move with
// traffic and consumer lag is read from JetStream.
func TestMetricsAndReadyz(t *testing.T) {
	e := start(t, func(c *app.Config) { c.MetricsAddr = "127.0.0.1:0" })
	ctx := ctxT(t)
	for _, path := range []string{"/readyz", "/metrics"} {
		if code, _ := get(t, "http://"+e.app.HTTPAddr()+path); code != http.StatusNotFound {
			t.Fatalf("client port %s = %d, want 404", path, code)
		}
	}
	base := "http://" + e.app.MetricsAddr()
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, conv.Conv, "1", text("hi")); err != nil {
		t.Fatal(err)
	}
	nextMessage(t, b)
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"natter_gateway_connections 2",
		"natter_gateway_send_ack_seconds_count 1",
		"natter_gateway_jetstream_publish_errors_total 0",
		`natter_consumer_pending{consumer="fanout",stream="CHAT"}`,
		`natter_consumer_ack_pending{consumer="history",stream="CHAT"}`,
		`natter_stream_last_seq{stream="KV_PRESENCE"}`,
		"natter_jetstream_up 1",
		"natter_gateway_frames_in_total",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
