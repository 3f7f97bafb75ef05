package fanout_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestNoticeLimits: a typing burst in a group past MaxNoticeMembers costs
// no push per member (so no membership check per member at the
// gateways); a read there reaches only the reader's own devices. In a
// small group the notices of a user spare those they blocked.
func TestNoticeLimits(t *testing.T) {
	h := start(t)
	others := make([]string, protocol.MaxNoticeMembers)
	for i := range others {
		others[i] = fmt.Sprintf("u%03d", i)
	}
	big := group(t, h, "owner", others...)
	small := group(t, h, "alice", "bob", "mallory")
	h.collect(t, schema.EventConversation, protocol.MaxNoticeMembers+1+3)
	nc, _ := natstest.Connect(t, h.srv)
	publish := func(subject string, v any) {
		data, _ := json.Marshal(v)
		if err := nc.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		publish(schema.ConvTyping(big), schema.TypingNotice{User: "u001"})
	}
	publish(schema.ConvRead(big), schema.ReadNotice{User: "u001", Seq: 1})
	// Notices of one publisher arrive in order: once the small group's
	// come, every notice of the big group was handled.
	publish(schema.ConvTyping(small), schema.TypingNotice{User: "alice", Except: []string{"mallory"}})
	publish(schema.ConvRead(small), schema.ReadNotice{User: "alice", Seq: 1, Except: []string{"mallory"}})
	var got []string
	for len(got) < 4 { // bob's typing, alice's and bob's read, plus u001's own read
		d := h.next(t)
		var f struct {
			Conv string `json:"conv"`
		}
		_ = json.Unmarshal(d.data, &f)
		got = append(got, d.user+" "+d.event+" "+map[string]string{big: "big", small: "small"}[f.Conv])
	}
	slices.Sort(got)
	want := []string{"alice read small", "bob read small", "bob typing small", "u001 read big"}
	if !slices.Equal(got, want) {
		t.Fatalf("pushes %v, want %v", got, want)
	}
	select {
	case m := <-h.got:
		t.Fatalf("one more push: %s %s", m.Subject, m.Data)
	default:
	}
}
