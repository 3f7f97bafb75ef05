package schema

import "testing"

// The builders and their parsers must agree: what SplitUser and
// ConvFromSubject take apart is what User and the others build.
func TestSubjectsRoundTrip(t *testing.T) {
	for _, ev := range []string{EventMessage, EventMember, EventConversation, EventTyping, EventRead, EventPresence, EventKick} {
		uid, got := SplitUser(User("u_1", ev))
		if uid != "u_1" || got != ev {
			t.Errorf("SplitUser(User(u_1, %s)) = %q, %q", ev, uid, got)
		}
	}
	for _, tc := range []struct{ subject, uid, event string }{
		{"chat.user.bob", "bob", ""},
		{"chat.user.", "", ""},
		{"chat.msg.bob", "", ""},
		{"", "", ""},
	} {
		if uid, ev := SplitUser(tc.subject); uid != tc.uid || ev != tc.event {
			t.Errorf("SplitUser(%q) = %q, %q; want %q, %q", tc.subject, uid, ev, tc.uid, tc.event)
		}
	}
	for _, s := range []string{Msg("c1"), Member("c1"), ConvTyping("c1"), ConvRead("c1")} {
		if got := ConvFromSubject(s); got != "c1" {
			t.Errorf("ConvFromSubject(%q) = %q", s, got)
		}
	}
	if got, want := UserEvent(EventPresence), "chat.user.*.presence"; got != want {
		t.Errorf("UserEvent = %q, want %q", got, want)
	}
	if got, want := KVKey(BucketPresence, "g.gw1"), "$KV.PRESENCE.g.gw1"; got != want {
		t.Errorf("KVKey = %q, want %q", got, want)
	}
	if got, want := AckWildcard(StreamChat, ConsumerFanout), "$JS.ACK.CHAT.fanout.>"; got != want {
		t.Errorf("AckWildcard = %q, want %q", got, want)
	}
	if got, want := HistoryAPI("last"), "chat.api.history.last"; got != want {
		t.Errorf("HistoryAPI = %q, want %q", got, want)
	}
}
