package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func TestSendStoresAndAcks(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OwnMarkerDelay = 50 * time.Millisecond })
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")

	var ack protocol.Ack
	mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
		r.Conv, r.ClientID, r.Body = "g1", "m-1", json.RawMessage(`{"text":"hi"}`)
	}), &ack)
	if ack.Type != protocol.TypeAck || ack.Conv != "g1" || ack.Seq == 0 || ack.Duplicate {
		t.Fatalf("ack %+v", ack)
	}

	// The message is in the CHAT stream as the fan-out and history read it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, ack.Seq)
	if err != nil {
		t.Fatal(err)
	}
	// Published to chat.msg.g1, stored under g1's partition.
	if want := schema.LayoutOf(stream.CachedInfo().Config).StoredMsg("g1"); raw.Subject != want {
		t.Fatalf("subject %s, want %s", raw.Subject, want)
	}
	if got := raw.Header.Get(schema.HeaderMsgID); got != "alice:g1:m-1" {
		t.Fatalf("Nats-Msg-Id %q", got)
	}
	if got := raw.Header.Get(schema.HeaderOrigin); got != alice.Welcome().Session {
		t.Fatalf("origin %q, want the session %q", got, alice.Welcome().Session)
	}
	env, err := protocol.DecodeEnvelope(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if env.Sender != "alice" || env.ClientID != "m-1" || env.TS != ack.TS || string(env.Body) != `{"text":"hi"}` {
		t.Fatalf("stored %+v, ack %+v", env, ack)
	}
	// Sending is reading up to one's own message; the marker is written
	// off the send path (TestOwnMarkerWrittenLater).
	for deadline := time.Now().Add(3 * time.Second); h.convs.marker("g1", "alice") != ack.Seq; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sender's read marker %d, want %d", h.convs.marker("g1", "alice"), ack.Seq)
		}
	}

	// A retry gets the original's seq and, from the stream, its time.
	var again protocol.Ack
	mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
		r.Conv, r.ClientID, r.Body = "g1", "m-1", json.RawMessage(`{"text":"hi"}`)
	}), &again)
	if !again.Duplicate || again.Seq != ack.Seq || again.TS != ack.TS {
		t.Fatalf("retry acked %+v, want duplicate of seq %d at the original time", again, ack.Seq)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d messages stored, want 1", info.State.Msgs)
	}
}

func TestSendRefused(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol")
	// In g3 alice is a plain member: she may not delete bob's message (as
	// g1's owner she may, group.go).
	h.convs.add("g3", protocol.ConversationGroup, "bob", "bob", "alice")
	h.msgs.put(&protocol.Message{Conv: "g3", Seq: 7, Sender: "bob", Body: json.RawMessage(`{}`)})
	h.msgs.put(&protocol.Message{Conv: "g1", Seq: 5, Sender: "bob", Body: json.RawMessage(`{}`)})
	h.msgs.put(&protocol.Message{Conv: "g1", Seq: 6, Sender: "alice", Kind: protocol.KindReaction, Ref: 5, Body: json.RawMessage(`{}`)})
	alice := h.dial("alice")
	body := json.RawMessage(`{"text":"x"}`)
	send := func(f func(r *protocol.Request)) *protocol.Request {
		return req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "g1", client.NewClientID(), body
			f(r)
		})
	}
	for _, tc := range []struct {
		name      string
		req       *protocol.Request
		code, msg string
	}{
		{"bad conv", send(func(r *protocol.Request) { r.Conv = "a.b" }), protocol.CodeBadRequest, "conv must match"},
		{"no client_id", send(func(r *protocol.Request) { r.ClientID = "" }), protocol.CodeBadRequest, "client_id is required"},
		{"body not an object", send(func(r *protocol.Request) { r.Body = json.RawMessage(`"hi"`) }), protocol.CodeBadRequest, "body must be a JSON object"},
		{"body too large", send(func(r *protocol.Request) {
			r.Body = json.RawMessage(`{"t":"` + strings.Repeat("x", protocol.MaxBodyBytes) + `"}`)
		}), protocol.CodeTooLarge, "at most"},
		{"negative ref", send(func(r *protocol.Request) { r.Kind, r.Ref = protocol.KindEdit, -1 }), protocol.CodeBadRequest, "ref must be a seq"},
		{"edit without ref", send(func(r *protocol.Request) { r.Kind = protocol.KindEdit }), protocol.CodeBadRequest, "needs ref"},
		{"not a member", send(func(r *protocol.Request) { r.Conv = "g2" }), protocol.CodeForbidden, "not a member"},
		{"edit of a missing message", send(func(r *protocol.Request) { r.Kind, r.Ref = protocol.KindEdit, 99 }), protocol.CodeNotFound, "ref 99"},
		{"edit of a reaction", send(func(r *protocol.Request) { r.Kind, r.Ref = protocol.KindEdit, 6 }), protocol.CodeNotFound, "ref 6"},
		{"edit of another's message", send(func(r *protocol.Request) { r.Kind, r.Ref = protocol.KindEdit, 5 }), protocol.CodeForbidden, "only the original sender may edit"},
		{"delete of another's message", send(func(r *protocol.Request) { r.Conv, r.Kind, r.Ref = "g3", protocol.KindDelete, 7 }), protocol.CodeForbidden, "or an admin, may delete a message"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, do(t, alice, tc.req, nil), tc.code, tc.msg) })
	}
	// Anyone may react to anyone's message.
	var ack protocol.Ack
	mustDo(t, alice, send(func(r *protocol.Request) { r.Kind, r.Ref = protocol.KindReaction, 5 }), &ack)
	if ack.Seq == 0 {
		t.Fatalf("reaction acked %+v", ack)
	}
}

func TestSyncAndHistory(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice")
	h.convs.add("g2", protocol.ConversationGroup, "bob", "bob")
	for seq := uint64(1); seq <= 10; seq++ {
		h.msgs.put(&protocol.Message{Conv: "g1", Seq: seq, Sender: "alice", Body: json.RawMessage(`{}`)})
	}
	alice := h.dial("alice")
	seqs := func(f protocol.MessagesFrame) string {
		var s []uint64
		for _, m := range f.Messages {
			s = append(s, m.Seq)
		}
		return fmt.Sprintf("%v more=%v", s, f.More)
	}
	before := func(v int64) *int64 { return &v }

	for _, tc := range []struct {
		name      string
		req       *protocol.Request
		want      string
		wantLimit int
	}{
		{"sync from the start", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit = "g1", 3 }), "[1 2 3] more=true", 3},
		{"sync after a seq", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.After = "g1", json.RawMessage(`8`) }), "[9 10] more=false", protocol.DefaultLimit},
		{"sync at the end", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.After = "g1", json.RawMessage(`10`) }), "[] more=false", protocol.DefaultLimit},
		{"sync limit capped", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit = "g1", protocol.MaxLimit+1 }), "[1 2 3 4 5 6 7 8 9 10] more=false", firstRead},
		{"history newest", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit = "g1", 2 }), "[9 10] more=true", 2},
		{"history before", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit, r.Before = "g1", 2, before(4) }), "[2 3] more=true", 2},
		{"history before 0 is unbounded", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit, r.Before = "g1", 1, before(0) }), "[10] more=true", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f protocol.MessagesFrame
			mustDo(t, alice, tc.req, &f)
			if f.Type != protocol.TypeMessages || f.Conv != "g1" || f.Messages == nil {
				t.Fatalf("reply %+v", f)
			}
			if got := seqs(f); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if got := h.msgs.lastLimit(); got != tc.wantLimit {
				t.Fatalf("asked the history for %d, want %d", got, tc.wantLimit)
			}
		})
	}
	for _, tc := range []struct {
		name      string
		req       *protocol.Request
		code, msg string
	}{
		{"sync of another's conversation", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv = "g2" }), protocol.CodeForbidden, ""},
		{"history of another's conversation", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv = "g2" }), protocol.CodeForbidden, ""},
		{"sync after not a seq", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.After = "g1", json.RawMessage(`"x"`) }), protocol.CodeBadRequest, "after must be a seq"},
		{"history before negative", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Before = "g1", before(-1) }), protocol.CodeBadRequest, "before must be a seq"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, do(t, alice, tc.req, nil), tc.code, tc.msg) })
	}
}

// TestDeliver checks the hub: what is published on a user's subject
// reaches every connection of that user, except the one that caused it.
func TestDeliver(t *testing.T) {
	h := newHarness(t)
	phone, laptop := h.dial("alice"), h.dial("alice")
	bob := h.dial("bob")
	push := func(seq int, origin string) {
		m := nats.NewMsg(schema.User("alice", schema.EventMessage))
		m.Data = fmt.Appendf(nil, `{"type":"message","conv":"g1","seq":%d,"sender":"bob","client_id":"c","ts":"t","body":{}}`, seq)
		if origin != "" {
			m.Header.Set(schema.HeaderOrigin, origin)
		}
		if err := h.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	push(1, "")
	push(2, phone.Welcome().Session)
	got := func(c *client.Client) uint64 {
		var m protocol.Message
		if err := nextEvent(t, c, protocol.TypeMessage).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m.Seq
	}
	if a, b := got(phone), got(laptop); a != 1 || b != 1 {
		t.Fatalf("first push: phone %d, laptop %d", a, b)
	}
	// The phone sent message 2 and had the ack: it gets message 3 next.
	push(3, "")
	if a, b := got(phone), got(laptop); a != 3 || b != 2 {
		t.Fatalf("phone got %d, want 3; laptop got %d, want 2", a, b)
	}
	// Bob's connection got none of alice's pushes.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if ev, err := bob.NextEvent(ctx); err == nil {
		t.Fatalf("bob got %s", ev.Raw)
	}
}

// Pages of large messages end before the frame passes the bound, with
// more, and paging on gets every message once, in order: sync from the
// oldest, history from the newest.
func TestMessagesPagesFit(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice")
	const n = 40 // 60 KiB each: 16 to a page
	body := json.RawMessage(`{"text":"` + strings.Repeat("<", 60<<10) + `"}`)
	for seq := uint64(1); seq <= n; seq++ {
		h.msgs.put(&protocol.Message{Conv: "g1", Seq: seq, Sender: "alice", ClientID: fmt.Sprint(seq), Body: body})
	}
	alice := h.dial("alice")
	page := func(r *protocol.Request) protocol.MessagesFrame {
		t.Helper()
		raw, err := alice.Request(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > protocol.MaxPageBytes {
			t.Fatalf("a messages frame of %d bytes", len(raw))
		}
		var f protocol.MessagesFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		if f.More && len(f.Messages) == 0 {
			t.Fatal("an empty page with more")
		}
		return f
	}
	var synced []uint64
	var pages int
	for after := uint64(0); ; {
		pages++
		f := page(req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit, r.After = "g1", 500, json.RawMessage(fmt.Sprint(after)) }))
		for _, m := range f.Messages {
			synced = append(synced, m.Seq)
			after = m.Seq
		}
		if !f.More {
			break
		}
	}
	if pages < 3 {
		t.Fatalf("%d pages for %d messages of 60 KiB", pages, n)
	}
	var older []uint64
	for before := int64(0); ; {
		f := page(req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit, r.Before = "g1", 500, &before }))
		if before == 0 && f.Messages[len(f.Messages)-1].Seq != n {
			t.Fatalf("history's first page ends at %d, want the newest", f.Messages[len(f.Messages)-1].Seq)
		}
		var seqs []uint64
		for _, m := range f.Messages {
			seqs = append(seqs, m.Seq)
		}
		older = append(seqs, older...)
		if !f.More {
			break
		}
		before = int64(f.Messages[0].Seq)
	}
	var want []uint64
	for seq := uint64(1); seq <= n; seq++ {
		want = append(want, seq)
	}
	if !slices.Equal(synced, want) || !slices.Equal(older, want) {
		t.Fatalf("sync got %v, history got %v, want 1..%d once each", synced, older, n)
	}
	// A page that fits is untouched: the store's more goes through.
	f := page(req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit = "g1", 2 }))
	if len(f.Messages) != 2 || !f.More {
		t.Fatalf("sync limit 2: %d messages, more %v", len(f.Messages), f.More)
	}

	// Small messages: the limit decides, read in two goes.
	h.convs.add("g2", protocol.ConversationGroup, "alice", "alice")
	for seq := uint64(1); seq <= 700; seq++ {
		h.msgs.put(&protocol.Message{Conv: "g2", Seq: seq, Sender: "alice", ClientID: fmt.Sprint(seq), Body: json.RawMessage(`{}`)})
	}
	for _, tc := range []struct {
		name        string
		req         *protocol.Request
		first, last uint64
		more        bool
	}{
		{"sync capped", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit = "g2", 1000 }), 1, 500, true},
		{"sync to the end", req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit, r.After = "g2", 500, json.RawMessage(`250`) }), 251, 700, false},
		{"history capped", req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit = "g2", 1000 }), 201, 700, true},
		{"history to the start", req(protocol.TypeHistory, func(r *protocol.Request) { b := int64(451); r.Conv, r.Limit, r.Before = "g2", 500, &b }), 1, 450, false},
	} {
		f := page(tc.req)
		n := uint64(len(f.Messages))
		if n == 0 || f.Messages[0].Seq != tc.first || f.Messages[n-1].Seq != tc.last || n != tc.last-tc.first+1 || f.More != tc.more {
			t.Fatalf("%s: %d messages from %d to %d, more %v; want %d to %d, more %v", tc.name, n, f.Messages[0].Seq, f.Messages[n-1].Seq, f.More, tc.first, tc.last, tc.more)
		}
	}
}
