package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/protocol"
)

func TestBadInputKeepsConnection(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	exact := `{"t":"` + strings.Repeat("x", protocol.MaxBodyBytes-8) + `"}`
	if len(exact) != protocol.MaxBodyBytes {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	cases := []struct {
		name  string
		frame string
		code  string
	}{
		{"invalid json", `{"type":"send",`, protocol.CodeBadRequest},
		{"not an object", `[1,2,3]`, protocol.CodeBadRequest},
		{"no type", `{"id":"x"}`, protocol.CodeBadRequest},
		{"unknown type", `{"type":"launch","id":"u1"}`, protocol.CodeBadRequest},
		{"invalid utf-8", "{\"type\":\"send\",\"id\":\"u8\",\"conv\":\"" + conv.Conv + "\",\"client_id\":\"u\",\"body\":{\"text\":\"\xff\xfe\"}}", protocol.CodeBadRequest},
		{"bad conv id", `{"type":"send","id":"b1","conv":"a.b","client_id":"x","body":{}}`, protocol.CodeBadRequest},
		{"wildcard conv id", `{"type":"sync","id":"b2","conv":"*","after":0}`, protocol.CodeBadRequest},
		{"long conv id", `{"type":"sync","id":"b3","conv":"` + strings.Repeat("c", 65) + `"}`, protocol.CodeBadRequest},
		{"bad user id", `{"type":"add_member","id":"b4","conv":"` + conv.Conv + `","user":"x>"}`, protocol.CodeBadRequest},
		{"no client_id", `{"type":"send","id":"b5","conv":"` + conv.Conv + `","body":{"text":"x"}}`, protocol.CodeBadRequest},
		{"body not object", `{"type":"send","id":"b6","conv":"` + conv.Conv + `","client_id":"x","body":"hi"}`, protocol.CodeBadRequest},
		{"body over 64 KiB", `{"type":"send","id":"b7","conv":"` + conv.Conv + `","client_id":"big","body":{"t":"` + strings.Repeat("x", protocol.MaxBodyBytes-7) + `"}}`, protocol.CodeTooLarge},
		{"bad after", `{"type":"sync","id":"b8","conv":"` + conv.Conv + `","after":"yesterday"}`, protocol.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.WriteRaw(ctx, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			ev := nextEvent(t, a, protocol.TypeError)
			if ev["code"] != tc.code || ev["message"] == "" {
				t.Fatalf("reply = %v, want %s", ev, tc.code)
			}
		})
	}
	// Exactly 64 KiB is fine, and the connection still works.
	ack, err := a.Send(ctx, conv.Conv, "exact", rawJSON(exact))
	if err != nil {
		t.Fatalf("64 KiB body: %v", err)
	}
	page, err := a.Sync(ctx, conv.Conv, 0, 10)
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Seq != ack.Seq || len(page.Messages[0].Body) != protocol.MaxBodyBytes {
		t.Fatalf("sync = %v, %v", page, err)
	}
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestOversizedFrameCloses1009(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	conn, _, err := websocket.Dial(ctx, e.app.WebSocketURL(), &websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + token(t, "alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	_, welcome, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkServerFrame(t, welcome)
	big := `{"type":"ping","pad":"` + strings.Repeat("p", 1<<20) + `"}`
	_ = conn.Write(ctx, websocket.MessageText, []byte(big))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		_, data, err := conn.Read(rctx)
		if err == nil {
			checkServerFrame(t, data)
		}
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusMessageTooBig {
				t.Fatalf("close = %v, want 1009", err)
			}
			return
		}
	}
}

func TestRateLimit(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	conv, err := a.CreateDirect(ctx, "bob") // 1 token
	if err != nil {
		t.Fatal(err)
	}
	// Pipelined: all frames are written before any reply is read, so the
	// bucket has no time to refill much.
	const n = 400
	frame := []byte(`{"type":"typing","id":"t","conv":"` + conv.Conv + `"}`)
	for range n {
		if err := a.WriteRaw(ctx, frame); err != nil {
			t.Fatal(err)
		}
	}
	ok, limited := 0, 0
	for range n {
		ev := nextEvent(t, a, protocol.TypeOK, protocol.TypeError)
		switch {
		case ev["type"] == protocol.TypeOK:
			ok++
		case ev["code"] == protocol.CodeRateLimited:
			limited++
		default:
			t.Fatalf("reply %v", ev)
		}
	}
	if ok < 199 || limited == 0 {
		t.Fatalf("%d allowed, %d rate limited; want at least the burst allowed and the rest limited", ok, limited)
	}
	// The connection stays, and pings are never limited.
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A frame whose fields have the wrong types still gets its id back.
func TestErrorKeepsIDOnTypeMismatch(t *testing.T) {
	e := start(t)
	a := e.dial(t, "alice")
	_, err := request(t, a, map[string]any{"type": "sync", "conv": "c1", "limit": "five"})
	wantCode(t, err, protocol.CodeBadRequest)
}
