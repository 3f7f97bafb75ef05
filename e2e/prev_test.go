package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// item is a message item as the wire carries it, prev included. It is
// read from the raw frame so that a missing prev shows as such.
type item struct {
	Seq  uint64  `json:"seq"`
	Prev *uint64 `json:"prev"`
}

// pushItem waits for c's next message push.
func pushItem(t *testing.T, c *client.Client) item {
	t.Helper()
	ev, err := c.NextEvent(ctxT(t), protocol.TypeMessage)
	if err != nil {
		t.Fatalf("waiting for a message: %v", err)
	}
	var it item
	if err := json.Unmarshal(ev.Raw, &it); err != nil {
		t.Fatal(err)
	}
	return it
}

// pageItems asks for a sync (after) or history (before) page.
func pageItems(t *testing.T, c *client.Client, frame map[string]any) []item {
	t.Helper()
	raw, err := c.Request(ctxT(t), frame)
	if err != nil {
		t.Fatalf("%v: %v", frame, err)
	}
	var page struct{ Messages []item }
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	return page.Messages
}

// Every message item carries prev, the seq of the item before it in the
// conversation, 0 for the first: live pushes and sync and history pages
// alike, wherever a page starts; messages from an internal service count,
// an invalid envelope does not; and a new fan-out worker (the gateway
// that ran the old one is gone) stamps the same.
func TestPrevLiveAndInPages(t *testing.T) {
	// Gateways of their own, so that the fan-out can be replaced; their
	// pages come through the history API.
	e := start(t, func(c *app.Config) { c.Roles = app.Roles{Presence: true, History: true} })
	g1 := e.startGateway(t)
	dial := func(g *env, user string) *client.Client {
		t.Helper()
		c, err := client.Dial(ctxT(t), g.app.WebSocketURL(), client.Options{Token: token(t, user)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := ctxT(t)
	alice, bob := dial(g1, "alice"), dial(g1, "bob")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	other, err := alice.CreateDirect(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.app.NATS().RoleURL(natsrv.RoleService), nats.CustomInboxPrefix(schema.Inbox(natsrv.RoleService)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	service := func(data string) uint64 {
		t.Helper()
		ack, err := js.Publish(ctx, schema.Msg(conv.Conv), []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	send := func(c *client.Client, conv, id string) uint64 {
		t.Helper()
		ack, err := c.Send(ctx, conv, id, text(id))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Seq
	}

	var items []uint64 // conv's items in order
	items = append(items, send(alice, conv.Conv, "one"))
	items = append(items, service(`{"sender":"svc-x","client_id":"s1","body":{"text":"from a service"}}`))
	service(`{"sender":"svc-x","body":"no client_id, not an object"}`) // not an item
	send(alice, other.Conv, "elsewhere")
	edit, err := alice.SendKind(ctx, conv.Conv, "e1", protocol.KindEdit, items[0], text("one, edited"))
	if err != nil {
		t.Fatal(err)
	}
	items = append(items, edit.Seq)
	items = append(items, send(alice, conv.Conv, "two")) // bob's own sends do not come back to his session

	// checkPush reads bob's next push, which must be the item at i.
	checkPush := func(c *client.Client, i int) {
		t.Helper()
		it := pushItem(t, c)
		var want uint64
		if i > 0 {
			want = items[i-1]
		}
		if it.Seq != items[i] || it.Prev == nil || *it.Prev != want {
			t.Fatalf("push %d: seq %d prev %v, want seq %d prev %d", i, it.Seq, show(it.Prev), items[i], want)
		}
	}
	for i := range items {
		checkPush(bob, i)
	}
	// prevOf is the item before seq, 0 if none.
	prevOf := func(seq uint64) uint64 {
		var p uint64
		for _, s := range items {
			if s < seq {
				p = s
			}
		}
		return p
	}
	checkPages := func(c *client.Client) {
		t.Helper()
		last := items[len(items)-1]
		for from := uint64(0); from <= last+1; from++ {
			for _, limit := range []int{1, 2, 50} {
				for _, frame := range []map[string]any{
					{"type": "sync", "conv": conv.Conv, "after": from, "limit": limit},
					{"type": "history", "conv": conv.Conv, "before": from, "limit": limit},
				} {
					page := pageItems(t, c, frame)
					if from == 0 && limit == 50 && len(page) != len(items) {
						t.Fatalf("%v: %d items, want %d", frame, len(page), len(items))
					}
					for _, it := range page {
						if it.Prev == nil || *it.Prev != prevOf(it.Seq) {
							t.Fatalf("%v: item %d has prev %s, want %d", frame, it.Seq, show(it.Prev), prevOf(it.Seq))
						}
					}
				}
			}
		}
	}
	checkPages(bob)

	// The gateway, and with it the fan-out worker, goes; a new one takes
	// over with nothing remembered.
	if err := g1.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	g2 := e.startGateway(t)
	alice, bob = dial(g2, "alice"), dial(g2, "bob")
	items = append(items, send(alice, conv.Conv, "three"))
	items = append(items, service(`{"sender":"svc-x","client_id":"s2","body":{"text":"and the service"}}`))
	for i := len(items) - 2; i < len(items); i++ {
		checkPush(bob, i)
	}
	checkPages(bob)
}

func show(p *uint64) string {
	if p == nil {
		return "missing"
	}
	return fmt.Sprint(*p)
}

// dropProxy stands between WebSocket clients and a gateway and passes
// every frame on, except that after dropNext it discards the next message
// push to the client: a push lost on the way, as a full queue or a NATS
// reconnect would lose it.
type dropProxy struct {
	*httptest.Server
	upstream string
	drop     atomic.Bool
	dropped  chan []byte
}

func newDropProxy(t *testing.T, upstream string) *dropProxy {
	t.Helper()
	p := &dropProxy{upstream: upstream, dropped: make(chan []byte, 1)}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *dropProxy) url() string { return "ws" + strings.TrimPrefix(p.URL, "http") + "/v1/ws" }

func (p *dropProxy) dropNext() { p.drop.Store(true) }

func (p *dropProxy) serve(w http.ResponseWriter, r *http.Request) {
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer down.CloseNow()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	up, _, err := websocket.Dial(ctx, p.upstream, nil)
	if err != nil {
		return
	}
	defer up.CloseNow()
	down.SetReadLimit(-1)
	up.SetReadLimit(-1)
	var wg sync.WaitGroup
	pipe := func(from, to *websocket.Conn, filter bool) {
		defer wg.Done()
		defer cancel()
		for {
			typ, data, err := from.Read(ctx)
			if err != nil {
				return
			}
			if filter && strings.Contains(string(data), `"type":"message"`) && p.drop.CompareAndSwap(true, false) {
				p.dropped <- data
				continue
			}
			if to.Write(ctx, typ, data) != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pipe(down, up, false)
	go pipe(up, down, true)
	wg.Wait()
}

// A push lost on its way to a Session is noticed by the next push's prev
// and fetched by sync at once, with no periodic re-sync.
func TestSessionFetchesALostPushAtOnce(t *testing.T) {
	e := start(t)
	proxy := newDropProxy(t, e.app.WebSocketURL())
	ctx := ctxT(t)
	type got struct {
		live bool
		at   time.Time
	}
	var mu sync.Mutex
	seen := map[uint64]got{}
	s, err := client.NewSession(ctx, client.SessionOptions{
		URLs:    []string{proxy.url()},
		Options: client.Options{Token: token(t, "bob")},
		// ResyncEvery stays 0: no periodic re-sync.
		OnMessage: func(m *protocol.Message, live bool) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := seen[m.Seq]; dup {
				t.Errorf("seq %d delivered twice", m.Seq)
			}
			seen[m.Seq] = got{live, time.Now()}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := e.dial(t, "alice")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	has := func(seq uint64) bool { mu.Lock(); defer mu.Unlock(); _, ok := seen[seq]; return ok }
	first, err := alice.Send(ctx, conv.Conv, "1", text("first"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return has(first.Seq) })

	proxy.dropNext()
	lost, err := alice.Send(ctx, conv.Conv, "2", text("lost"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-proxy.dropped:
		if !strings.Contains(string(data), fmt.Sprintf(`"seq":%d`, lost.Seq)) {
			t.Fatalf("dropped %s, want the push of seq %d", data, lost.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the push was not dropped")
	}
	time.Sleep(200 * time.Millisecond)
	if has(lost.Seq) {
		t.Fatal("the lost push arrived all the same")
	}
	next, err := alice.Send(ctx, conv.Conv, "3", text("next"))
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	waitFor(t, 10*time.Second, func() bool { return has(lost.Seq) && has(next.Seq) })
	mu.Lock()
	defer mu.Unlock()
	l, n := seen[lost.Seq], seen[next.Seq]
	if l.live || !n.live {
		t.Fatalf("lost delivered live=%v, next live=%v: want the lost one by sync", l.live, n.live)
	}
	if d := l.at.Sub(sent); d > 2*time.Second {
		t.Fatalf("the lost message came %v after the next push: not at once", d)
	}
}
