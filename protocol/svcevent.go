package protocol

import "encoding/json"

// ServiceEventVersion is the version of the service event format
// (docs/bots.md). A field may be added within a version; a field that
// changes meaning or goes away makes a new version.
const ServiceEventVersion = 1

// Types of service events.
const (
	ServiceEventMessage       = "message"
	ServiceEventEdit          = "edit"
	ServiceEventDelete        = "delete"
	ServiceEventReaction      = "reaction"
	ServiceEventMemberAdded   = "member_added"
	ServiceEventMemberRemoved = "member_removed"
)

// ServiceEvent is one event for a service (a bot) about a conversation its
// sender is a member of, as a service reads it from its events consumer or
// receives it in a webhook POST (docs/bots.md).
type ServiceEvent struct {
	// V is ServiceEventVersion.
	V int `json:"v"`
	// ID is the event's unique id, the same on every delivery of it:
	// "<seq>.<service>". A webhook receiver de-duplicates by it.
	ID string `json:"id"`
	// Type is one of the ServiceEvent* types.
	Type string `json:"type"`
	// Service is the service the event is addressed to.
	Service string `json:"service"`
	// As are the service's senders who are members of the conversation
	// (whom it may post as there); empty in the member_removed event of
	// its own removal.
	As []string `json:"as,omitempty"`
	// Conv is the conversation, Seq the stream seq of the message or
	// membership change (a message's seq, as clients see it).
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
	// TS is when the server stored it (RFC 3339, UTC).
	TS string `json:"ts"`
	// Sender, ClientID, Ref and Body are a message's (message, edit,
	// delete, reaction): Ref is the seq an edit, delete or reaction
	// refers to; Body is the client's JSON body as sent.
	Sender   string          `json:"sender,omitempty"`
	ClientID string          `json:"client_id,omitempty"`
	Ref      uint64          `json:"ref,omitempty"`
	Body     json.RawMessage `json:"body,omitempty"`
	// Users and By are a membership change's (member_added,
	// member_removed): who was added or removed, and by whom.
	Users []string `json:"users,omitempty"`
	By    string   `json:"by,omitempty"`
}

// ServiceEventType is the event type of a message of kind (Envelope.Kind).
func ServiceEventType(kind string) string {
	switch kind {
	case KindEdit:
		return ServiceEventEdit
	case KindDelete:
		return ServiceEventDelete
	case KindReaction:
		return ServiceEventReaction
	}
	return ServiceEventMessage
}
