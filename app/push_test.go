package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// TestPushConsumerKeptCurrentWithoutProvider: with no push provider the
// pushnotify consumer is acknowledged as messages come, so it shows no
// growing backlog (`nats consumer report CHAT`), and the metric counts
// what went unsent.
func TestPushConsumerKeptCurrentWithoutProvider(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	cfg := testConfig(t, Roles{Push: true})
	cfg.MetricsAddr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	nc, err := a.NATS().Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var last uint64
	for i := range n {
		ack, err := js.Publish(ctx, schema.Msg("c1"), fmt.Appendf(nil, `{"sender":"svc","client_id":"%d","body":{"text":"hi"}}`, i))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerPush)
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.ConsumerInfo
	for ctx.Err() == nil {
		if info, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream < last {
		t.Fatalf("pushnotify without a provider: %d unprocessed, %d ack pending, ack floor %d, want 0, 0, %d",
			info.NumPending, info.NumAckPending, info.AckFloor.Stream, last)
	}
	resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^natter_push_unsent_total (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no natter_push_unsent_total")
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v < n {
		t.Errorf("natter_push_unsent_total = %v, want ≥ %d", v, n)
	}
}
