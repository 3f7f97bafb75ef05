package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// fakeBlocks keeps block lists in memory and tells its watchers of each
// change, as the conversation store's watch does.
type fakeBlocks struct {
	mu       sync.Mutex
	lists    map[string]BlockList
	added    map[string]int
	watchers []func(string, BlockList)
	reads    atomic.Int64 // HasBlocked and Blocked calls
	// late, when set, holds the watchers' news of each change until it
	// is closed: a watch slower than the request that made the change.
	late chan struct{}
}

func newFakeBlocks() *fakeBlocks {
	return &fakeBlocks{lists: make(map[string]BlockList), added: make(map[string]int)}
}

func (f *fakeBlocks) change(uid string, fn func([]string) []string) {
	f.mu.Lock()
	l := f.lists[uid]
	l = BlockList{Users: fn(slices.Clone(l.Users)), Rev: l.Rev + 1}
	f.lists[uid] = l
	ws := slices.Clone(f.watchers)
	late := f.late
	f.mu.Unlock()
	tell := func() {
		for _, w := range ws {
			w(uid, l)
		}
	}
	if late != nil {
		go func() {
			<-late
			tell()
		}()
		return
	}
	tell()
}

func (f *fakeBlocks) Block(_ context.Context, uid, other string) error {
	if uid == other {
		return fmt.Errorf("%w: you cannot block yourself", ErrBadRequest)
	}
	f.change(uid, func(us []string) []string {
		if !slices.Contains(us, other) {
			us = append(us, other)
			slices.Sort(us)
		}
		return us
	})
	return nil
}

func (f *fakeBlocks) Unblock(_ context.Context, uid, other string) error {
	f.change(uid, func(us []string) []string { return slices.DeleteFunc(us, func(u string) bool { return u == other }) })
	return nil
}

func (f *fakeBlocks) Blocked(_ context.Context, uid string) (BlockList, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists[uid], nil
}

func (f *fakeBlocks) HasBlocked(_ context.Context, uid, other string) (bool, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.lists[uid].Users, other), nil
}

func (f *fakeBlocks) Watch(_ context.Context, fn func(string, BlockList)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(f.watchers, fn)
	return nil
}

func (f *fakeBlocks) NoteAdded(_ context.Context, uid string, limit int, window time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.added[uid] >= limit {
		return fmt.Errorf("%w: user %s was added to too many conversations in the last %s", ErrRateLimited, uid, window)
	}
	f.added[uid]++
	return nil
}

func TestBlockRequests(t *testing.T) {
	h := newHarness(t)
	alice := h.dial("alice")
	var f protocol.BlockedFrame
	mustDo(t, alice, req(protocol.TypeBlock, func(r *protocol.Request) { r.User = "mallory" }), &f)
	if f.Type != protocol.TypeBlocked || !slices.Equal(f.Users, []string{"mallory"}) {
		t.Fatalf("block answered %+v", f)
	}
	mustDo(t, alice, req(protocol.TypeBlock, func(r *protocol.Request) { r.User = "eve" }), nil)
	mustDo(t, alice, req(protocol.TypeUnblock, func(r *protocol.Request) { r.User = "mallory" }), nil)
	mustDo(t, alice, req(protocol.TypeBlocked, nil), &f)
	if !slices.Equal(f.Users, []string{"eve"}) {
		t.Fatalf("blocked answered %+v", f)
	}
	wantCode(t, do(t, alice, req(protocol.TypeBlock, func(r *protocol.Request) { r.User = "alice" }), nil), protocol.CodeBadRequest, "yourself")
	wantCode(t, do(t, alice, req(protocol.TypeBlock, func(r *protocol.Request) { r.User = "no spaces" }), nil), protocol.CodeBadRequest, "user")
}

// TestBlockDropsPushes: a connection gets no message, typing, read or
// presence push from a user it blocked, and a change made on another
// gateway (the watch) applies at once; other users' pushes still come.
// TestBlockTellsOtherDevicesBeforeTheWatch: when the request that blocks
// reads the new list before the watch brings it, the user's other
// connections still hear of it, once.
func TestBlockTellsOtherDevicesBeforeTheWatch(t *testing.T) {
	h := newHarness(t)
	late := make(chan struct{})
	h.blocks.mu.Lock()
	h.blocks.late = late
	h.blocks.mu.Unlock()
	phone, laptop := h.dial("alice"), h.dial("alice")
	mustDo(t, phone, req(protocol.TypeBlock, func(r *protocol.Request) { r.User = "mallory" }), nil)
	var f protocol.BlockedFrame
	if err := nextEvent(t, laptop, protocol.TypeBlocked).Decode(&f); err != nil || !slices.Equal(f.Users, []string{"mallory"}) {
		t.Fatalf("the other device got %+v, %v; want the new list", f, err)
	}
	close(late) // the watch comes late with the same list: nothing more
	mustDo(t, phone, req(protocol.TypeUnblock, func(r *protocol.Request) { r.User = "mallory" }), nil)
	if err := nextEvent(t, laptop, protocol.TypeBlocked).Decode(&f); err != nil || len(f.Users) != 0 {
		t.Fatalf("after the unblock the other device got %+v, %v; want the empty list, with no repeat of the old one", f, err)
	}
}

func TestBlockDropsPushes(t *testing.T) {
	h := newHarness(t)
	alice := h.dial("alice")
	h.blocks.change("alice", func([]string) []string { return []string{"mallory"} })
	nextEvent(t, alice, protocol.TypeBlocked) // the watch told the connection
	publish := func(event, frame string) {
		if err := h.nc.Publish(schema.User("alice", event), []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	publish(schema.EventMessage, `{"type":"message","conv":"g1","seq":1,"sender":"mallory","body":{}}`)
	publish(schema.EventTyping, `{"type":"typing","conv":"g1","user":"mallory"}`)
	publish(schema.EventPresence, `{"type":"presence","user":"mallory","online":true}`)
	publish(schema.EventMessage, `{"type":"message","conv":"g1","seq":2,"sender":"bob","body":{}}`)
	ev := nextEvent(t, alice, protocol.TypeMessage, protocol.TypeTyping, protocol.TypePresence)
	var m protocol.Message
	if err := ev.Decode(&m); err != nil || m.Sender != "bob" {
		t.Fatalf("first push %s, want bob's message", ev.Raw)
	}
}

// TestBlockNoticesCarryList: the typing and read notices of a user who
// blocked others name them, so the fan-out spares them.
func TestBlockNoticesCarryList(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "mallory")
	h.blocks.change("alice", func([]string) []string { return []string{"mallory"} })
	notices := h.subscribe(schema.ConvTyping("*"))
	alice := h.dial("alice")
	mustDo(t, alice, req(protocol.TypeTyping, func(r *protocol.Request) { r.ID, r.Conv = "t1", "g1" }), nil)
	var n schema.TypingNotice
	if err := json.Unmarshal(next(t, notices).Data, &n); err != nil || !slices.Equal(n.Except, []string{"mallory"}) {
		t.Fatalf("typing notice %+v (%v), want except mallory", n, err)
	}
}

// TestBlockRefusesAdds: a blocked user cannot open a direct conversation
// with the blocker nor add them, and neither hears why.
func TestBlockRefusesAdds(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "mallory", "mallory")
	h.blocks.change("alice", func([]string) []string { return []string{"mallory"} })
	mallory := h.dial("mallory")
	err := do(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationDirect, []string{"alice"}
	}), nil)
	wantCode(t, err, protocol.CodeForbidden, "you cannot start a conversation with alice")
	err = do(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationGroup, []string{"bob", "alice"}
	}), nil)
	wantCode(t, err, protocol.CodeForbidden, "you cannot add alice")
	err = do(t, mallory, req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv, r.User = "g1", "alice" }), nil)
	wantCode(t, err, protocol.CodeForbidden, "you cannot add alice")
	if h.blocks.added["bob"] != 0 {
		t.Fatalf("a refused create counted an add of bob")
	}
	// Others still may.
	bob := h.dial("bob")
	mustDo(t, bob, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationDirect, []string{"alice"}
	}), nil)
}

func TestAddLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxAddedPerHour = 2 })
	mallory := h.dial("mallory")
	many := make([]string, protocol.MaxUsersPerRequest+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	reads := h.blocks.reads.Load()
	err := do(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationGroup, many
	}), nil)
	wantCode(t, err, protocol.CodeBadRequest, "at most 1000 users")
	if got := h.blocks.reads.Load() - reads; got != 0 {
		t.Fatalf("an oversized create read %d block lists", got)
	}
	for i := range 2 {
		mustDo(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Title, r.Members = protocol.ConversationGroup, fmt.Sprint(i), []string{"bob"}
		}), nil)
	}
	err = do(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationGroup, []string{"bob"}
	}), nil)
	wantCode(t, err, protocol.CodeRateLimited, "user bob was added to too many conversations")
	// An add_member to a group mallory is not in counts nothing.
	h.blocks.added["carol"] = 1
	wantCode(t, do(t, mallory, req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv, r.User = "g_other", "carol" }), nil), protocol.CodeForbidden, "")
	if n := h.blocks.added["carol"]; n != 1 {
		t.Fatalf("an outsider's add_member counted: %d adds of carol", n)
	}
	// Opening a direct conversation is not an add to a group.
	mustDo(t, mallory, req(protocol.TypeCreate, func(r *protocol.Request) {
		r.Kind, r.Members = protocol.ConversationDirect, []string{"bob"}
	}), nil)
}

// BenchmarkHides is the per-push cost of block filtering: none for a user
// who blocked nobody, one decode of the frame for one who did.
func BenchmarkHides(b *testing.B) {
	body := strings.Repeat("x", 1000)
	m := &nats.Msg{Subject: schema.User("alice", schema.EventMessage),
		Data: []byte(`{"type":"message","conv":"g1","seq":7,"sender":"bob","client_id":"c","ts":"2026-01-01T00:00:00Z","body":{"text":"` + body + `"},"prev":6}`)}
	for _, tc := range []struct {
		name    string
		blocked []string
	}{{"none", nil}, {"blocked10", []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}}} {
		b.Run(tc.name, func(b *testing.B) {
			e := &userEntry{uid: "alice"}
			e.blocks.set(BlockList{Users: tc.blocked, Rev: 1})
			for b.Loop() {
				if e.hides(m) {
					b.Fatal("bob is not blocked")
				}
			}
		})
	}
}

func TestTopField(t *testing.T) {
	for _, tc := range []struct {
		frame, key, want string
		ok               bool
	}{
		{`{"type":"message","conv":"g1","seq":7,"sender":"bob","body":{"text":"x"}}`, "sender", "bob", true},
		{` { "body" : {"sender":"eve","a":[1,{"b":"}"}]} , "n":-1.5e3, "t":true, "sender" : "b\u006fb" } `, "sender", "bob", true},
		{`{"type":"typing","conv":"g1","user":"mallory"}`, "user", "mallory", true},
		{`{"text":"\"sender\":\"eve\"","sender":"bob"}`, "sender", "bob", true},
		{`{"type":"message"}`, "sender", "", false},
		{`{"sender":7}`, "sender", "", false},
		{`{"a":"unterminated`, "sender", "", false},
		{`{"a":{"b":1}`, "sender", "", false},
		{`[1,2]`, "sender", "", false},
		{``, "sender", "", false},
	} {
		got, ok := topField([]byte(tc.frame), tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("topField(%s, %s) = %q, %v; want %q, %v", tc.frame, tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzTopField: the scanner never panics and, when it finds the key, agrees
// with encoding/json on frames that decode.
func FuzzTopField(f *testing.F) {
	f.Add([]byte(`{"type":"message","conv":"g1","seq":7,"sender":"bob","body":{"text":"x"}}`))
	f.Add([]byte(`{"a":[{"sender":"x"}],"sender":"y"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := topField(data, "sender")
		if bytes.Count(data, []byte("sender")) > 1 || bytes.Contains(data, []byte(`\u`)) || !utf8.Valid(data) {
			return // a repeated or escaped key (encoding/json takes the last), or bytes it would replace
		}
		var v map[string]json.RawMessage
		if !ok || json.Unmarshal(data, &v) != nil {
			return
		}
		var want string
		if json.Unmarshal(v["sender"], &want) == nil && want != got {
			t.Fatalf("topField = %q, encoding/json %q", got, want)
		}
	})
}
