package schema

import (
	"slices"
	"strings"
	"testing"
)

// No role's permissions name a JetStream API that changes the schema, a
// wildcard across streams or consumers, or the shared inbox; only the
// gateway and history read CHAT directly, only the gateway and pushnotify
// touch device tokens (issue 14). The server enforces them
// (nats/natsrv's TestRolePermissions); this keeps the table honest.
func TestRolePermissionsAreLeast(t *testing.T) {
	forbidden := []string{"$JS.API.STREAM.CREATE.", "$JS.API.STREAM.UPDATE.", "$JS.API.STREAM.DELETE.",
		"$JS.API.STREAM.PURGE.", "$JS.API.CONSUMER.DURABLE.", "$JS.API.CONSUMER.CREATE." + StreamChat,
		"$JS.API.CONSUMER.DELETE." + StreamChat, "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"}
	for _, role := range Roles {
		p, ok := RolePermissions(role)
		if !ok {
			t.Fatalf("no permissions for %s", role)
		}
		for _, s := range p.Publish {
			for _, f := range forbidden {
				if strings.HasPrefix(s, f) {
					t.Errorf("%s may publish %s", role, s)
				}
			}
			if s == ">" || strings.HasPrefix(s, "$JS.API.*") || strings.HasPrefix(s, "$JS.API.>") ||
				strings.HasSuffix(s, "DIRECT.GET.>") || strings.HasSuffix(s, "DIRECT.GET.*") || strings.HasPrefix(s, inboxPrefix) {
				t.Errorf("%s may publish %s", role, s)
			}
			readsChat := strings.HasPrefix(s, "$JS.API.DIRECT.GET."+StreamChat) || strings.HasPrefix(s, "$JS.API.STREAM.MSG.GET."+StreamChat)
			if readsChat && role != RoleGateway && role != RoleHistory && role != RoleEraser {
				t.Errorf("%s may read messages: %s", role, s)
			}
			// The eraser deletes a user's devices (publishes on their keys)
			// but reads none.
			if strings.Contains(s, KVStream(BucketPush)+".") && !strings.HasPrefix(s, "$JS.API.STREAM.INFO.") ||
				strings.Contains(s, kvPrefix+BucketPush+".") && role != RoleEraser {
				if role != RoleGateway && role != RolePush {
					t.Errorf("%s may touch device tokens: %s", role, s)
				}
			}
		}
		if want := []string{Inbox(role) + ".>"}; !slices.Equal(p.Subscribe[:1], want) || slices.Contains(p.Subscribe, "_INBOX.>") {
			t.Errorf("%s subscribes to %v", role, p.Subscribe)
		}
	}
	if _, ok := RolePermissions("operator"); ok {
		t.Fatal("an unknown role has permissions")
	}
}

// Only the eraser may delete a message of CHAT (or of a partition stream,
// CHAT_<p>): JetStream's MSG.DELETE of any other stream is nobody's, and
// no other role names a message stream's (nats/natsrv's
// TestRolePermissions checks the same on a server).
func TestOnlyTheEraserDeletesMessages(t *testing.T) {
	var dels []string
	for _, st := range AllChatStreams() {
		dels = append(dels, MsgDeleteAPI(st))
	}
	for _, role := range Roles {
		p, _ := RolePermissions(role)
		may := 0
		for _, s := range p.Publish {
			for _, del := range dels {
				if subjectMatches(s, del) {
					may++
				}
			}
			if strings.Contains(s, "MSG.DELETE.") && !slices.Contains(dels, s) {
				t.Errorf("%s may delete messages of another stream: %s", role, s)
			}
		}
		if want := map[bool]int{true: len(dels)}[role == RoleEraser]; may != want {
			t.Errorf("%s may delete messages of %d message streams, want %d", role, may, want)
		}
	}
	if ChatStream(Config{}).DenyDelete {
		t.Fatal("CHAT denies deletes: the eraser cannot erase")
	}
}

// Only the operator closes a user's connections: no role may publish the
// kick subject, and the gateway, which closes them, subscribes to it
// (nats/natsrv's TestRolePermissions checks the same on a server).
func TestKickIsTheOperators(t *testing.T) {
	kick := UserKick("alice")
	for _, role := range Roles {
		p, _ := RolePermissions(role)
		for _, s := range p.Publish {
			if subjectMatches(s, kick) {
				t.Errorf("%s may publish %s (by %s)", role, kick, s)
			}
		}
	}
	p, _ := RolePermissions(RoleGateway)
	if !slices.ContainsFunc(p.Subscribe, func(s string) bool { return subjectMatches(s, kick) }) {
		t.Errorf("the gateway may not subscribe to %s: %v", kick, p.Subscribe)
	}
}

// subjectMatches reports whether the NATS subject pattern matches subject.
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// A service's user may request its own API prefix, pull and ack its own
// events consumer and read its own inbox, nothing else: no CHAT subject,
// no other service's prefix or consumer, no other JetStream API.
func TestServicePermissions(t *testing.T) {
	p := ServicePermissions("alerts")
	want := []string{"chat.api.svc.alerts.>", "$JS.API.CONSUMER.INFO.SVC_EVENTS.svc-alerts",
		"$JS.API.CONSUMER.MSG.NEXT.SVC_EVENTS.svc-alerts", "$JS.ACK.SVC_EVENTS.svc-alerts.>"}
	if !slices.Equal(p.Publish, want) || !slices.Equal(p.Subscribe, []string{"_INBOX.svc-alerts.>"}) || p.AllowResponses {
		t.Fatalf("ServicePermissions(alerts) = %+v", p)
	}
	if ServiceFromSubject(ServiceAPI("alerts", EndpointPost)) != "alerts" || ServiceFromSubject("chat.api.svc.Bad.post") != "" || ServiceFromSubject("chat.msg.x") != "" {
		t.Fatal("ServiceFromSubject")
	}
}

// The gateway's user serves the chat service API (and answers micro
// discovery); no other role does, and none may publish to it.
func TestChatAPIServedByTheGateway(t *testing.T) {
	for _, role := range Roles {
		p, _ := RolePermissions(role)
		serves := slices.Contains(p.Subscribe, ServiceAPIAll)
		if serves != (role == RoleGateway) || (serves && !p.AllowResponses) {
			t.Errorf("%s serves the chat API: %v (responses %v)", role, serves, p.AllowResponses)
		}
		for _, s := range p.Publish {
			if strings.HasPrefix(s, ServiceAPIGroup) {
				t.Errorf("%s may publish %s", role, s)
			}
		}
	}
}
