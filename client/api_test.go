package client

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// TestHelpers checks each typed helper's frame on the wire and the decoding
// of its reply.
func TestHelpers(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f, Options{})
	ctx := testCtx(t)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	tests := []struct {
		name   string
		call   func() (any, error)
		typ    string         // frame type the server must have received
		frame  map[string]any // fields it must have (JSON numbers are float64)
		absent []string       // fields it must not have
		check  func(t *testing.T, got any)
	}{
		{"Send", func() (any, error) { return c.Send(ctx, "k1", "", map[string]string{"text": "hi"}) },
			protocol.TypeSend, map[string]any{"conv": "k1", "body": map[string]any{"text": "hi"}}, []string{"kind", "ref"},
			func(t *testing.T, got any) {
				if a := got.(*protocol.Ack); a.Conv != "k1" || a.Seq == 0 || a.TS == "" {
					t.Fatalf("ack %+v", a)
				}
				if id, _ := f.last(protocol.TypeSend)["client_id"].(string); !uuid.MatchString(id) {
					t.Fatalf("generated client_id %q is not a UUIDv4", id)
				}
			}},
		{"SendKind", func() (any, error) {
			return c.SendKind(ctx, "k1", "cid-1", protocol.KindEdit, 43, json.RawMessage(`{"text":"fixed"}`))
		}, protocol.TypeSend, map[string]any{"client_id": "cid-1", "kind": "edit", "ref": 43.0, "body": map[string]any{"text": "fixed"}}, nil, nil},
		{"CreateDirect", func() (any, error) { return c.CreateDirect(ctx, "u2") },
			protocol.TypeCreate, map[string]any{"kind": "direct", "members": []any{"u2"}}, []string{"title"},
			func(t *testing.T, got any) {
				if cv := got.(*protocol.Conversation); cv.Conv != "k1" || cv.Kind != "direct" {
					t.Fatalf("conversation %+v", cv)
				}
			}},
		{"CreateGroup", func() (any, error) { return c.CreateGroup(ctx, "Team", "u2", "u3") },
			protocol.TypeCreate, map[string]any{"kind": "group", "title": "Team", "members": []any{"u2", "u3"}}, nil,
			func(t *testing.T, got any) {
				if cv := got.(*protocol.Conversation); !reflect.DeepEqual(cv.Members, []string{"u2", "u3"}) || cv.MemberCount != 2 {
					t.Fatalf("conversation %+v", cv)
				}
			}},
		{"AddMembers one", func() (any, error) { return nil, c.AddMembers(ctx, "k1", "u4") },
			protocol.TypeAddMember, map[string]any{"conv": "k1", "user": "u4"}, []string{"users"}, nil},
		{"AddMembers many", func() (any, error) { return nil, c.AddMembers(ctx, "k1", "u4", "u5") },
			protocol.TypeAddMember, map[string]any{"conv": "k1", "users": []any{"u4", "u5"}}, []string{"user"}, nil},
		{"RemoveMember", func() (any, error) { return nil, c.RemoveMember(ctx, "k1", "u4") },
			protocol.TypeRemoveMember, map[string]any{"conv": "k1", "user": "u4"}, nil, nil},
		{"Leave", func() (any, error) { return nil, c.Leave(ctx, "k1") },
			protocol.TypeLeave, map[string]any{"conv": "k1"}, nil, nil},
		{"Members", func() (any, error) { return c.Members(ctx, "k1", "u2", 500) },
			protocol.TypeMembers, map[string]any{"conv": "k1", "after": "u2", "limit": 500.0}, nil,
			func(t *testing.T, got any) {
				if m := got.(*protocol.MembersFrame); !m.More || !reflect.DeepEqual(m.Members, []string{"u3", "u4"}) {
					t.Fatalf("members %+v", m)
				}
			}},
		{"Members first page", func() (any, error) { return c.Members(ctx, "k1", "", 0) },
			protocol.TypeMembers, map[string]any{"conv": "k1"}, []string{"after", "limit"}, nil},
		{"Conversations pages through", func() (any, error) { return c.Conversations(ctx) },
			protocol.TypeConversations, map[string]any{"after": "p2"}, []string{"limit"},
			func(t *testing.T, got any) {
				if cs := got.([]*protocol.Conversation); len(cs) != 2 || cs[0].LastSeq != 42 || cs[0].Unread != 2 || cs[1].Conv != "k2" {
					t.Fatalf("conversations %+v", cs)
				}
			}},
		{"ConversationsPage first", func() (any, error) { return c.ConversationsPage(ctx, "", 20) },
			protocol.TypeConversations, map[string]any{"limit": 20.0}, []string{"after"},
			func(t *testing.T, got any) {
				if f := got.(*protocol.ConversationsFrame); len(f.Conversations) != 1 || !f.More || f.Next != "p2" {
					t.Fatalf("page %+v", f)
				}
			}},
		{"Sync", func() (any, error) { return c.Sync(ctx, "k1", 0, 100) },
			protocol.TypeSync, map[string]any{"conv": "k1", "after": 0.0, "limit": 100.0}, nil,
			func(t *testing.T, got any) {
				if m := got.(*protocol.MessagesFrame); len(m.Messages) != 1 || m.Messages[0].Seq != 7 || string(m.Messages[0].Body) != `{"text":"hi"}` {
					t.Fatalf("messages %+v", m)
				}
			}},
		{"History newest", func() (any, error) { return c.History(ctx, "k1", 0, 50) },
			protocol.TypeHistory, map[string]any{"conv": "k1", "limit": 50.0}, []string{"before"}, nil},
		{"History before", func() (any, error) { return c.History(ctx, "k1", 43, 0) },
			protocol.TypeHistory, map[string]any{"before": 43.0}, []string{"limit"}, nil},
		{"MarkRead", func() (any, error) { return nil, c.MarkRead(ctx, "k1", 43) },
			protocol.TypeRead, map[string]any{"conv": "k1", "seq": 43.0}, nil, nil},
		{"Ping", func() (any, error) { return nil, c.Ping(ctx) }, protocol.TypePing, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			frame := f.last(tt.typ)
			if frame == nil {
				t.Fatalf("server got no %s frame", tt.typ)
			}
			if id, _ := frame["id"].(string); id == "" {
				t.Fatalf("%s frame has no id: %v", tt.typ, frame)
			}
			for k, want := range tt.frame {
				if !reflect.DeepEqual(frame[k], want) {
					t.Errorf("frame[%q] = %#v, want %#v", k, frame[k], want)
				}
			}
			for _, k := range tt.absent {
				if _, ok := frame[k]; ok {
					t.Errorf("frame has %q: %v", k, frame)
				}
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestTypingIsFireAndForget(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f, Options{})
	ctx := testCtx(t)
	if err := c.Typing(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil { // the server handles frames in order
		t.Fatal(err)
	}
	frame := f.last(protocol.TypeTyping)
	if frame == nil || frame["conv"] != "k1" {
		t.Fatalf("typing frame %v", frame)
	}
	if _, ok := frame["id"]; ok {
		t.Fatalf("typing carries an id: %v", frame)
	}
}

func TestHelperUnexpectedReply(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	// A reply of the wrong type must be an error, not a zero value.
	err := c.call(testCtx(t), protocol.Request{Type: protocol.TypePing}, protocol.TypeOK, nil)
	if err == nil || errors.As(err, new(*protocol.Error)) {
		t.Fatalf("pong where ok was expected: err %v", err)
	}
}

func TestNewClientID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewClientID()
		if len(id) != 36 || id[14] != '4' || seen[id] || !protocol.ValidClientID(id) {
			t.Fatalf("bad or repeated client id %q", id)
		}
		seen[id] = true
	}
}
