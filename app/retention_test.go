package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopApp(t, a) })
	return a
}

func stopApp(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// operatorJS connects to a's embedded server as the operator.
func operatorJS(t *testing.T, a *App) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(a.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo()
}

// metric reads one unlabelled sample from a's /metrics.
func metric(t *testing.T, a *App, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A history store down for longer than the hot window loses nothing: the
// stream keeps every message the store lacks (and /metrics says so), the
// restarted writer copies all of them, read back from the store itself,
// and only then does the trimmer remove them from the stream.
func TestStoreDownLongerThanTheHotWindow(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	window := schema.Config{HotWindow: 2 * time.Second, Duplicates: time.Second}
	opCfg := testConfig(t, Roles{Presence: true})
	opCfg.MetricsAddr = "127.0.0.1:0" // /metrics is on the operator listener
	opCfg.Schema = window
	op := startApp(t, opCfg)
	js := operatorJS(t, op)

	store, err := localstore.New(localstore.Config{Dir: t.TempDir(), NoSync: true, Logger: opCfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	writer := func() *App {
		cfg := testConfig(t, Roles{History: true})
		cfg.NATSURL, cfg.Embedded = op.NATS().RoleURL(natsrv.RoleHistory), natsrv.Config{}
		cfg.Schema = window
		cfg.History = HistoryConfig{Store: store}
		return startApp(t, cfg)
	}
	caughtUp := func() bool {
		c, err := js.Consumer(context.Background(), schema.StreamChat, schema.ConsumerHistory)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}
	var acked []uint64
	send := func(n int) {
		for range n {
			i := len(acked)
			ack, err := js.Publish(context.Background(), schema.Msg("c1"),
				fmt.Appendf(nil, `{"sender":"svc","client_id":"m%d","body":{"i":%d}}`, i, i),
				jetstream.WithMsgID(fmt.Sprintf("svc:m%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, ack.Sequence)
		}
	}

	w := writer()
	send(5)
	waitUntil(t, 30*time.Second, "the writer never caught up", caughtUp)
	stopApp(t, w) // the store is down

	send(20)
	time.Sleep(2*window.HotWindow + time.Second)
	if first := streamInfo(t, js).State.FirstSeq; first > acked[5] {
		t.Fatalf("while the store was down the stream dropped messages it lacks: first seq %d, first unstored %d", first, acked[5])
	}
	if lag := metric(t, op, "natter_history_lag_seconds"); lag < window.HotWindow.Seconds() {
		t.Errorf("natter_history_lag_seconds = %v while the store is down", lag)
	}
	if held := metric(t, op, "natter_retention_held_messages"); held != 20 {
		t.Errorf("natter_retention_held_messages = %v, want 20", held)
	}

	writer()
	waitUntil(t, 30*time.Second, "the restarted writer never caught up", caughtUp)
	rows, _, err := store.After(context.Background(), "c1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var stored []uint64
	for _, m := range rows {
		stored = append(stored, m.Seq)
	}
	if !reflect.DeepEqual(stored, acked) {
		t.Fatalf("the store holds seqs %v, want every acked one %v", stored, acked)
	}
	// Now that the store has them, the trimmer removes them.
	waitUntil(t, 10*time.Second, "the trimmer never removed the stored messages", func() bool {
		return streamInfo(t, js).State.Msgs == 0
	})
	if held := metric(t, op, "natter_retention_held_messages"); held != 0 {
		t.Errorf("natter_retention_held_messages = %v once stored", held)
	}
}

// A role started against a running schema with other settings, even with
// the operator's credentials, changes nothing of it: only the process
// that owns the stream settings applies them.
func TestRoleNeverChangesTheSchema(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	opCfg := testConfig(t, Roles{Presence: true})
	opCfg.MetricsAddr = "127.0.0.1:0" // /metrics is on the operator listener
	opCfg.Schema = schema.Config{HotWindow: time.Hour, Duplicates: 5 * time.Minute}
	op := startApp(t, opCfg)
	js := operatorJS(t, op)
	before := streamInfo(t, js).Config
	if w, ok := schema.HotWindowOf(before); !ok || w != time.Hour || before.MaxAge != 0 || schema.DedupeWindowOf(before) != 5*time.Minute ||
		before.Duplicates != 5*time.Minute {
		t.Fatalf("CHAT as the operator made it: %+v", before)
	}

	for _, cred := range []string{"operator", natsrv.RolePresence} {
		url := op.NATS().OperatorURL()
		if cred != "operator" {
			url = op.NATS().RoleURL(cred)
		}
		cfg := testConfig(t, Roles{Presence: true})
		cfg.NATSURL, cfg.Embedded = url, natsrv.Config{}
		cfg.Schema = schema.Config{HotWindow: 2 * time.Second, Duplicates: time.Second, Replicas: 1}
		stopApp(t, startApp(t, cfg))
		if after := streamInfo(t, js).Config; !reflect.DeepEqual(after, before) {
			t.Fatalf("a role with the %s's user changed CHAT:\nbefore %+v\nafter  %+v", cred, before, after)
		}
	}
}
