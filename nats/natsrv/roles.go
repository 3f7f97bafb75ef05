package natsrv

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/natter-chat/natter/nats/schema"
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

// permissions of each role user: publish allow-list, subscribe allow-list.
// Every subject comes from nats/schema, so a renamed stream, bucket or
// consumer renames its permission too. Every role but the service calls
// the JetStream API (schema.JSClientAPI).
var permissions = map[string][2][]string{
	RoleGateway: {
		append([]string{
			schema.MsgWildcard, schema.MemberWildcard, schema.TypingWildcard, schema.ReadWildcard,
			schema.UserEventWildcard, schema.DeadWildcard, schema.HistoryAPIWildcard,
			schema.KVWildcard(schema.BucketConversations), schema.KVWildcard(schema.BucketPresence), schema.KVWildcard(schema.BucketPush),
			schema.AckWildcard(schema.StreamChat, schema.ConsumerFanout),
		}, schema.JSClientAPI()...),
		{schema.InboxWildcard, schema.UserAllWildcard, schema.TypingWildcard, schema.ReadWildcard},
	},
	RoleHistory: {
		append([]string{schema.DeadWildcard, schema.AckWildcard(schema.StreamChat, schema.ConsumerHistory), schema.ServiceWildcard, schema.KVWildcard(schema.BucketLeases)}, schema.JSClientAPI()...),
		{schema.InboxWildcard, schema.HistoryAPIAll, schema.ServiceWildcard},
	},
	RolePresence: {
		append([]string{schema.PresenceWildcard, schema.UserEvent(schema.EventPresence), schema.KVWildcard(schema.BucketPresence)}, schema.JSClientAPI()...),
		{schema.InboxWildcard},
	},
	RolePush: {
		append([]string{
			schema.PushDeadWildcard, schema.KVWildcard(schema.BucketPush), schema.KVWildcard(schema.BucketPushSent),
			schema.AckWildcard(schema.StreamChat, schema.ConsumerPush),
		}, schema.JSClientAPI()...),
		{schema.InboxWildcard},
	},
	RoleService: {
		{schema.MsgWildcard, schema.HistoryAPIWildcard, schema.InboxWildcard},
		{schema.InboxWildcard},
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
