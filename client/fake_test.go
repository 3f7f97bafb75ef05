package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/protocol"
)

// fakeServer speaks just enough of protocol v1 to exercise the client: the
// auth handshake, an id-echoing reply per request type, and a few test-only
// frame types that push events, delay replies, or close the connection.
type fakeServer struct {
	*httptest.Server
	mu     sync.Mutex
	frames []json.RawMessage // every frame received after auth
	exts   []string          // Sec-WebSocket-Extensions of each upgrade
	seq    uint64
}

const (
	goodToken = "good"
	badToken  = "bad"
)

func newFakeServer(tb testing.TB) *fakeServer {
	tb.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.Close)
	return f
}

// url is the server's ws:// endpoint.
func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.URL, "http") + "/v1/ws" }

// last returns the last frame received with type typ, or nil.
func (f *fakeServer) last(typ string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.frames) - 1; i >= 0; i-- {
		var m map[string]any
		if json.Unmarshal(f.frames[i], &m) == nil && m["type"] == typ {
			return m
		}
	}
	return nil
}

// count returns how many frames of type typ the server received.
func (f *fakeServer) count(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fr := range f.frames {
		var m map[string]any
		if json.Unmarshal(fr, &m) == nil && m["type"] == typ {
			n++
		}
	}
	return n
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if auth != "" && auth != "Bearer "+goodToken {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("X-Fail") != "" {
		http.Error(w, "nope", http.StatusServiceUnavailable)
		return
	}
	f.mu.Lock()
	f.exts = append(f.exts, r.Header.Get("Sec-WebSocket-Extensions"))
	f.mu.Unlock()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	ctx := r.Context()
	user := "u1"
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = conn.Write(ctx, websocket.MessageText, b)
	}
	if auth != "" {
		send(protocol.Welcome{Type: protocol.TypeWelcome, User: user, Session: "s1", Heartbeat: 20})
	} else {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var req protocol.Request
		_ = json.Unmarshal(data, &req)
		switch {
		case req.Type != protocol.TypeHello || req.Token == badToken:
			conn.Close(protocol.CloseUnauthorized, "bad token")
			return
		case req.Token == "refuse":
			send(protocol.Errorf(protocol.CodeUnauthorized, "expired"))
			return
		case req.Token == "crash":
			conn.Close(websocket.StatusInternalError, "boom")
			return
		case req.Token == "early":
			send(map[string]any{"type": "presence", "user": "u9", "online": true})
		}
		send(protocol.Welcome{Type: protocol.TypeWelcome, User: user, Session: "s1", Heartbeat: 20, Device: req.Device})
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.frames = append(f.frames, data)
		f.mu.Unlock()
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			send(protocol.Errorf(protocol.CodeBadRequest, "malformed frame"))
			continue
		}
		id, _ := m["id"].(string)
		reply := func(v map[string]any) {
			if id != "" {
				v["id"] = id
			}
			send(v)
		}
		switch m["type"] {
		case protocol.TypeHello:
			reply(map[string]any{"type": protocol.TypeWelcome, "user": user, "session": "s1", "heartbeat_s": 20, "device": m["device"]})
		case protocol.TypePing:
			reply(map[string]any{"type": protocol.TypePong})
		case protocol.TypeSend:
			if m["conv"] == "down" { // a conversation whose stream has no leader
				e := protocol.Errorf(protocol.CodeUnavailable, "no leader")
				e.ID = id
				send(e)
				continue
			}
			f.mu.Lock()
			f.seq++
			seq := f.seq
			f.mu.Unlock()
			reply(map[string]any{"type": protocol.TypeAck, "conv": m["conv"], "seq": seq, "ts": "2026-01-01T00:00:00Z"})
		case protocol.TypeCreate:
			reply(map[string]any{"type": protocol.TypeConversation, "conversation": map[string]any{
				"conv": "k1", "kind": m["kind"], "title": m["title"], "members": m["members"], "member_count": 2}})
		case protocol.TypeAddMember, protocol.TypeRemoveMember, protocol.TypeLeave, protocol.TypeRead:
			reply(map[string]any{"type": protocol.TypeOK})
		case protocol.TypeMembers:
			reply(map[string]any{"type": protocol.TypeMembers, "conv": m["conv"], "members": []string{"u3", "u4"}, "more": true})
		case protocol.TypeConversations:
			// Two pages: the cursor of the second is "p2".
			if m["after"] == "p2" {
				reply(map[string]any{"type": protocol.TypeConversations, "more": false, "conversations": []map[string]any{{"conv": "k2", "kind": "direct", "last_seq": 3}}})
				continue
			}
			reply(map[string]any{"type": protocol.TypeConversations, "more": true, "next": "p2", "conversations": []map[string]any{{"conv": "k1", "kind": "group", "last_seq": 42, "unread": 2}}})
		case protocol.TypeSync, protocol.TypeHistory:
			reply(map[string]any{"type": protocol.TypeMessages, "conv": m["conv"], "more": false, "messages": []map[string]any{
				{"conv": m["conv"], "seq": 7, "sender": "u2", "client_id": "x", "ts": "t", "body": map[string]any{"text": "hi"}}}})
		case "echo": // replies after delay_ms (in a goroutine, so replies overtake each other)
			delay := time.Duration(num(m["delay_ms"])) * time.Millisecond
			go func() {
				time.Sleep(delay)
				reply(map[string]any{"type": "echo", "nonce": m["nonce"]})
			}()
		case "push": // n pushes, then the reply
			for i := range int(num(m["n"])) {
				send(map[string]any{"type": m["event"], "n": i})
			}
			reply(map[string]any{"type": protocol.TypeOK})
		case "orphan":
			send(map[string]any{"type": "pong", "id": "nobody"})
			reply(map[string]any{"type": protocol.TypeOK})
		case "fail":
			e := protocol.Errorf(protocol.CodeForbidden, "not a member")
			e.ID = id
			send(e)
		case "big":
			pad := strings.Repeat("x", int(num(m["size"])))
			reply(map[string]any{"type": "big", "pad": pad})
		case "close":
			conn.Close(websocket.StatusCode(num(m["code"])), m["reason"].(string))
			return
		case "never", protocol.TypeTyping:
		}
	}
}

func num(v any) float64 { f, _ := v.(float64); return f }

// dial connects to f with hello auth and closes the client at cleanup.
func dial(tb testing.TB, f *fakeServer, opts Options) *Client {
	tb.Helper()
	if opts.Token == "" {
		opts.Token = goodToken
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, f.url(), opts)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
