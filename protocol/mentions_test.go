package protocol

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCheckMentions(t *testing.T) {
	members := []string{"alice", "bob", "carol"}
	isMember := func(u string) bool { return slices.Contains(members, u) }
	many := make([]string, MaxMentions+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	for _, tc := range []struct {
		name     string
		mentions []string
		kind     string
		mayAll   bool
		want     []string
		code     string
		msg      string
	}{
		{name: "none", mentions: nil},
		{name: "members", mentions: []string{"bob", "carol"}, want: []string{"bob", "carol"}},
		{name: "repeats dropped in order", mentions: []string{"carol", "bob", "carol"}, want: []string{"carol", "bob"}},
		{name: "not a member", mentions: []string{"bob", "mallory"}, code: CodeBadRequest, msg: `"mallory" is not a member`},
		{name: "not an id", mentions: []string{"b ob"}, code: CodeBadRequest, msg: "not a user id"},
		{name: "all refused", mentions: []string{MentionAll}, code: CodeForbidden, msg: "owner or an admin"},
		{name: "all allowed", mentions: []string{MentionAll, "bob"}, mayAll: true, want: []string{MentionAll, "bob"}},
		{name: "over the limit", mentions: many, mayAll: true, code: CodeTooLarge, msg: "at most 50"},
		{name: "limit counts repeats", mentions: slices.Repeat([]string{"bob"}, MaxMentions+1), code: CodeTooLarge},
		{name: "exactly the limit", mentions: slices.Repeat([]string{"bob"}, MaxMentions), want: []string{"bob"}},
		{name: "not with an edit", mentions: []string{"bob"}, kind: KindEdit, code: CodeBadRequest, msg: "only with a plain message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckMentions(tc.mentions, tc.kind, MentionChecker{IsMember: isMember, MayMentionAll: tc.mayAll})
			if tc.code != "" {
				if err == nil || err.Code != tc.code || !strings.Contains(err.Message, tc.msg) {
					t.Fatalf("got %v, %v; want %s containing %q", got, err, tc.code, tc.msg)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMentionsAndLevels(t *testing.T) {
	if !Mentions([]string{"bob"}, "bob") || !Mentions([]string{MentionAll}, "carol") || Mentions([]string{"bob"}, "carol") || Mentions(nil, "bob") {
		t.Fatal("Mentions is wrong")
	}
	for _, l := range []string{MuteAll, MuteMentions, MuteNone} {
		if !ValidMuteLevel(l) {
			t.Errorf("%q is a level", l)
		}
	}
	if ValidMuteLevel("") || ValidMuteLevel("some") {
		t.Error("ValidMuteLevel took a bad level")
	}
}
