package protocol

// Consent: message requests, invitations, hiding and who may add a user
// (docs/protocol.md, "Consent").

// Frame types of consent requests.
const (
	// TypeAccept accepts a message request or an invitation: {conv}.
	TypeAccept = "accept"
	// TypeDecline declines a message request or an invitation: {conv}.
	TypeDecline = "decline"
	// TypeHide hides a conversation from the user's list until a new
	// message arrives in it: {conv}.
	TypeHide = "hide"
	// TypeSettings reads the user's settings and, with add_policy, sets
	// it; the reply has the same type.
	TypeSettings = "settings"
)

// Conversation.State values.
const (
	// ConvStateRequest: an incoming message request, for its recipient.
	ConvStateRequest = "request"
	// ConvStatePending: an outgoing request the other has not accepted,
	// for the requester.
	ConvStatePending = "pending"
	// ConvStateInvited: an invitation into a group; the user is not a
	// member until accepting it.
	ConvStateInvited = "invited"
)

// Who may add a user to groups (settings add_policy).
const (
	// AddPolicyEveryone: anyone may add the user (the default).
	AddPolicyEveryone = "everyone"
	// AddPolicyContacts: only users with an accepted direct conversation
	// with the user; others are refused with forbidden.
	AddPolicyContacts = "contacts"
	// AddPolicyNobody: an add becomes an invitation the user accepts or
	// declines.
	AddPolicyNobody = "nobody"
)

// ValidAddPolicy reports whether p is one of the add policies.
func ValidAddPolicy(p string) bool {
	return p == AddPolicyEveryone || p == AddPolicyContacts || p == AddPolicyNobody
}

// Settings answers settings with the user's settings.
type Settings struct {
	Type      string `json:"type"`
	ID        string `json:"id,omitempty"`
	AddPolicy string `json:"add_policy"`
}

// AddedOK answers add_member: ok, with the users who were invited rather
// than added because they accept adds from nobody.
type AddedOK struct {
	Type    string   `json:"type"`
	ID      string   `json:"id,omitempty"`
	Invited []string `json:"invited,omitempty"`
}
