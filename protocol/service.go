package protocol

import "encoding/json"

// ServiceRequest is the request of every endpoint of the chat service API
// (chat.api.svc.<service>.<endpoint>, docs/services.md); each endpoint
// reads the fields it names.
type ServiceRequest struct {
	// As is the sender the service acts as: one of its registered senders.
	As string `json:"as"`
	// Conv is the conversation (every endpoint but create and
	// conversations).
	Conv string `json:"conv,omitempty"`
	// Kind is "direct" or "group" for create; for post "" (a message),
	// "edit", "delete" or "reaction".
	Kind string `json:"kind,omitempty"`
	// Title of a group (create).
	Title string `json:"title,omitempty"`
	// Members of a new conversation besides As (create).
	Members []string `json:"members,omitempty"`
	// Users to add (add_member).
	Users []string `json:"users,omitempty"`
	// User to remove (remove_member).
	User string `json:"user,omitempty"`
	// ClientID is the post's idempotency id: a repeat within the de-dup
	// window gets the original seq, like a client's send.
	ClientID string `json:"client_id,omitempty"`
	// Ref is the target seq of an edit, delete or reaction.
	Ref uint64 `json:"ref,omitempty"`
	// Body is the message body, a JSON object (post).
	Body json.RawMessage `json:"body,omitempty"`
	// After (sync) and Before (history, 0: the newest) page messages;
	// Limit bounds a page (default DefaultLimit, at most MaxLimit).
	After  uint64 `json:"after,omitempty"`
	Before uint64 `json:"before,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// ServiceReply answers a ServiceRequest; errors are NATS micro error
// headers instead (Nats-Service-Error-Code, Nats-Service-Error).
type ServiceReply struct {
	Conv    string   `json:"conv,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Members []string `json:"members,omitempty"`
	// Added and Invited are the users add_member added, and invited
	// instead because they accept adds from nobody.
	Added   []string `json:"added,omitempty"`
	Invited []string `json:"invited,omitempty"`
	// Seq and TS of a stored post; Duplicate when it repeated an earlier
	// post's client_id.
	Seq       uint64     `json:"seq,omitempty"`
	TS        string     `json:"ts,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
	Messages  []*Message `json:"messages,omitempty"`
	More      bool       `json:"more,omitempty"`
	// Conversations are As's conversation ids (conversations).
	Conversations []string `json:"conversations,omitempty"`
}

// Error codes of the chat service API, in Nats-Service-Error-Code.
const (
	ServiceCodeBadRequest  = "400"
	ServiceCodeForbidden   = "403"
	ServiceCodeNotFound    = "404"
	ServiceCodeConflict    = "409"
	ServiceCodeTooLarge    = "413"
	ServiceCodeRateLimited = "429"
	ServiceCodeInternal    = "500"
	ServiceCodeUnavailable = "503"
)
