package natsrv

import (
	"fmt"
	"net/url"
	"strings"
)

// Role users of the CHAT account. Each role process connects as its own
// user, whose permissions allow what that role does and nothing else; the
// operator user keeps full access for people running the nats CLI.
const (
	// RoleGateway serves WebSocket clients and runs a fan-out worker.
	RoleGateway = "gateway"
	// RoleHistory writes the history store and serves chat.api.history.
	RoleHistory = "history"
	// RolePresence runs the presence service.
	RolePresence = "presence"
	// RolePush runs the push notification dispatcher.
	RolePush = "pushnotify"
	// RoleService is for internal services: publish messages into
	// conversations and read history, nothing else.
	RoleService = "service"
)

// Roles lists the role users, in the order their URL files are written.
var Roles = []string{RoleGateway, RoleHistory, RolePresence, RolePush, RoleService}

// RoleURLFile is the file under DataDir holding a role's NATS URL.
func RoleURLFile(role string) string { return "nats-" + role + ".url" }

// JetStream API use every role process needs: account and stream info, the
// schema's idempotent create-or-update, direct gets (KV reads and message
// pages), consumers (KV watchers and lists are ordered consumers; the
// services' durables) and their pulls. Deleting or purging streams is left
// to the operator.
var jsClient = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.INFO.*",
	"$JS.API.STREAM.NAMES",
	"$JS.API.STREAM.LIST",
	"$JS.API.STREAM.CREATE.*",
	"$JS.API.STREAM.UPDATE.*",
	"$JS.API.STREAM.MSG.GET.*",
	"$JS.API.DIRECT.GET.>",
	"$JS.API.CONSUMER.CREATE.>",
	"$JS.API.CONSUMER.DURABLE.CREATE.>",
	"$JS.API.CONSUMER.INFO.>",
	"$JS.API.CONSUMER.NAMES.>",
	"$JS.API.CONSUMER.LIST.>",
	"$JS.API.CONSUMER.MSG.NEXT.>",
	// Watchers and key lists are ephemeral consumers on the buckets'
	// streams, deleted when they stop (wildcards are whole tokens, so each
	// bucket is named).
	"$JS.API.CONSUMER.DELETE.KV_CONVERSATIONS.*",
	"$JS.API.CONSUMER.DELETE.KV_PRESENCE.*",
	"$JS.API.CONSUMER.DELETE.KV_PUSH.*",
	"$JS.API.CONSUMER.DELETE.KV_PUSH_SENT.*",
	"$JS.API.CONSUMER.UNPIN.>",
	"$JS.FC.>",
	"_INBOX.>",
}

// permissions of each role user: publish allow-list, subscribe allow-list.
var permissions = map[string][2][]string{
	RoleGateway: {
		append([]string{
			"chat.msg.*", "chat.member.*", "chat.conv.*.typing", "chat.conv.*.read",
			"chat.user.*.*", "chat.dead.*", "chat.api.history.*",
			"$KV.CONVERSATIONS.>", "$KV.PRESENCE.>", "$KV.PUSH.>",
			"$JS.ACK.CHAT.fanout.>",
		}, jsClient...),
		{"_INBOX.>", "chat.user.*.>", "chat.conv.*.typing", "chat.conv.*.read"},
	},
	RoleHistory: {
		append([]string{"chat.dead.*", "$JS.ACK.CHAT.history.>", "$SRV.>", "$KV.LEASES.>"}, jsClient...),
		{"_INBOX.>", "chat.api.history.>", "$SRV.>"},
	},
	RolePresence: {
		append([]string{"chat.presence.*", "chat.user.*.presence", "$KV.PRESENCE.>"}, jsClient...),
		{"_INBOX.>"},
	},
	RolePush: {
		append([]string{"chat.push.dead.*", "$KV.PUSH.>", "$KV.PUSH_SENT.>", "$JS.ACK.CHAT.pushnotify.>"}, jsClient...),
		{"_INBOX.>"},
	},
	RoleService: {
		{"chat.msg.*", "chat.api.history.*", "_INBOX.>"},
		{"_INBOX.>"},
	},
}

// roleUsersConfig renders the role users for the CHAT account's user list.
func roleUsersConfig(c credentials) string {
	var b strings.Builder
	for _, role := range Roles {
		p := permissions[role]
		fmt.Fprintf(&b, "      {user: %q, password: %q, permissions: {publish: {allow: %s}, subscribe: {allow: %s}}}\n",
			role, c.Roles[role], quoteList(p[0]), quoteList(p[1]))
	}
	return b.String()
}

func quoteList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// RoleURL returns the NATS URL, with credentials, of a role user.
func (s *Server) RoleURL(role string) string {
	return s.url(url.UserPassword(role, s.creds.Roles[role]))
}
