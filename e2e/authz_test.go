package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// Roles a user can have towards a conversation.
const (
	roleOwner     = "owner"
	roleAdmin     = "admin"
	roleMember    = "member"
	roleRemoved   = "removed member"
	roleNonMember = "non-member"
	roleDirect    = "direct member"
)

// Conversations a request can be about.
const (
	convGroup   = "existing group"
	convDirect  = "existing direct"
	convMissing = "nonexistent"
)

// convRequests builds, for each conversation-scoped type, a request about
// conv. Types not here are not about one conversation (see plainRequests).
var convRequests = map[string]func(conv string) map[string]any{
	protocol.TypeSend: func(c string) map[string]any {
		return map[string]any{"type": "send", "conv": c, "client_id": fmt.Sprint(time.Now().UnixNano()), "body": text("x")}
	},
	protocol.TypeSync:    func(c string) map[string]any { return map[string]any{"type": "sync", "conv": c, "after": 0} },
	protocol.TypeHistory: func(c string) map[string]any { return map[string]any{"type": "history", "conv": c} },
	// The root is set per case (rootOf): the conversation's first message.
	protocol.TypeThread:  func(c string) map[string]any { return map[string]any{"type": "thread", "conv": c, "thread": 1} },
	protocol.TypeMembers: func(c string) map[string]any { return map[string]any{"type": "members", "conv": c} },
	protocol.TypeTyping:  func(c string) map[string]any { return map[string]any{"type": "typing", "conv": c} },
	protocol.TypeRead:    func(c string) map[string]any { return map[string]any{"type": "read", "conv": c, "seq": 1} },
	protocol.TypeDelivered: func(c string) map[string]any {
		return map[string]any{"type": "delivered", "conv": c, "seq": 1}
	},
	protocol.TypeReceipts: func(c string) map[string]any { return map[string]any{"type": "receipts", "conv": c} },
	protocol.TypeMute:     func(c string) map[string]any { return map[string]any{"type": "mute", "conv": c, "level": "mentions"} },
	protocol.TypeAddMember: func(c string) map[string]any {
		return map[string]any{"type": "add_member", "conv": c, "user": "newbie"}
	},
	// The owner removes bob; anyone else tries to remove the owner.
	protocol.TypeRemoveMember: func(c string) map[string]any {
		return map[string]any{"type": "remove_member", "conv": c, "user": "bob"}
	},
	protocol.TypeLeave: func(c string) map[string]any { return map[string]any{"type": "leave", "conv": c} },
	// Consent: dave, the direct member, accepted alice's request by
	// sending in it (send comes first), so he declines a plain
	// conversation like the group members.
	protocol.TypeAccept:  func(c string) map[string]any { return map[string]any{"type": "accept", "conv": c} },
	protocol.TypeDecline: func(c string) map[string]any { return map[string]any{"type": "decline", "conv": c} },
	protocol.TypeHide:    func(c string) map[string]any { return map[string]any{"type": "hide", "conv": c} },
	// Group settings and roles (group_test.go).
	protocol.TypeUpdate: func(c string) map[string]any {
		return map[string]any{"type": "update", "conv": c, "title": "renamed"}
	},
	protocol.TypeSetRole: func(c string) map[string]any {
		return map[string]any{"type": "set_role", "conv": c, "user": "bob", "role": "admin"}
	},
	protocol.TypeTransfer: func(c string) map[string]any {
		return map[string]any{"type": "transfer", "conv": c, "user": "bob"}
	},
	protocol.TypeUnban:  func(c string) map[string]any { return map[string]any{"type": "unban", "conv": c, "user": "zed"} },
	protocol.TypeBanned: func(c string) map[string]any { return map[string]any{"type": "banned", "conv": c} },
	protocol.TypeSearch: func(c string) map[string]any {
		return map[string]any{"type": "search", "conv": c, "query": "first"}
	},
}

// plainRequests are the types about no single conversation, with the
// reply every authenticated user gets.
var plainRequests = map[string]struct {
	frame map[string]any
	reply string
}{
	protocol.TypeHello:            {map[string]any{"type": "hello"}, protocol.TypeWelcome},
	protocol.TypePing:             {map[string]any{"type": "ping"}, protocol.TypePong},
	protocol.TypeCreate:           {map[string]any{"type": "create", "kind": "group", "title": "t", "members": []string{"zed"}}, protocol.TypeConversation},
	protocol.TypeConversations:    {map[string]any{"type": "conversations"}, protocol.TypeConversations},
	protocol.TypePresence:         {map[string]any{"type": "presence", "users": []string{"alice"}}, protocol.TypePresence},
	protocol.TypeRegisterDevice:   {map[string]any{"type": "register_device", "platform": "fcm", "token": "tok-authz"}, protocol.TypeOK},
	protocol.TypeUnregisterDevice: {map[string]any{"type": "unregister_device", "token": "tok-authz"}, protocol.TypeOK},
	protocol.TypeDevices:          {map[string]any{"type": "devices"}, protocol.TypeDevices},
	protocol.TypeBlock:            {map[string]any{"type": "block", "user": "zed"}, protocol.TypeBlocked},
	protocol.TypeUnblock:          {map[string]any{"type": "unblock", "user": "zed"}, protocol.TypeBlocked},
	protocol.TypeBlocked:          {map[string]any{"type": "blocked"}, protocol.TypeBlocked},
	// The token is the asker's own (set below): reauth keeps a user.
	protocol.TypeReauth:   {map[string]any{"type": "reauth"}, protocol.TypeOK},
	protocol.TypeSettings: {map[string]any{"type": "settings"}, protocol.TypeSettings},
	// Any user may upload (to their own quota); what a message may then
	// reference is TestAttachmentsReachMembersOnly's.
	protocol.TypeUpload: {map[string]any{"type": "upload", "content_type": "text/plain", "size": 10}, protocol.TypeUploadURL},
	// Anyone exports their own data, and only theirs (TestExport).
	protocol.TypeExport: {map[string]any{"type": "export"}, protocol.TypeExportReady},
}

// expect says what (type, role, conversation) must answer: a reply type,
// or an error code.
func expect(typ, role, conv string) string {
	if conv == convMissing || role == roleNonMember || role == roleRemoved {
		return protocol.CodeForbidden
	}
	if conv == convDirect {
		switch typ {
		case protocol.TypeAddMember, protocol.TypeRemoveMember,
			protocol.TypeUpdate, protocol.TypeSetRole, protocol.TypeTransfer, protocol.TypeUnban, protocol.TypeBanned:
			return protocol.CodeBadRequest
		}
	}
	admin := role == roleOwner || role == roleAdmin
	switch typ {
	case protocol.TypeUpdate:
		if admin {
			return protocol.TypeConversation
		}
		return protocol.CodeForbidden
	case protocol.TypeSetRole, protocol.TypeTransfer:
		if role != roleOwner {
			return protocol.CodeForbidden
		}
	case protocol.TypeUnban:
		if !admin {
			return protocol.CodeForbidden
		}
	case protocol.TypeBanned:
		if admin {
			return protocol.TypeBanned
		}
		return protocol.CodeForbidden
	}
	switch typ {
	case protocol.TypeSend:
		return protocol.TypeAck
	case protocol.TypeSync, protocol.TypeHistory, protocol.TypeThread:
		return protocol.TypeMessages
	case protocol.TypeMembers:
		return protocol.TypeMembers
	case protocol.TypeSearch:
		return protocol.TypeSearchResults
	case protocol.TypeReceipts:
		return protocol.TypeReceipts
	case protocol.TypeAccept:
		return protocol.TypeConversation
	case protocol.TypeDecline:
		return protocol.CodeBadRequest
	case protocol.TypeRemoveMember:
		if role != roleOwner {
			return protocol.CodeForbidden
		}
	}
	return protocol.TypeOK
}

// TestAuthorizationMatrix sends every request type as every role about
// every kind of conversation and checks the exact answer, then that no
// push about a conversation reached anyone outside it.
func TestAuthorizationMatrix(t *testing.T) {
	// Alice sends several hundred requests in a couple of seconds on one
	// connection: the rate limit is not what this test is about.
	e := start(t, func(c *app.Config) {
		c.Gateway.RateBurst = 10_000
		c.Gateway.RateSustained = 10_000
		// Every case adds bob and carol to a fresh group: the hourly add
		// bound (TestAddedTooOften) is lifted too.
		c.Gateway.MaxAddedPerHour = 10_000
		c.Attachments.Dir = t.TempDir()
		c.Search.Dir = filepath.Join(t.TempDir(), "search")
	})
	users := map[string]*client.Client{}
	for _, u := range []string{"alice", "erin", "bob", "carol", "dave", "mallory"} {
		// Nobody reads the members' pushes until the end: a full
		// buffer would stall their replies.
		users[u] = e.dialOpts(t, client.Options{Token: token(t, u), EventBuffer: 1 << 16})
	}
	actor := map[string]string{roleOwner: "alice", roleAdmin: "erin", roleMember: "bob", roleRemoved: "carol", roleNonMember: "mallory", roleDirect: "dave"}
	roles := []string{roleOwner, roleAdmin, roleMember, roleRemoved, roleNonMember, roleDirect}
	var groups []string
	firstSeq := map[string]uint64{} // each group's first message
	// fixture runs in each case: its deadline is the case's, the whole
	// matrix takes longer than one.
	fixture := func(t *testing.T) (group, direct string) {
		ctx := ctxT(t)
		g, err := users["alice"].CreateGroup(ctx, "matrix", "erin", "bob", "carol")
		if err != nil {
			t.Fatal(err)
		}
		first, err := users["alice"].Send(ctx, g.Conv, "", text("first"))
		if err != nil {
			t.Fatal(err)
		}
		firstSeq[g.Conv] = first.Seq
		if err := users["alice"].RemoveMember(ctx, g.Conv, "carol"); err != nil {
			t.Fatal(err)
		}
		// After carol's removal: she hears nothing of it.
		if err := users["alice"].SetRole(ctx, g.Conv, "erin", protocol.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		d, err := users["alice"].CreateDirect(ctx, "dave")
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g.Conv)
		return g.Conv, d.Conv
	}

	// rootOf is a thread root in conv: the group's first message, or in
	// the direct conversation one dave sends (he accepted alice's request
	// by the send case, which comes first).
	rootOf := func(t *testing.T, conv string, direct bool) uint64 {
		if !direct {
			return firstSeq[conv]
		}
		ack, err := users["dave"].Send(ctxT(t), conv, "", text("root"))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Seq
	}

	for _, typ := range protocol.RequestTypes {
		if typ == protocol.TypeDeleteAccount {
			// Nobody deletes another's account, whatever their role; a
			// user of their own (one of their own, dialled for it: the
			// roles' users must stay) does.
			for _, role := range roles {
				t.Run(typ+"/"+role, func(t *testing.T) {
					_, err := request(t, users[actor[role]], map[string]any{"type": typ, "user": "zed"})
					wantCode(t, err, protocol.CodeBadRequest)
				})
			}
			t.Run(typ+"/self", func(t *testing.T) {
				self := e.dial(t, "leaver")
				reply, err := request(t, self, map[string]any{"type": typ, "user": "leaver"})
				if err != nil || reply["type"] != protocol.TypeAccountDeleted {
					t.Fatalf("delete_account of oneself → %v, %v", reply, err)
				}
			})
			continue
		}
		if p, ok := plainRequests[typ]; ok {
			for _, role := range roles {
				t.Run(typ+"/"+role, func(t *testing.T) {
					frame := maps(p.frame)
					if typ == protocol.TypeReauth {
						frame["token"] = token(t, actor[role])
					}
					reply, err := request(t, users[actor[role]], frame)
					if err != nil || reply["type"] != p.reply {
						t.Fatalf("%v → %v, %v; want %s", frame, reply, err, p.reply)
					}
				})
			}
			continue
		}
		build, ok := convRequests[typ]
		if !ok {
			t.Errorf("request type %q is in protocol.RequestTypes but not in the matrix", typ)
			continue
		}
		for _, role := range roles {
			for _, which := range []string{convGroup, convDirect, convMissing} {
				if (role == roleDirect) != (which == convDirect) && which != convMissing && role != roleNonMember {
					// Direct members are asked about their direct
					// conversation; group roles about the group; the
					// outsider about both.
					continue
				}
				t.Run(typ+"/"+role+"/"+which, func(t *testing.T) {
					group, direct := fixture(t)
					conv := map[string]string{convGroup: group, convDirect: direct, convMissing: "g_doesnotexist0000000000"}[which]
					frame := build(conv)
					if typ == protocol.TypeRemoveMember && role != roleOwner {
						frame["user"] = "alice"
					}
					if typ == protocol.TypeThread && which != convMissing {
						frame["thread"] = rootOf(t, conv, which == convDirect)
					}
					reply, err := request(t, users[actor[role]], frame)
					want := expect(typ, role, which)
					got := code(err)
					if got == "" && reply != nil {
						got, _ = reply["type"].(string)
					}
					if got != want {
						t.Fatalf("%v as %s → %v (%v); want %s", frame, role, reply, err, want)
					}
					if role == roleNonMember && which != convMissing {
						// An outsider learns nothing: the refusal is word
						// for word the one about a conversation that does
						// not exist.
						missing := build("g_doesnotexist0000000000")
						if v, ok := frame["client_id"]; ok {
							missing["client_id"] = v
						}
						_, merr := request(t, users[actor[role]], missing)
						if err == nil || merr == nil || strings.ReplaceAll(err.Error(), conv, "") != strings.ReplaceAll(merr.Error(), "g_doesnotexist0000000000", "") {
							t.Fatalf("outsider about an existing %s: %v; about a nonexistent one: %v", which, err, merr)
						}
					}
				})
			}
		}
	}

	// add_member in a group whose adds only the owner and admins make
	// (only_admins_add): the one request whose answer depends on a setting
	// rather than on the role alone.
	for _, role := range []string{roleOwner, roleAdmin, roleMember, roleRemoved, roleNonMember} {
		t.Run(protocol.TypeAddMember+"/"+role+"/only_admins_add group", func(t *testing.T) {
			group, _ := fixture(t)
			if _, err := users["alice"].Update(ctxT(t), group, client.GroupUpdate{OnlyAdminsAdd: ptr(true)}); err != nil {
				t.Fatal(err)
			}
			frame := convRequests[protocol.TypeAddMember](group)
			reply, err := request(t, users[actor[role]], frame)
			want := protocol.CodeForbidden
			if role == roleOwner || role == roleAdmin {
				want = protocol.TypeOK
			}
			got := code(err)
			if got == "" && reply != nil {
				got, _ = reply["type"].(string)
			}
			if got != want {
				t.Fatalf("%v as %s → %v (%v); want %s", frame, role, reply, err, want)
			}
		})
	}

	// Nothing about a group reached mallory, and after her removal nothing
	// but the removal itself reached carol.
	time.Sleep(500 * time.Millisecond)
	for _, who := range []string{"mallory", "carol"} {
		c := users[who]
		for {
			ev, err := c.NextEvent(shortCtx(t))
			if err != nil {
				break
			}
			var m map[string]any
			_ = json.Unmarshal(ev.Raw, &m)
			conv, _ := m["conv"].(string)
			if inner, ok := m["conversation"].(map[string]any); ok {
				conv, _ = inner["conv"].(string)
			}
			if !slices.Contains(groups, conv) {
				continue
			}
			allowed := who == "carol" && (ev.Type == protocol.TypeConversation ||
				(ev.Type == protocol.TypeMember && m["user"] == "carol" && m["action"] == "removed") ||
				// carol was a member when the group was created and its first
				// message was sent.
				(ev.Type == protocol.TypeMessage && strings.Contains(string(ev.Raw), `"first"`)))
			if !allowed {
				t.Errorf("%s received %s", who, ev.Raw)
			}
		}
	}
}

func maps(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := contextWithTimeout(200 * time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
